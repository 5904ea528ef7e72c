"""The background builds' entry points of :class:`~recsys.search.FilteredSearcher` (key indexes,
seed tables, static eligible sets): built inline on a small catalogue, else queued for the
searcher's :class:`~recsys.search.background.Background` thread, which runs them when no query runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from recsys.search.batch import StaticSet

if TYPE_CHECKING:
    from recsys.search.compiled import CompiledFilter, _SeedRules


class BuildsMixin:
    """Queueing the structures a filter benefits from (part of :class:`FilteredSearcher`)."""

    def wait_background(self) -> None:
        """Block until the background builds queued so far have finished (tests, benchmarks)."""
        self._bg.wait()

    def _inline(self) -> bool:
        return self.n < self.background_min_items

    def _build_or_queue(self, job: tuple, build: Callable[[], None]) -> None:
        """Run ``build`` now on a small catalogue (:meth:`_inline`), else queue it for the
        background thread under ``job`` (a job already pending is not queued twice)."""
        if self._inline():
            build()
        else:
            self._bg.submit(job, build)

    def _keys_ready(self, cf: CompiledFilter, r: _SeedRules) -> bool:
        """Whether the key index of ``r``'s variant may be used now (else it is queued for the
        background thread and the query takes the general path with a domain mask)."""
        variant = (r.level, r.gender >= 0, r.no_adult)
        if variant in cf.keys or self._inline():
            return True
        self._bg.submit((id(cf), "keys", variant), lambda: self._key_index(cf, *variant))
        return False

    def _request_table(self, cf: CompiledFilter) -> np.ndarray | None:
        """The seed table: built inline on a small catalogue, else queued for the background."""
        if self._inline():
            return self._seed_table(cf)
        self._bg.submit((id(cf), "table"), lambda: self._seed_table(cf))
        return None

    def _static_set(self, cf: CompiledFilter, no_adult: bool, wait: bool = False) -> StaticSet | None:
        """The eligible set of a static filter (one adult-rule variant).

        Built inline on a small catalogue or with ``wait`` (batch jobs), else queued for
        the background thread: None until it is ready.
        """
        ss = cf.sets.get(no_adult) or self._shared_static(cf, no_adult)
        if ss is not None:
            return ss

        def build() -> None:
            if no_adult in cf.sets or self._shared_static(cf, no_adult, build=True) is not None:
                return  # built, or adopted from an earlier filter of the same mask (its digest: O(n), here)
            mask = cf.base_mask & ~self.view.adult if no_adult else cf.base_mask
            cf.sets[no_adult] = StaticSet(
                mask, self.view.perm, self.view.pos_of_row, self.unit, self._bg.pause
            )
            cf.table_ok = True  # a static filter's hot-path structure is its eligible set

        if wait or self._inline():
            build()
            return cf.sets[no_adult]
        self._bg.submit((id(cf), "set", no_adult), build)
        return None

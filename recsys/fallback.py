"""The declared fallback chain of every run: what serves a seed the model has nothing for.

A model leaves a seed without a list when the seed never occurred in training (a new
item, an item of a head sample), when it occurred only in one-item sessions (no
co-occurrence for item/session kNN), or when the model dropped it (``min_count``). Such
seeds are never left silent: the run's lists are completed, in this order, by

1. ``cooccurrence``: the seed's co-occurrence neighbours in the training sessions/baskets
   (Jaccard, :class:`recsys.models.baselines.CooccurrenceModel`);
2. ``category``: the most popular training items of the seed's catalogue category, from
   its full category path up to the top level;
3. ``brand``: the most popular training items of the seed's brand;
4. ``popular``: the most popular training items overall.

Each step only adds items not already listed (never the seed, never the excluded items),
so a model's own list is kept as it is and only completed to ``k``. Every answer says
which step served each item (``served_by``), and evaluation reports the share of cases
the fallback served (the model gave nothing) and the share left with nothing at all.

The same chain completes the lists of evaluation (:func:`recsys.evaluation.evaluate`,
:func:`recsys.evaluation.evaluate_sessions`), Explore and the REST API
(:func:`recsys.search.similar_items`, :func:`recsys.search.recommend_for_recent`, with the
filter's rules applied to the fallback's items too) and precompute. It is fitted on the
training part by :func:`recsys.pipeline.train_run` and saved in the run folder
(``fallback/``); a run saved before it has none and is served as before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.models.base import PAD_ID, PAD_SCORE, padded_results

#: the steps after the model's own list, in order
STEPS: tuple[str, ...] = ("cooccurrence", "category", "brand", "popular")
#: what ``served_by`` says for the model's own items
MODEL = "model"
#: most popular items kept per category / brand / overall (what a filtered list can draw on)
GROUP_TOP = 200
POPULAR_TOP = 1000
FOLDER = "fallback"


class FallbackChain:
    """The fallback steps of one run, fitted on its training part.

    Parameters
    ----------
    steps : sequence of str
        A subset of :data:`STEPS`, in the order they are tried (default: all).
    neighbours : int
        Co-occurrence neighbours kept per item.
    """

    def __init__(self, steps: Sequence[str] = STEPS, neighbours: int = 50) -> None:
        bad = [s for s in steps if s not in STEPS]
        if bad:
            raise ValueError(f"unknown fallback step(s) {bad}; choose among {STEPS}")
        self.steps = tuple(steps)
        self.neighbours = int(neighbours)

    # -- fitting ----------------------------------------------------------------------
    def fit(self, train: Any, catalog: pd.DataFrame | None = None) -> FallbackChain:
        """Popularity and co-occurrence from ``train``'s interactions; categories and
        brands from ``catalog`` (default ``train.catalog``), which may list items the
        training part never saw (those are the seeds the fallback is for)."""
        from recsys.data.schema import category_level
        from recsys.models.baselines import DEFAULT_EVENT_WEIGHTS, _event_popularity

        catalog = train.catalog if catalog is None else catalog
        # the catalogue's ids, each once (first row kept), through Arrow: a 1M-item catalogue's
        # pandas Index (hashing, appending, reindexing) cost seconds
        cat_ids, first = _distinct(catalog["item_id"])
        cat = catalog if first is None else catalog.iloc[first]
        pop = _event_popularity(train.interactions, DEFAULT_EVENT_WEIGHTS)
        if len(pop):
            ids = pd.Index(cat_ids).append(pd.Index(pop.index).difference(cat_ids))
            self.item_ids_ = ids.to_numpy(dtype=str)
            self.popularity_ = pop.reindex(ids).fillna(0.0).to_numpy(dtype=np.float32)
        else:  # a catalogue without events
            self.item_ids_ = cat_ids
            self.popularity_ = np.zeros(len(cat_ids), dtype=np.float32)
        ids = self.item_ids_
        # group keys per item: one column per category level (deepest first), then the brand;
        # computed on the distinct values (a 1M-item catalogue has a few thousand at most)
        keys: dict[str, np.ndarray] = {}
        pad = len(ids) - len(cat)

        def per_item(column: str, value: Any) -> np.ndarray:
            codes, uniques = pd.factorize(cat[column])  # missing: -1, the "" appended last
            values = pd.Series(uniques, dtype=object).astype(str)
            return np.r_[np.asarray(value(values), dtype=str), [""]][np.r_[codes, np.full(pad, -1)]]

        if "category" in self.steps and "category" in cat.columns:
            distinct = pd.Series(pd.unique(cat["category"].dropna()), dtype=object).astype(str)
            depth = int(distinct.str.count(" > ").max() if len(distinct) else 0) + 1
            for lv in range(depth - 1, -1, -1):
                keys[f"category:{lv}"] = per_item("category", lambda v, lv=lv: category_level(v, lv))
        if "brand" in self.steps and "brand" in cat.columns:
            keys["brand"] = per_item("brand", lambda v: v.str.strip())
        self.keys_ = keys
        self._build_groups()
        self.cooc_ = None
        if "cooccurrence" in self.steps and len(train.interactions):
            from recsys.models.baselines import CooccurrenceModel

            try:
                self.cooc_ = CooccurrenceModel(top_k=self.neighbours).fit(train)
            except Exception:  # noqa: BLE001 - no sequence of two items: the step has nothing
                self.cooc_ = None
        return self

    def _build_groups(self) -> None:
        """Per group key, the rows of its most popular items (popularity > 0), best first; with
        no events at all (a catalogue-only dataset), every item of the group, in catalogue order."""
        self._index_ = None  # built at the first lookup (seconds for a 1M-item catalogue)
        pop = self.popularity_
        rows = np.flatnonzero(pop > 0)
        popular = rows[np.lexsort((self.item_ids_[rows], -pop[rows]))]  # ties: by id
        self.popular_ = popular[:POPULAR_TOP]
        # a catalogue without events: nothing is popular, and a category or brand lists its items
        # in catalogue order (the declared order), so the catalogue steps still serve
        order = popular if len(popular) else np.arange(len(self.item_ids_))
        self.groups_: dict[str, dict[str, np.ndarray]] = {}
        for name, col in self.keys_.items():
            codes, uniques = _codes(col[order])  # groups in order of their best item
            by_group = np.argsort(codes, kind="stable")  # each group's rows, best first
            bounds = np.searchsorted(codes[by_group], np.arange(len(uniques) + 1))
            self.groups_[name] = {
                str(g): order[by_group[start : min(end, start + GROUP_TOP)]]
                for g, start, end in zip(uniques, bounds[:-1], bounds[1:])
                if str(g) != ""
            }

    @property
    def _index(self) -> pd.Index:
        if self._index_ is None:
            self._index_ = pd.Index(self.item_ids_)
        return self._index_

    def _row(self, item_id: object) -> int:
        """The chain's row of ``item_id``, or -1."""
        try:
            return int(self._index.get_loc(str(item_id)))
        except KeyError:
            return -1

    # -- answering --------------------------------------------------------------------
    def __contains__(self, item_id: object) -> bool:
        """Whether the chain knows ``item_id`` (the catalogue's items and the trained ones)."""
        return str(item_id) in self._index

    def items_beyond(self, item_ids: Sequence[str]) -> list[str]:
        """The chain's items not in ``item_ids`` (a model's items), in the chain's order: the
        seeds only the chain serves, which precompute (local and Spark) stores too."""
        known = set(map(str, item_ids))
        return [str(i) for i in self.item_ids_ if str(i) not in known]

    def candidates(
        self, seed: str, n: int, exclude: Sequence[str] = (), skip: Sequence[str] = ()
    ) -> list[tuple[str, float, str]]:
        """Up to ``n`` fallback items for ``seed``, best first: (item, score, step). The seed
        and ``exclude`` are never listed; each step adds only items not yet listed; the steps
        in ``skip`` are passed over."""
        seen = {str(seed), *map(str, exclude)}
        out: list[tuple[str, float, str]] = []

        def add(items: Sequence[str], scores: Sequence[float], step: str) -> bool:
            for item, score in zip(items, scores):
                if item and item not in seen:
                    seen.add(item)
                    out.append((str(item), float(score), step))
                    if len(out) >= n:
                        return True
            return False

        row = self._row(seed)
        for step in self.steps:
            if step in skip:
                continue
            if step == "cooccurrence":
                if self.cooc_ is not None:
                    ids, sc = self.cooc_.similar([str(seed)], self.neighbours)
                    if add(ids[0], sc[0], step):
                        return out
                continue
            if step == "popular":
                rows = self.popular_
                if add(self.item_ids_[rows], self.popularity_[rows], step):
                    return out
                continue
            if row < 0:
                continue
            for name, col in self.keys_.items():
                if name.partition(":")[0] != step or not col[row]:
                    continue
                rows = self.groups_[name].get(str(col[row]))
                if rows is not None and add(self.item_ids_[rows], self.popularity_[rows], step):
                    return out
        return out

    def complete(
        self,
        seeds: Sequence[str],
        ids: np.ndarray,
        scores: np.ndarray,
        k: int,
        exclude: Sequence[Sequence[str]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model's ``(ids, scores)`` rows completed to ``k`` by the chain.

        Returns ``(ids, scores, served_by)``: ``served_by`` (n, k) names the step of each
        item (:data:`MODEL` for the model's own, ``""`` for padding). Rows the model
        filled are returned unchanged.
        """
        n = len(seeds)
        out_ids, out_s = padded_results(n, k)
        served = np.full((n, k), "", dtype=object)
        ids = np.asarray(ids, dtype=str)[:, :k]
        scores = np.asarray(scores, dtype=np.float32)[:, :k]
        w = ids.shape[1] if ids.ndim == 2 else 0
        if w:
            own = ids != PAD_ID
            out_ids[:, :w] = np.where(own, ids, PAD_ID)
            out_s[:, :w] = np.where(own, scores, PAD_SCORE)
            served[:, :w] = np.where(own, MODEL, "")
            counts = own.sum(axis=1)
        else:
            counts = np.zeros(n, dtype=np.int64)
        for i in np.flatnonzero(counts < k):
            have = [x for x in out_ids[i, : counts[i]]]
            extra = list(exclude[i]) if exclude is not None else []
            got = self.candidates(str(seeds[i]), k - len(have), extra + have)
            for j, (item, score, step) in enumerate(got, start=len(have)):
                out_ids[i, j], out_s[i, j], served[i, j] = item, score, step
        return out_ids.astype(str), out_s, served.astype(str)

    # -- persistence ------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the chain to the folder ``path`` (arrays as ``.npy``, no pickle)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"steps": list(self.steps), "neighbours": self.neighbours, "keys": list(self.keys_)}
        (path / "fallback.json").write_text(json.dumps(meta, indent=2))
        np.save(path / "item_ids.npy", self.item_ids_, allow_pickle=False)
        np.save(path / "popularity.npy", self.popularity_, allow_pickle=False)
        for n, name in enumerate(self.keys_):
            np.save(path / f"key_{n}.npy", self.keys_[name], allow_pickle=False)
        if self.cooc_ is not None:
            self.cooc_.save(path / "cooccurrence")

    @classmethod
    def load(cls, path: str | Path) -> FallbackChain:
        """Read what :meth:`save` wrote."""
        from recsys.errors import StoredDataError
        from recsys.stored import read_stored

        path = Path(path)
        meta = read_stored(path / "fallback.json")  # names the file when it is not JSON
        if not isinstance(meta, dict) or not all(k in meta for k in ("steps", "neighbours", "keys")):
            raise StoredDataError(
                f"{path / 'fallback.json'} should hold an object with steps, neighbours and keys"
            )
        try:
            chain = cls(meta["steps"], meta["neighbours"])
        except (TypeError, ValueError) as exc:
            raise StoredDataError(f"{path / 'fallback.json'}: {exc}") from None

        def array(name: str) -> np.ndarray:
            from recsys.stored import read_npy  # missing, truncated, not an .npy: named

            return read_npy(path / name)

        chain.item_ids_ = array("item_ids.npy")
        chain.popularity_ = array("popularity.npy")
        chain.keys_ = {name: array(f"key_{n}.npy") for n, name in enumerate(meta["keys"])}
        chain._build_groups()
        chain.cooc_ = None
        if (path / "cooccurrence").is_dir():
            from recsys.models.baselines import CooccurrenceModel

            chain.cooc_ = CooccurrenceModel.load(path / "cooccurrence")
        return chain


def _distinct(item_ids: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """``item_ids`` as str, each once (NumPy unicode), and the rows kept (None: all of them)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(item_ids, from_pandas=True)  # an Arrow-backed column gives its chunks
    arr = pc.cast(arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr, pa.string())
    enc = pc.dictionary_encode(arr)
    first = None
    if len(enc.dictionary) < len(arr):
        first = np.unique(enc.indices.to_numpy(zero_copy_only=False), return_index=True)[1]
        arr = arr.take(pa.array(first))
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=str), first


def _codes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """``pd.factorize`` of a NumPy unicode array (codes, distinct values in order of first
    appearance), through Arrow: ten times faster on a 1M-item catalogue's keys."""
    import pyarrow as pa
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(pa.array(values))
    return enc.indices.to_numpy(zero_copy_only=False), enc.dictionary.to_pylist()


def load_chain(run_folder: str | Path) -> FallbackChain | None:
    """The run's chain (``<run>/fallback/``), or None for a run saved without one."""
    folder = Path(run_folder) / FOLDER
    return FallbackChain.load(folder) if (folder / "fallback.json").exists() else None


def served_shares(served: np.ndarray) -> dict[str, Any]:
    """What a batch of served lists reports: ``fallback_share`` (rows whose first item
    came from the fallback: the model had nothing), ``completed_share`` (rows the model
    started and the fallback completed), ``no_recommendation_share`` (empty rows) and
    ``fallback_steps`` (step -> share of rows it served first)."""
    served = np.asarray(served, dtype=str)
    n = len(served)
    if n == 0:
        return {
            "fallback_share": 0.0,
            "completed_share": 0.0,
            "no_recommendation_share": 0.0,
            "fallback_steps": {},
        }
    first = served[:, 0] if served.shape[1] else np.full(n, "", dtype=str)
    by_fallback = (first != MODEL) & (first != "")
    completed = (first == MODEL) & ((served != MODEL) & (served != "")).any(axis=1)
    steps = {s: float(np.mean(first == s)) for s in STEPS if np.any(first == s)}
    return {
        "fallback_share": float(by_fallback.mean()),
        "completed_share": float(completed.mean()),
        "no_recommendation_share": float(np.mean(first == "")),
        "fallback_steps": steps,
    }


#: what a chain's content depends on beside its data (bumped when fitting changes)
CHAIN_VERSION = 1


def chain_key(dataset_fingerprint: str, split: dict[str, Any], chain: FallbackChain | None = None) -> str:
    """The content hash of the chain fitted on the training part of ``split`` (method and
    options, as run.json's ``split`` records them) of the dataset with that fingerprint: two
    runs with one key would fit the very same chain, so the second copies the first's."""
    import hashlib

    chain = chain or FallbackChain()
    spec = {
        "dataset": str(dataset_fingerprint),
        "split": {k: split[k] for k in sorted(split) if k in SPLIT_KEYS},
        "steps": list(chain.steps),
        "neighbours": chain.neighbours,
        "version": CHAIN_VERSION,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:24]


#: the entries of run.json's ``split`` that decide the training part
SPLIT_KEYS = ("method", "test_fraction", "test_days", "cutoff", "test_dataset")


def fitted_chain(registry: Any, dataset_name: str, key: str) -> tuple[FallbackChain, str] | None:
    """A chain already fitted with ``key`` (:func:`chain_key`) for another run of the dataset,
    loaded, and that run's id; None when no run has one (or none loads)."""
    for meta in registry.list_runs():
        info = (meta.get("artifacts") or {}).get("fallback") or {}
        if info.get("key") != key or (meta.get("dataset") or {}).get("name") != dataset_name:
            continue
        try:
            chain = load_chain(registry.run_dir(meta["run_id"]))
        except Exception:  # noqa: BLE001 - a damaged or vanished folder: fit a new chain
            continue
        if chain is not None:
            return chain, str(meta["run_id"])
    return None


def catalog_shares(chain: FallbackChain | None, missing: Sequence[str], n_catalog: int) -> dict[str, Any]:
    """Who serves the catalogue's items as seeds: ``model`` (its own vector), ``fallback`` (the
    chain's first step that gives an item: ``fallback_steps``) or ``nothing``, as shares of
    the ``n_catalog`` items; ``missing`` are the catalogue items the model has no vector for."""
    steps: dict[str, int] = {}
    missing = [str(s) for s in missing]
    if chain is not None and chain.cooc_ is not None and chain.steps[:1] == ("cooccurrence",) and missing:
        # the first step for all at once: a seed has co-occurrence neighbours when its row of the
        # kept similarities holds any (only positive ones are kept); a seed at a time cost ~0.5 ms
        rows = chain.cooc_.rows_of(missing)
        kept = np.diff(chain.cooc_.similarity_.indptr)
        served = (rows >= 0) & (kept[np.maximum(rows, 0)] > 0)
        if served.any():
            steps["cooccurrence"] = int(served.sum())
        missing_rest = [s for s, ok in zip(missing, served) if not ok]
        skip: tuple[str, ...] = ("cooccurrence",)  # known to give these nothing
    else:
        missing_rest, skip = missing, ()
    for seed in missing_rest:
        got = chain.candidates(seed, 1, skip=skip) if chain is not None else []
        step = got[0][2] if got else "nothing"
        steps[step] = steps.get(step, 0) + 1
    nothing = steps.pop("nothing", 0)
    n = max(int(n_catalog), 1)
    return {
        "catalog_items": int(n_catalog),
        "model": (int(n_catalog) - len(missing)) / n,
        "fallback": sum(steps.values()) / n,
        "nothing": nothing / n,
        "fallback_steps": {s: steps[s] / n for s in STEPS if s in steps},
        "counts": {
            "model": int(n_catalog) - len(missing),
            "fallback": sum(steps.values()),
            "nothing": nothing,
        },
    }


def seed_shares(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The test seeds' shares served by the model, the fallback (by step, ``vector`` being the
    model's own stand-in vector) and nothing, from an evaluation's ``metrics``
    (:func:`recsys.evaluation.evaluate`); None when the evaluation did not measure them."""
    if not isinstance(metrics.get("fallback_share"), (int, float)):
        return None
    fallback = float(metrics["fallback_share"])
    nothing = float(metrics.get("no_recommendation_share") or 0.0)
    return {
        "model": max(0.0, 1.0 - fallback - nothing),
        "fallback": fallback,
        "nothing": nothing,
        "fallback_steps": dict(metrics.get("fallback_steps") or {}),
        "n_cases": metrics.get("n_cases"),
    }


def run_served(
    model: Any, chain: FallbackChain | None, catalog_ids: Sequence[str], metrics: dict[str, Any]
) -> dict[str, Any]:
    """What a trained run records as ``served`` in run.json (the shape an import records):
    ``catalog``, who serves the catalogue's items as seeds (:func:`catalog_shares`; an item whose
    vector is the model's own stand-in, Prod2Vec's category mean or Meta-Prod2Vec's metadata
    tokens, counts under the fallback step ``vector``), and ``test_seeds`` (:func:`seed_shares`)
    when the run was evaluated."""
    ids = [str(i) for i in pd.unique(pd.Series(catalog_ids, dtype=object).astype(str))]
    rows = model.rows_of(ids)
    shares = catalog_shares(chain, [i for i, r in zip(ids, rows) if r < 0], len(ids))
    mask = getattr(model, "fallback_", None)
    if mask is not None and len(ids):
        known = rows[rows >= 0]
        stand_in = int(np.asarray(mask, dtype=bool)[known].sum())
        if stand_in:
            n = len(ids)
            counts = shares["counts"]
            counts["model"] -= stand_in
            counts["fallback"] += stand_in
            shares["model"] = counts["model"] / n
            shares["fallback"] = counts["fallback"] / n
            shares["fallback_steps"] = {"vector": stand_in / n, **shares["fallback_steps"]}
    served: dict[str, Any] = {"catalog": shares}
    seeds = seed_shares(metrics)
    if seeds is not None:
        served["test_seeds"] = seeds
    return served


def served_lines(served: dict[str, Any]) -> list[str]:
    """An import's ``served`` shares (:func:`catalog_shares`, and the test seeds' from the
    evaluation) as the lines the CLI and the Data page show."""

    def line(what: str, s: dict[str, Any]) -> str:
        steps = ", ".join(f"{k} {v:.1%}" for k, v in (s.get("fallback_steps") or {}).items())
        return (
            f"{what}: {s.get('model', 0.0):.1%} served by the vectors, {s.get('fallback', 0.0):.1%} by the "
            f"fallback chain{f' ({steps})' if steps else ''}, {s.get('nothing', 0.0):.1%} by nothing"
        )

    out = []
    if served.get("catalog"):
        out.append(
            line(f"catalogue items ({served['catalog'].get('catalog_items', 0):,})", served["catalog"])
        )
    if served.get("test_seeds"):
        out.append(line(f"test seeds ({served['test_seeds'].get('n_cases') or 0:,})", served["test_seeds"]))
    if served.get("note"):
        out.append(str(served["note"]))
    return out

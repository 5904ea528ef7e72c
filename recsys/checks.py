"""Behavioural checks of a run's lists, in the spirit of RecList.

Offline metrics say how often a list holds the next item; they do not say whether a
list is *acceptable*. Each check here measures one behaviour a merchandiser would
refuse, returns a number and passes or fails it against a threshold:

- ``adult``: share of non-adult seeds whose list shows an adult item (must be 0:
  the searcher never does this; the check guards it, e.g. against a rule that
  bypasses it);
- ``asymmetry``: complementary asymmetry on co-bought pairs: among pairs (A, B) bought
  together at least ``min_support`` times where A's list shows B, the share where B's
  list does not show A (TV -> cable shown, cable -> TV not);
- ``duplicates``: share of lists holding two items with the same title (or one with
  the seed's title), titles compared case- and space-insensitively;
- ``brand_concentration``: share of lists (with at least ``min_items`` branded items)
  where one brand holds more than ``dominance`` of the items;
- ``slices``: HR@k of slices of the run's held-out cases (targets that are cold items,
  seeds of rare leaf categories, each top-level category of the seed) against HR@k of
  all cases; the number is the worst slice's ratio, which must stay above
  ``min_ratio``. Slices with fewer than ``min_cases`` cases are listed, not judged.

Thresholds come from :class:`CheckThresholds` (defaults below; a JSON or YAML file
overrides any of them, e.g. ``{"duplicates": {"max_share": 0.02, "blocking": true}}``).
A check marked ``blocking`` makes ``recsys check`` exit 1 and makes
:func:`recsys.precompute.precompute` (and ``recsys spark precompute``) refuse to publish the
table. :class:`ListChecks` checks a table chunk by chunk, so precompute checks it as it streams
into the store instead of holding it in memory.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys.config import Progress, data_dir, null_progress
from recsys.data.schema import category_level
from recsys.errors import RecsysError

logger = logging.getLogger(__name__)

#: ``<data_dir>/checks.json`` (or ``.yaml``): the thresholds used when none are given.
THRESHOLDS_FILES = ("checks.json", "checks.yaml", "checks.yml")


class ChecksConfigError(RecsysError):
    """A thresholds file or value is not valid."""


class ChecksFailedError(RecsysError):
    """A blocking check failed (the report is in ``report``)."""

    def __init__(self, message: str, report: CheckReport) -> None:
        super().__init__(message)
        self.report = report


class _Check(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    blocking: bool = False


class AdultCheck(_Check):
    max_share: float = Field(0.0, ge=0, le=1)
    blocking: bool = True


class AsymmetryCheck(_Check):
    max_share: float = Field(0.5, ge=0, le=1)
    min_support: int = Field(2, ge=1, description="baskets a pair must share to count as co-bought")


class DuplicatesCheck(_Check):
    max_share: float = Field(0.05, ge=0, le=1)


class BrandCheck(_Check):
    max_share: float = Field(0.25, ge=0, le=1)
    dominance: float = Field(0.5, gt=0, lt=1, description="a brand holding more than this share dominates")
    min_items: int = Field(4, ge=2)


class SliceCheck(_Check):
    min_ratio: float = Field(0.5, ge=0)
    min_cases: int = Field(30, ge=1)
    cold_threshold: int = Field(3, ge=1, description="items with fewer training interactions are cold")
    rare_share: float = Field(
        0.02, gt=0, lt=1, description="leaf categories under this share of training events"
    )
    max_cases: int = Field(5000, ge=1)


class CheckThresholds(BaseModel):
    """Every check's threshold and whether it blocks (frozen; unknown keys are refused)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    adult: AdultCheck = AdultCheck()
    asymmetry: AsymmetryCheck = AsymmetryCheck()
    duplicates: DuplicatesCheck = DuplicatesCheck()
    brand_concentration: BrandCheck = BrandCheck()
    slices: SliceCheck = SliceCheck()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> CheckThresholds:
        """Read a JSON or YAML file (by its suffix; YAML for ``.yaml``/``.yml``)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ChecksConfigError(f"thresholds file {p} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ChecksConfigError(f"cannot read thresholds file {p}: {exc}") from None
        import yaml

        try:
            value = yaml.safe_load(text) if p.suffix.lower() in (".yaml", ".yml") else json.loads(text)
        except (ValueError, yaml.YAMLError) as exc:
            kind = "YAML" if p.suffix.lower() in (".yaml", ".yml") else "JSON"
            raise ChecksConfigError(f"thresholds file {p} is not valid {kind}: {exc}") from None
        return cls.from_dict(value or {}, source=str(p))

    @classmethod
    def from_dict(cls, value: Any, source: str = "thresholds") -> CheckThresholds:
        if not isinstance(value, dict):
            raise ChecksConfigError(f"{source}: an object of checks was expected, got {type(value).__name__}")
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            parts = [
                f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
                + ("" if e["type"] == "extra_forbidden" else f" (got {e.get('input')!r})")
                for e in exc.errors()
            ]
            known = ", ".join(cls.model_fields)
            raise ChecksConfigError(f"{source}: {'; '.join(parts)} (checks: {known})") from None


def load_thresholds(path: str | os.PathLike[str] | None = None, root: Any = None) -> CheckThresholds:
    """The thresholds of ``path``; else of ``<data_dir>/checks.json|yaml`` when present; else defaults."""
    if path:
        return CheckThresholds.from_file(path)
    for name in THRESHOLDS_FILES:
        candidate = data_dir(root) / name
        if candidate.is_file():
            return CheckThresholds.from_file(candidate)
    return CheckThresholds()


# -- results ------------------------------------------------------------------------------
class CheckResult(BaseModel):
    """One check's outcome: ``value`` against ``threshold`` (``max``: value <= threshold passes;
    ``min``: value >= threshold passes); ``passed`` is None when the check could not be judged."""

    model_config = ConfigDict(frozen=True)
    name: str
    label: str
    value: float | None
    threshold: float
    direction: str
    passed: bool | None
    blocking: bool
    detail: str
    examples: list[Any] = []

    @property
    def blocks(self) -> bool:
        return self.blocking and self.passed is False


class CheckReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    run: str | None = None
    preset: str | None = None
    k: int
    n_lists: int
    results: list[CheckResult]

    @property
    def blocking_failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.blocks]

    @property
    def passed(self) -> bool:
        return not self.blocking_failures

    def to_dict(self) -> dict[str, Any]:
        return {**self.model_dump(), "passed": self.passed}

    def failure_message(self) -> str:
        """``blocking check failed: duplicates 0.120 > 0.050 (...)`` for the failing blocking checks."""
        return "; ".join(
            f"blocking check failed: {r.name} {_fmt(r.value)} {'>' if r.direction == 'max' else '<'} "
            f"{_fmt(r.threshold)} ({r.detail})"
            for r in self.blocking_failures
        )

    def table(self) -> str:
        """A plain-text table, one line per check."""
        lines = [f"{'check':20s} {'result':7s} {'value':>8s} {'threshold':>11s}  {'':8s} detail"]
        for r in self.results:
            result = {True: "pass", False: "FAIL", None: "n/a"}[r.passed]
            op = "<=" if r.direction == "max" else ">="
            lines.append(
                f"{r.name:20s} {result:7s} {_fmt(r.value):>8s} {op + ' ' + _fmt(r.threshold):>11s}  "
                f"{'blocking' if r.blocking else '':8s} {r.detail}"
            )
        return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _result(
    name: str,
    label: str,
    value: float | None,
    spec: Any,
    threshold: float,
    direction: str,
    detail: str,
    examples: Sequence[Any] = (),
) -> CheckResult:
    if value is None:
        passed = None
    else:
        passed = bool(value <= threshold + 1e-12) if direction == "max" else bool(value >= threshold - 1e-12)
    return CheckResult(
        name=name,
        label=label,
        value=None if value is None else float(value),
        threshold=float(threshold),
        direction=direction,
        passed=passed,
        blocking=spec.blocking,
        detail=detail,
        examples=list(examples)[:10],
    )


# -- the catalogue and the lists as arrays ------------------------------------------------
def _codes_or_missing(values: pd.Series) -> np.ndarray:
    """Factorised codes of strings, -1 for empty ones."""
    codes, _ = pd.factorize(values)
    codes[values.to_numpy() == ""] = -1
    return codes.astype(np.int64)


class _Items:
    """Catalogue attributes as arrays by catalogue position; position -1 (an item missing from the
    catalogue, or list padding) reads the last, neutral entry: not adult, no brand, no title."""

    def __init__(self, catalog: pd.DataFrame) -> None:
        cat = catalog.drop_duplicates("item_id")
        self.index = pd.Index(cat["item_id"].astype(str))
        n = len(cat)

        def col(name: str, default: Any) -> pd.Series:
            return (
                cat[name] if name in cat.columns else pd.Series([default] * n, index=cat.index, dtype=object)
            )

        brand = col("brand", "").fillna("").astype(str).str.strip().str.casefold()
        title = col("title", "").fillna("").astype(str).str.casefold().str.split().str.join(" ").fillna("")
        self.adult = np.append(col("adult", False).fillna(False).astype(bool).to_numpy(), False)
        self.brand = np.append(_codes_or_missing(brand), -1)
        self.title = np.append(_codes_or_missing(title), -1)

    def positions(self, ids: Sequence[str]) -> np.ndarray:
        return self.index.get_indexer(pd.Index(np.asarray(ids, dtype=object)))


class _Lists:
    """Lists as a (seeds, k) matrix of catalogue positions (-1: padding or an unknown item)."""

    def __init__(self, lists: Mapping[str, Sequence[str]], items: _Items, k: int) -> None:
        self.seeds = [str(s) for s in lists]
        rows = [[str(i) for i in v][:k] for v in lists.values()]
        lens = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        self.mat = np.full((len(rows), k), -1, dtype=np.int64)
        if lens.sum():
            flat = items.positions([i for r in rows for i in r])
            self.mat[np.repeat(np.arange(len(rows)), lens), np.concatenate([np.arange(n) for n in lens])] = (
                flat
            )
        self.seed_pos = items.positions(self.seeds) if self.seeds else np.zeros(0, dtype=np.int64)
        self.index = items.index

    def __len__(self) -> int:
        return len(self.seeds)

    def item(self, pos: int) -> str:
        return str(self.index[pos])


# -- the checks, per chunk of lists ------------------------------------------------------------
class _Tally:
    """A per-list check summed over chunks: lists failing it, lists it judged, first examples."""

    def __init__(self) -> None:
        self.bad = 0
        self.judged = 0
        self.examples: list[Any] = []

    def add(self, bad: int, judged: int, examples: Sequence[Any]) -> None:
        self.bad += int(bad)
        self.judged += int(judged)
        self.examples.extend(list(examples)[: 10 - len(self.examples)])

    @property
    def share(self) -> float | None:
        return self.bad / self.judged if self.judged else None


def _adult_rows(lists: _Lists, items: _Items) -> tuple[int, int, list[Any]]:
    """(non-adult seeds showing an adult item, non-adult seeds, examples) of a chunk."""
    non_adult = ~items.adult[lists.seed_pos]
    shows = items.adult[lists.mat] & non_adult[:, None]
    bad_rows = np.flatnonzero(shows.any(axis=1))
    examples = [(lists.seeds[r], lists.item(lists.mat[r, np.argmax(shows[r])])) for r in bad_rows[:10]]
    return len(bad_rows), int(non_adult.sum()), examples


def _duplicate_rows(lists: _Lists, items: _Items) -> tuple[int, int, list[Any]]:
    """(lists with a same-title duplicate, lists, examples) of a chunk."""
    titles = np.concatenate([items.title[lists.seed_pos][:, None], items.title[lists.mat]], axis=1)
    ordered = np.sort(titles, axis=1)
    dup = ((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)).any(axis=1)
    bad_rows = np.flatnonzero(dup)
    examples = []
    for r in bad_rows[:10]:  # the first item whose title came before (the seed's or an item's)
        j = next(j for j in range(1, titles.shape[1]) if titles[r, j] >= 0 and titles[r, j] in titles[r, :j])
        examples.append((lists.seeds[r], lists.item(lists.mat[r, j - 1])))
    return len(bad_rows), len(lists), examples


def _brand_rows(lists: _Lists, items: _Items, spec: BrandCheck) -> tuple[int, int, list[Any]]:
    """(lists one brand dominates, lists with >= min_items branded items, examples) of a chunk."""
    brands = items.brand[lists.mat]
    branded = (brands >= 0).sum(axis=1)
    judged = branded >= spec.min_items
    top = np.zeros(len(lists), dtype=np.int64)
    rows, cols = np.nonzero(brands >= 0)
    if len(rows):
        from scipy import sparse

        counts = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.int64), (rows, brands[rows, cols])),
            shape=(len(lists), int(brands.max()) + 1),
        )
        top = np.asarray(counts.max(axis=1).todense()).ravel()
    dominated = judged & (top > spec.dominance * np.maximum(branded, 1))
    bad_rows = np.flatnonzero(dominated)
    examples = [(lists.seeds[r], f"{top[r]}/{branded[r]}") for r in bad_rows[:10]]
    return len(bad_rows), int(judged.sum()), examples


class _CoBought:
    """Which pairs of catalogue positions share a sequence (the item x sequence matrix, built once)."""

    def __init__(self, interactions: pd.DataFrame | None, items: _Items) -> None:
        self.n = np.int64(len(items.index))
        self.m = None
        if interactions is None or not len(interactions):
            return
        from scipy import sparse

        inter = interactions[["sequence_id", "item_id"]].drop_duplicates()
        pos = items.positions(inter["item_id"].astype(str).to_numpy())
        seq, _ = pd.factorize(inter["sequence_id"])
        keep = pos >= 0
        self.m = sparse.csr_matrix(
            (np.ones(int(keep.sum()), dtype=np.float32), (pos[keep], seq[keep])),
            shape=(len(items.index), int(seq.max()) + 1 if len(seq) else 1),
        )

    def support(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """For each pair of catalogue positions (a[i], b[i]): the number of sequences holding both."""
        if not len(a) or self.m is None:
            return np.zeros(len(a), dtype=np.int64)
        n = self.n
        inverse, uniq = pd.factorize(np.minimum(a, b) * n + np.maximum(a, b))  # unordered pairs, once
        lo, hi = uniq // n, uniq % n
        counts = np.asarray(self.m[lo].multiply(self.m[hi]).sum(axis=1)).ravel().astype(np.int64)
        return counts[inverse]


class ListChecks:
    """Every check of a table of lists fed chunk by chunk (:meth:`add`), then :meth:`report`.

    What it keeps between chunks is bounded by the catalogue and the run's data, not by the
    table: counts and ten examples per check, one flag per catalogue item (which items have a
    list), the shown pairs that are co-bought (asymmetry; at most the dataset's co-bought pairs)
    and the lists of the slice check's held-out seeds (at most ``slices.max_cases`` of them). So
    :func:`recsys.precompute.precompute` checks a table while it streams into the store, and the
    report equals :func:`run_checks` on the whole table at once (chunks are checked
    independently; only the asymmetry check joins them, at the end).

    Parameters
    ----------
    catalog, k, thresholds, interactions, run, preset
        As :func:`run_checks`.
    slices : (seeds, rates), optional
        The held-out seeds whose lists the slice check needs, and ``rates(lists of those seeds)``
        (:func:`slice_hit_rates`); without it the slice check is "n/a" unless :meth:`report`
        is given rates.
    """

    def __init__(
        self,
        catalog: pd.DataFrame,
        k: int,
        thresholds: CheckThresholds | None = None,
        interactions: pd.DataFrame | None = None,
        slices: tuple[set[str], Any] | None = None,
        run: str | None = None,
        preset: str | None = None,
    ) -> None:
        self.t = thresholds or CheckThresholds()
        self.k, self.run, self.preset = k, run, preset
        self.items = _Items(catalog)
        self.co = _CoBought(interactions, self.items)
        self.slices = slices
        self.slice_lists: dict[str, list[str]] = {}
        self.n_lists = 0
        self.adult, self.duplicates, self.brands = _Tally(), _Tally(), _Tally()
        self.is_seed = np.zeros(len(self.items.index) + 1, dtype=bool)  # the last entry: position -1
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []  # shown co-bought pairs, in table order

    def add(self, lists: Mapping[str, Sequence[str]]) -> None:
        """Check one chunk of the table (seed -> ranked ids, cut to k)."""
        table = _Lists(lists, self.items, self.k)
        self.n_lists += len(table)
        self.adult.add(*_adult_rows(table, self.items))
        self.duplicates.add(*_duplicate_rows(table, self.items))
        self.brands.add(*_brand_rows(table, self.items, self.t.brand_concentration))
        a = np.repeat(table.seed_pos, self.k)
        b = table.mat.ravel()
        keep = (a >= 0) & (b >= 0) & (a != b)
        a, b = a[keep], b[keep]
        co = self.co.support(a, b) >= self.t.asymmetry.min_support
        self.pairs.append((a[co], b[co]))
        self.is_seed[table.seed_pos[table.seed_pos >= 0]] = True
        if self.slices is not None:
            wanted = self.slices[0]
            self.slice_lists.update({s: [str(i) for i in lists[s]] for s in table.seeds if s in wanted})

    # -- a table checked in parts (the partitions of recsys.spark.spark_precompute) --------------
    def blank(self) -> ListChecks:
        """An empty :class:`ListChecks` sharing this one's catalogue, baskets and thresholds, and
        the seeds the slice check wants (not its rates, which need the held-out data): what one
        part of a table is checked with where that part is computed (a Spark partition), before
        its :meth:`partial` is merged back here."""
        part = copy.copy(self)
        part.slices = (set(self.slices[0]), None) if self.slices is not None else None
        part.slice_lists = {}
        part.n_lists = 0
        part.adult, part.duplicates, part.brands = _Tally(), _Tally(), _Tally()
        part.is_seed = np.zeros_like(self.is_seed)
        part.pairs = []
        return part

    def partial(self) -> dict[str, Any]:
        """What the chunks added so far leave for the report: counts, first examples, the
        catalogue positions with a list, the shown co-bought pairs and the slice seeds' lists
        (small and picklable; :meth:`merge` adds it to another ListChecks)."""
        a, b = self._pairs()
        return {
            "n_lists": self.n_lists,
            "tallies": [
                (t.bad, t.judged, list(t.examples)) for t in (self.adult, self.duplicates, self.brands)
            ],
            "seeds": np.flatnonzero(self.is_seed[:-1]),
            "pairs": (a, b),
            "slice_lists": dict(self.slice_lists),
        }

    def merge(self, part: Mapping[str, Any]) -> None:
        """Add the :meth:`partial` of the next part of the table: parts merged in table order give
        the report of one ListChecks fed every chunk in that order (the same counts, examples and
        pairs)."""
        self.n_lists += int(part["n_lists"])
        for tally, (bad, judged, examples) in zip(
            (self.adult, self.duplicates, self.brands), part["tallies"]
        ):
            tally.add(bad, judged, examples)
        self.is_seed[np.asarray(part["seeds"], dtype=np.int64)] = True
        self.pairs.append(tuple(np.asarray(x, dtype=np.int64) for x in part["pairs"]))
        self.slice_lists.update(part["slice_lists"])

    def _pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """The shown co-bought pairs of every chunk, in table order: (a positions, b positions)."""
        if not self.pairs:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate([p[0] for p in self.pairs]), np.concatenate([p[1] for p in self.pairs])

    def report(self, slice_rates: dict[str, Any] | None = None) -> CheckReport:
        """The report of every chunk added (``slice_rates``: the slice check's rates when given
        in advance, as :func:`run_checks` takes them)."""
        t, k = self.t, self.k
        if self.slices is not None:
            slice_rates = self.slices[1](self.slice_lists)
        a = self.adult
        d = self.duplicates
        b = self.brands
        spec = t.brand_concentration
        results = [
            _result(
                "adult",
                "Adult items next to non-adult seeds",
                a.share,
                t.adult,
                t.adult.max_share,
                "max",
                f"{a.bad} of {a.judged} non-adult seeds' lists show an adult item",
                a.examples,
            ),
            self._asymmetry(),
            _result(
                "duplicates",
                "Same-title duplicates in a list",
                d.share,
                t.duplicates,
                t.duplicates.max_share,
                "max",
                f"{d.bad} of {d.judged} lists hold a same-title duplicate",
                d.examples,
            ),
            _result(
                "brand_concentration",
                "Brand concentration",
                b.share,
                spec,
                spec.max_share,
                "max",
                f"{b.bad} of {b.judged} lists (with >= {spec.min_items} branded items) have one brand over "
                f"{spec.dominance:.0%} of the items",
                b.examples,
            ),
            check_slices(slice_rates, t.slices, k),
        ]
        return CheckReport(run=self.run, preset=self.preset, k=k, n_lists=self.n_lists, results=results)

    def _asymmetry(self) -> CheckResult:
        """Among shown co-bought pairs (A, B) where B has a list, the share B's list does not show A.

        (B, A) shown is itself a shown co-bought pair (support is symmetric; A has a list), so
        the co-bought pairs kept from every chunk are all the check needs.
        """
        spec = self.t.asymmetry
        a, b = self._pairs()
        with_list = self.is_seed[b]
        a, b = a[with_list], b[with_list]
        n = np.int64(len(self.items.index) + 1)
        one_way = ~pd.Index(b * n + a).isin(a * n + b)
        index = self.items.index
        examples = [
            (str(index[x]), str(index[y])) for x, y in zip(a[one_way][:10], b[one_way][:10], strict=True)
        ]
        value = float(one_way.mean()) if len(a) else None
        detail = (
            f"{int(one_way.sum())} of {len(a)} shown co-bought pairs (bought together >= {spec.min_support} "
            "times) are not shown the other way"
            if len(a)
            else f"no shown pair is co-bought >= {spec.min_support} times"
        )
        return _result(
            "asymmetry",
            "Complementary asymmetry (A->B shown, B->A not)",
            value,
            spec,
            spec.max_share,
            "max",
            detail,
            examples,
        )


def slice_hit_rates(
    lists: Mapping[str, Sequence[str]],
    train: Any,
    test: Any,
    catalog: pd.DataFrame,
    spec: SliceCheck,
    basket_targets: str = "rest",
    cases: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    """HR@k of all held-out cases and of each slice: ``{"overall": (hr, n), "slices": {name: (hr, n)}}``.

    The lists are looked up by seed (the run's lists under the preset); a seed without a
    list is a miss. Slices: ``cold items`` (cases whose targets are cold items: fewer than
    ``cold_threshold`` training interactions), ``rare categories`` (seeds whose leaf category
    has under ``rare_share`` of the training interactions), ``category: X`` (seeds under each
    top-level category X). ``cases``: :func:`recsys.evaluation.build_cases` of ``test`` when the
    caller has them already.
    """
    from recsys.evaluation import build_cases, cold_items

    if cases is None:
        cases = build_cases(test, max_cases=spec.max_cases, basket_targets=basket_targets)
    seeds, targets = cases
    if not len(seeds):
        return {"overall": (None, 0), "slices": {}}
    hit = np.array(
        [
            bool(set(lists.get(str(s), ())) & {str(t) for t in tg})
            for s, tg in zip(seeds, targets, strict=True)
        ]
    )
    out: dict[str, tuple[float | None, int]] = {}

    def add(name: str, mask: np.ndarray) -> None:
        n = int(mask.sum())
        out[name] = (float(hit[mask].mean()) if n else None, n)

    cold = set(cold_items(train, spec.cold_threshold, catalog["item_id"].astype(str)).tolist())
    add("cold items", np.array([any(str(t) in cold for t in tg) for tg in targets], dtype=bool))
    cat = catalog.drop_duplicates("item_id")
    leaf_of = dict(zip(cat["item_id"].astype(str), cat["category"].fillna("").astype(str), strict=True))
    leaf_events = pd.Series(train.interactions["item_id"].astype(str).map(leaf_of)).value_counts()
    total = max(int(leaf_events.sum()), 1)
    leaves = set(cat["category"].fillna("").astype(str)) - {""}
    rare = {c for c in leaves if leaf_events.get(c, 0) / total < spec.rare_share}
    seed_leaf = np.array([leaf_of.get(str(s), "") for s in seeds], dtype=object)
    add("rare categories", np.isin(seed_leaf, list(rare)))
    top_of = dict(
        zip(
            cat["item_id"].astype(str), category_level(cat["category"].fillna("").astype(str), 0), strict=True
        )
    )
    seed_top = np.array([top_of.get(str(s), "") or "(none)" for s in seeds], dtype=object)
    for top in sorted(set(seed_top)):
        add(f"category: {top}", seed_top == top)
    return {"overall": (float(hit.mean()), len(seeds)), "slices": out}


def check_slices(rates: dict[str, Any] | None, spec: SliceCheck, k: int) -> CheckResult:
    name, label = "slices", f"Slice HR@{k} against all cases"
    if rates is None:
        return _result(name, label, None, spec, spec.min_ratio, "min", "no held-out cases (no interactions)")
    overall, n_all = rates["overall"]
    if not overall:
        detail = "no held-out case" if not n_all else f"HR@{k} of all {n_all} cases is 0"
        return _result(name, label, None, spec, spec.min_ratio, "min", detail)
    judged = {s: (hr, n) for s, (hr, n) in rates["slices"].items() if n >= spec.min_cases}
    small = sorted(s for s, (_, n) in rates["slices"].items() if n < spec.min_cases)
    ratios = {s: hr / overall for s, (hr, n) in judged.items()}
    examples = [
        {"slice": s, f"hr@{k}": round(judged[s][0], 4), "cases": judged[s][1], "ratio": round(r, 3)}
        for s, r in sorted(ratios.items(), key=lambda x: x[1])
    ]
    worst = min(ratios, key=ratios.get) if ratios else None
    detail = (
        f"worst slice '{worst}': HR@{k} {judged[worst][0]:.3f} on {judged[worst][1]} cases vs "
        f"{overall:.3f} on all {n_all}"
        if worst
        else f"no slice has {spec.min_cases} cases"
    )
    if small:
        detail += f"; too few cases to judge: {', '.join(small[:5])}{' ...' if len(small) > 5 else ''}"
    return _result(
        name, label, ratios[worst] if worst else None, spec, spec.min_ratio, "min", detail, examples
    )


def run_checks(
    lists: Mapping[str, Sequence[str]],
    catalog: pd.DataFrame,
    k: int,
    thresholds: CheckThresholds | None = None,
    interactions: pd.DataFrame | None = None,
    slice_rates: dict[str, Any] | None = None,
    run: str | None = None,
    preset: str | None = None,
) -> CheckReport:
    """Every check on ``lists`` (seed -> ranked ids, cut to ``k``), as one chunk of :class:`ListChecks`.

    ``interactions`` (co-bought pairs) feeds the asymmetry check and ``slice_rates``
    (:func:`slice_hit_rates`) the slice check; without them those checks are "n/a".
    """
    checks = ListChecks(catalog, k, thresholds, interactions=interactions, run=run, preset=preset)
    checks.add(lists)
    return checks.report(slice_rates)


# -- runs -------------------------------------------------------------------------------------
def run_split(registry: Any, meta: dict[str, Any]) -> tuple[Any, Any, Any] | None:
    """(dataset, train, test) of a run, split as it was evaluated; None without interactions."""
    from recsys.data.schema import load_dataset
    from recsys.evaluation import split

    dataset = load_dataset(meta["dataset"]["name"], registry.root)
    if not len(dataset.interactions):
        return None
    stored = meta.get("split") or {}
    method = stored.get("method", "time")
    if method == "given":
        if not stored.get("test_dataset"):
            return None
        return dataset, dataset, load_dataset(stored["test_dataset"], registry.root)
    options = {k: stored[k] for k in ("test_fraction", "test_days", "cutoff") if k in stored}
    try:
        train, test = split(dataset, method=method, **options)
    except RecsysError as exc:  # e.g. too few sequences to hold any out
        logger.info("checks of %s without slices: %s", meta.get("run_id"), exc)
        return dataset, dataset, None
    return dataset, train, test


def table_checks(
    registry: Any,
    run_id: str,
    k: int,
    thresholds: CheckThresholds | None = None,
    preset: str | None = None,
    parts: tuple[Any, Any, Any] | None | bool = False,
) -> ListChecks:
    """:class:`ListChecks` of a run's lists, set up with its dataset's baskets and held-out cases
    (``parts``: the run's :func:`run_split` when the caller has it already): feed it the table
    chunk by chunk, then ask its report."""
    meta = registry.get(run_id)
    t = thresholds or CheckThresholds()
    if parts is False:
        parts = run_split(registry, meta)
    if parts is None:
        from recsys.data.schema import load_dataset

        dataset, train, test = load_dataset(meta["dataset"]["name"], registry.root), None, None
    else:
        dataset, train, test = parts
    slices = None
    if test is not None:
        from recsys.evaluation import build_cases

        basket_targets = (meta.get("split") or {}).get(
            "basket_targets", "next" if dataset.kind == "baskets" else "rest"
        )
        cases = build_cases(test, max_cases=t.slices.max_cases, basket_targets=basket_targets)

        def rates(lists: Mapping[str, Sequence[str]]) -> dict[str, Any]:
            return slice_hit_rates(
                lists, train, test, dataset.catalog, t.slices, basket_targets=basket_targets, cases=cases
            )

        slices = ({str(s) for s in cases[0]}, rates)
    return ListChecks(
        dataset.catalog, k, t, interactions=dataset.interactions, slices=slices, run=run_id, preset=preset
    )


def checks_for_lists(
    registry: Any,
    run_id: str,
    lists: Mapping[str, Sequence[str]],
    k: int,
    thresholds: CheckThresholds | None = None,
    preset: str | None = None,
    parts: tuple[Any, Any, Any] | None | bool = False,
) -> CheckReport:
    """:func:`run_checks` of a run's lists with its dataset's baskets and held-out cases
    (:func:`table_checks` fed the whole table as one chunk)."""
    checks = table_checks(registry, run_id, k, thresholds, preset=preset, parts=parts)
    checks.add(lists)
    return checks.report()


def check_run(
    root: Any,
    run_id: str,
    preset: str | None = None,
    k: int = 10,
    thresholds: CheckThresholds | None = None,
    max_seeds: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> CheckReport:
    """Run every check on a run's lists under a saved preset (no filters when None).

    The lists are the run's filtered search (Explore's and the API's code path) for
    every item it has a vector for, or for ``max_seeds`` of them drawn reproducibly
    (the test seeds of the slice check are always added, so slices are measured whole);
    they are searched and checked 4,096 seeds at a time (:class:`ListChecks`).
    """
    from recsys.compare import sample_seeds
    from recsys.filters import FilterConfig, PresetStore
    from recsys.registry import Registry
    from recsys.vetting.precision import run_lists

    progress = progress or null_progress
    root = data_dir(root)
    registry = Registry(root)
    meta = registry.get(run_id)
    config = PresetStore(root).load(preset) if preset else FilterConfig()
    t = thresholds or CheckThresholds()
    model = registry.load_model(run_id)
    ids = [str(i) for i in np.asarray(model.item_ids_)]
    seeds = ids if max_seeds is None else sample_seeds(ids, max_seeds, seed)
    parts = run_split(registry, meta)
    if max_seeds is not None and parts is not None and parts[2] is not None:
        from recsys.evaluation import build_cases

        case_seeds, _ = build_cases(parts[2], max_cases=t.slices.max_cases)
        known = set(ids)
        seeds = sorted(set(seeds) | {str(s) for s in case_seeds if str(s) in known})
    checks = table_checks(registry, run_id, k, t, preset=preset, parts=parts)
    chunk = 4096  # seeds searched and checked at a time: the lists are never all in memory
    for start in range(0, len(seeds), chunk):
        progress(start, len(seeds), f"lists of {start}/{len(seeds)} seeds checked")
        checks.add(run_lists(registry, run_id, seeds[start : start + chunk], config, k))
    progress(len(seeds), len(seeds), "done")
    return checks.report()


__all__ = [
    "CheckReport",
    "CheckResult",
    "CheckThresholds",
    "ChecksConfigError",
    "ChecksFailedError",
    "ListChecks",
    "check_run",
    "checks_for_lists",
    "load_thresholds",
    "run_checks",
    "slice_hit_rates",
    "table_checks",
]

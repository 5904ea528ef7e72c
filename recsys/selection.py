"""Which variant to recommend, from each variant's hits on the same validation cases.

The highest validation hit rate alone picks among variants the validation cases cannot tell
apart: on REES46 (s35-q) vsknn led sknn by 2 cases of 844 and was recommended, and it trailed by
1 case of 440 on the test split. The rule here is parsimony within the noise, the
"one-standard-error rule" (Breiman, Friedman, Olshen and Stone, *Classification and Regression
Trees*, 1984; Hastie, Tibshirani and Friedman, *The Elements of Statistical Learning*, 7.10):
the simplest variant (first in the order given: baselines first) whose hit rate is within ``z``
standard errors of the best one's. The standard error is that of the *paired* difference (both
variants were scored on the same cases, so the cases both hit or both miss carry no noise): for
two session kNN variants that agree on most cases it is far narrower than their two intervals.
A variant wins over a simpler one only by a margin the validation cases can see. Never the test
split: the caller passes validation hits.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

#: standard errors of the paired difference within which a simpler variant is preferred (the
#: one-standard-error rule's 1)
Z = 1.0

#: The baseline families, simplest first; then the learned families. The rule's order wherever a
#: variant is recommended: ``bench/quality.py`` and Overview's best variant
#: (``components.pickers.best_choice``).
BASELINE_FAMILIES = ("popularity", "cooccurrence", "item_knn", "tfidf", "sknn", "vsknn")
SIMPLEST_FIRST = BASELINE_FAMILIES + ("prod2vec", "meta_prod2vec", "content", "two_tower")

#: Families whose list is the same after every seed (best sellers): recommended only when they
#: are the best on validation themselves, never as the "simpler" variant within the noise of a
#: model that answers from the item or session. A tool recommending similar items should not
#: trade the seed's relevance for parsimony: the one-standard-error rule is about overfitting, and
#: a list that ignores the seed cannot overfit it (s37-q: on Instacart popularity sat within one
#: paired error of sknn on validation and the rule named it; Overview already tells a user whose
#: best model is popularity that it shows the same items after every item).
SAME_LIST_FAMILIES = ("popularity",)

#: How a run stores its per-case validation hits (``metrics["validation"]["per_case"]``).
HITS_ENCODING = "packbits-base64"


def paired_gap(best: Any, other: Any) -> tuple[float, float]:
    """(mean of ``best - other``, its standard error) over the same cases (0/1 hits per case)."""
    d = np.asarray(best, dtype=np.float64) - np.asarray(other, dtype=np.float64)
    n = len(d)
    if n == 0:
        return 0.0, 0.0
    se = float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    return float(d.mean()), se


def recommend(
    hits: Mapping[str, Any], z: float = Z, only_if_best: Collection[str] = SAME_LIST_FAMILIES
) -> tuple[str | None, dict[str, Any]]:
    """(the variant to recommend, why) from ``hits``: variant -> its per-case hits (0/1, the
    same validation cases in the same order for every variant), simplest variant first.

    The best is the highest hit rate (a tie to the simpler); the recommended is the first variant
    whose paired gap to the best is at most ``z`` standard errors of that gap (the best itself at
    the latest), skipping those in ``only_if_best`` unless one is the best itself
    (:data:`SAME_LIST_FAMILIES`). ``why``: ``{"best", "z", "gaps": {variant: {"gap", "se"}}}``
    (hit-rate points).
    """
    names = list(hits)
    if not names:
        return None, {"best": None, "z": z, "gaps": {}}
    rate = {m: float(np.mean(hits[m])) if len(hits[m]) else 0.0 for m in names}
    best = max(names, key=lambda m: (rate[m], -names.index(m)))
    gaps = {m: paired_gap(hits[best], hits[m]) for m in names}
    chosen = next(
        (m for m in names if (m == best or m not in only_if_best) and gaps[m][0] <= z * gaps[m][1]), best
    )
    why = {
        "best": best,
        "z": z,
        "gaps": {m: {"gap": round(g, 4), "se": round(se, 4)} for m, (g, se) in gaps.items()},
    }
    return chosen, why


def cases_fingerprint(seeds: Sequence[Any], targets: Sequence[Any], k: int) -> str:
    """A digest of evaluation cases (each seed and its targets, in order) and the cut-off: two
    runs' per-case hits are compared only when their fingerprints are equal (the same cases)."""
    lines = "\n".join(f"{s}\t{' '.join(map(str, np.atleast_1d(t)))}" for s, t in zip(seeds, targets))
    return hashlib.sha256(f"k={int(k)}\n{lines}".encode()).hexdigest()[:20]


def pack_hits(hits: Any, fingerprint: str) -> dict[str, Any]:
    """Per-case hits as run.json keeps them: the bits packed, base64 (3,000 cases: 500 bytes),
    their number and the cases' fingerprint (:func:`cases_fingerprint`)."""
    bits = np.asarray(hits, dtype=bool)
    return {
        "n": int(len(bits)),
        "hits": base64.b64encode(np.packbits(bits).tobytes()).decode("ascii"),
        "cases": str(fingerprint),
        "encoding": HITS_ENCODING,
    }


def unpack_hits(stored: Any) -> tuple[np.ndarray | None, str]:
    """(the hits, the cases' fingerprint) of :func:`pack_hits`' dict, or (None, why not, a
    clause after the run's name): none stored (a run from before they were kept), or damaged."""
    if not isinstance(stored, Mapping):
        return None, "has no per-case validation hits stored (a run trained before they were kept)"
    n, text, cases = stored.get("n"), stored.get("hits"), stored.get("cases")
    if stored.get("encoding") != HITS_ENCODING or not isinstance(n, int) or n < 0:
        return None, "stores its per-case validation hits in a form this version does not read"
    if not isinstance(text, str) or not isinstance(cases, str) or not cases:
        return None, "has damaged per-case validation hits"
    try:
        raw = np.frombuffer(base64.b64decode(text.encode("ascii"), validate=True), dtype=np.uint8)
    except (binascii.Error, ValueError):
        return None, "has damaged per-case validation hits"
    if len(raw) != (n + 7) // 8:
        return None, "has damaged per-case validation hits"
    return np.unpackbits(raw, count=n).astype(bool), cases

"""Prod2Vec and Meta-Prod2Vec: gensim Word2Vec over sessions and baskets.

Prod2Vec (Grbovic et al., 2015) treats each session or basket as a sentence and each
item as a word; skip-gram with negative sampling places items that appear in the same
contexts close together. Meta-Prod2Vec (Vasile et al., 2016) adds the items' metadata
(category, brand) as extra tokens so that metadata shapes the space and so that items
that were too rare to get their own vector (below ``min_count``, or never seen in the
interactions) still get one: the mean of their category and brand token vectors.

``DEFAULT_PARAMS`` are gensim's defaults (with skip-gram, as Prod2Vec prescribes);
``TUNED_PARAMS`` are the settings that did best on a validation split carved from the
training part of Online Retail (see ``bench/quality.py``); Meta-Prod2Vec uses
``META_TUNED_PARAMS``. Published work on
Word2Vec for recommendation (Caselles-Dupré et al., 2018) finds that the window, the
number of epochs, the sub-sampling threshold ``sample`` and the negative-sampling
exponent ``ns_exponent`` matter most.

gensim's running loss is a cumulative float32 that saturates on long runs
(piskvorky/gensim#2735), so the models log and keep per-epoch loss *deltas*.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from recsys.config import Progress, null_progress
from recsys.data.schema import category_level as _category_level
from recsys.errors import ModelFitError
from recsys.models.base import EmbeddingModel
from recsys.models.params import Param, with_defaults
from recsys.sequences import SEPARATE_BY, build_sequences

logger = logging.getLogger(__name__)

CAT_PREFIX = "cat:"
BRAND_PREFIX = "brand:"

#: gensim 4 defaults (except sg=1: Prod2Vec is skip-gram), plus the sequence settings.
#: Not the model's defaults any more (see :data:`RECOMMENDED_PARAMS`): gensim's
#: ``min_count=5`` silently drops every item seen fewer than 5 times, which left most of
#: the catalogue without a vector on real session samples.
DEFAULT_PARAMS: dict[str, Any] = {
    "vector_size": 100,
    "window": 5,
    "min_count": 5,
    "negative": 5,
    "ns_exponent": 0.75,
    "sample": 1e-3,
    "epochs": 5,
    "sg": 1,
    "alpha": 0.025,
    "min_alpha": None,
    "hs": 0,
    "cbow_mean": 1,
    "shrink_windows": True,
    "vectors": "input",
    "seed": 0,
    "workers": 2,
    "separate_by": None,
    "category_level": 0,
    "max_len": 20,
    "dedupe": True,
    "fallback": "category",
}
GENSIM_DEFAULTS = DEFAULT_PARAMS
#: The Runs form's "gensim defaults" starting point (min_alpha spelt as gensim's 0.0001).
GENSIM_PRESET: dict[str, Any] = {**GENSIM_DEFAULTS, "min_alpha": 0.0001}

#: How items with no vector of their own (unseen in training, or below ``min_count``) are
#: served: "category" gives them the mean vector of the items of their category (the full
#: category path, else its top level) and marks them in ``fallback_``; "none" leaves them out.
FALLBACKS = ("category", "none")

#: What an item's vectors are: gensim's input vector; input plus output ("context")
#: vector (Levy, Goldberg & Dagan, 2015, "w+c"); or a pair, "in-out": a seed is looked
#: up by its input vector among the candidates' output vectors (the IN-OUT score of
#: Nalisnick et al., 2016: how well one item predicts the other, first-order
#: co-occurrence, rather than how alike their contexts are). Output vectors exist with
#: negative sampling only.
VECTORS = ("input", "input+output", "in-out", "auto")

#: ``vectors="auto"`` (the recommended setting): the space is chosen at fit time among
#: these, on a validation split carved from the training data (see
#: ``Prod2Vec._choose_vectors``). Why: in-out (first-order, "what comes next") won on
#: Online Retail's validation split (dense baskets: ~130 lines per stock code) but
#: collapsed on Taobao's (sparse view sessions: ~1.5 events per item; validation HR@20
#: 0.011 against 0.158 for input vectors with the same training), where most output
#: vectors are trained by a handful of updates and the cosine of those near-zero vectors
#: ranks noise. One training run gives all three spaces, so the choice costs one fit on
#: 90% of the data plus three scorings of at most ``AUTO_MAX_CASES`` cases.
#: The first is kept where no validation split can be carved (and wins ties): w+c is the
#: least-regret space, 0.95x in-out on Online Retail's validation split (HR@10 0.3215
#: against 0.3367) but 21x it on Taobao's (HR@20 0.200 against 0.0095).
AUTO_VECTORS = ("input+output", "in-out", "input")
AUTO_VALIDATION_FRACTION = 0.1
AUTO_MAX_CASES = 2000

#: Chosen on a validation split carved from the training part of Online Retail (the
#: last 28 days before the test weeks; next-line HR@10 on all 57,899 validation cases),
#: never on the test weeks; ``bench/tune_prod2vec.py`` repeats the search. A first
#: search (epochs 5-80, window 1/2/3/5/10/20, sample 1e-5..1e-3, ns_exponent
#: -0.5..1, negative 5-20, min_count 1/2/5, alpha 0.025/0.05, vector_size 50/100)
#: found more epochs with a larger learning rate, a narrow window (the next line of an
#: invoice is what is predicted), uniform negatives (ns_exponent 0) and more
#: negatives: 0.3146. A second, staged search kept input+output ("w+c") vectors and a
#: final learning rate of 0.005 (0.3215); about 40 other changes sat on that plateau.
#: A third search scored seeds' input vectors against candidates' output vectors
#: ("in-out": 0.3291 at window 2), then narrowed the window to the next line (0.3339)
#: and went back to gensim's sub-sampling threshold 1e-3 (0.3367; 1e-4 0.3339, 3e-3
#: 0.3353, none 0.3348). In-out settings that did not help: 25 negatives (0.3335),
#: 60 epochs (0.3319), min_count 2 (0.3324), vector_size 200 (0.3335), no max_len
#: (0.3325), ns_exponent 0.5 (0.3076 at window 2). Validation HR@10: gensim defaults
#: (CBOW) 0.2773, skip-gram defaults 0.2751, these 0.3367 (1.21x / 1.22x); with seeds
#: 1 and 2 instead of 0, see ``bench/tune_prod2vec.py --confirm-seeds``.
TUNED_PARAMS: dict[str, Any] = {
    "epochs": 40,
    "alpha": 0.05,
    "min_alpha": 0.005,
    "window": 1,
    "ns_exponent": 0.0,
    "negative": 15,
    "vectors": "in-out",
}

#: Meta-Prod2Vec keeps the settings of the second search (w+c vectors, window 2, sample
#: 1e-4). With in-out vectors, the items that get a vector from their metadata (the mean
#: of their category and brand tokens' output vectors) become hubs: a token is the
#: context of every item of its category, so its output vector scores high against
#: most seeds, and those items crowd every list (Online Retail next-line HR@10 0.120
#: against 0.348; popularity bias 0.18).
META_TUNED_PARAMS: dict[str, Any] = {**TUNED_PARAMS, "window": 2, "sample": 1e-4, "vectors": "input+output"}


def tuned_params(family: str) -> dict[str, Any]:
    """The tuned settings of ``family`` ("prod2vec" or "meta_prod2vec"), a fresh dict."""
    return dict(META_TUNED_PARAMS if family == "meta_prod2vec" else TUNED_PARAMS)


#: The model's defaults: the tuned settings, keeping every item that occurs (min_count 1);
#: a starting point that ``recsys train prod2vec --tune`` searches around on each dataset.
#: The vector space is chosen on each dataset ("auto", see :data:`AUTO_VECTORS`): the fixed
#: in-out space collapsed on sparse view sessions (Taobao) that nobody tuned it for.
RECOMMENDED_PARAMS: dict[str, Any] = {**DEFAULT_PARAMS, **TUNED_PARAMS, "min_count": 1, "vectors": "auto"}
META_RECOMMENDED_PARAMS: dict[str, Any] = {
    **DEFAULT_PARAMS,
    **META_TUNED_PARAMS,
    "min_count": 1,
    "vectors": "auto",
}

#: One help line per parameter (the Runs form shows them).
PARAM_HELP: dict[str, str] = {
    "vector_size": "Dimensions of each item vector (gensim 100).",
    "window": "Items on each side that count as context; 1 = the next/previous item only.",
    "min_count": "Items seen fewer times get no own vector (served by the fallback); 1 keeps all.",
    "negative": "Negative samples per positive pair (more helps rare items, costs time).",
    "ns_exponent": "Shape of the negative-sampling distribution: 0.75 favours popular items, 0 uniform.",
    "sample": "Down-sampling threshold of frequent items (0 = none; gensim 1e-3).",
    "epochs": "Passes over the sequences; small data needs more.",
    "sg": "1 = skip-gram (Prod2Vec as published), 0 = CBOW.",
    "alpha": "Initial learning rate.",
    "min_alpha": "Final learning rate (empty = gensim's 0.0001).",
    "hs": "1 = hierarchical softmax instead of negative sampling.",
    "cbow_mean": "CBOW only: 1 averages context vectors, 0 sums them.",
    "shrink_windows": "Draw a smaller window per word so near neighbours weigh more.",
    "vectors": "input; input+output (w+c); in-out = a seed's input vs candidates' output (next item); "
    "auto = the best of those three on a validation split of the training data (one more fit).",
    "seed": "Random seed (bit-reproducible only with workers = 1).",
    "workers": "Training threads.",
    "separate_by": "Split sequences by category (or category+gender) before training.",
    "category_level": "Category level used by separate_by.",
    "max_len": "Cut sequences into chunks of at most this many items (empty = whole).",
    "dedupe": "Collapse consecutive repeats of an item (a a b -> a b).",
    "fallback": "Items without an own vector: the mean vector of their category (category) or none.",
    "meta_category_level": "Category level of the category token (empty = the full path).",
    "use_brand": "Add brand tokens to the sequences.",
    "fill_from_metadata": "Give items without an own vector the mean of their category/brand tokens "
    "(with vectors = auto, kept only where it scores best on validation).",
}


#: Prod2Vec's parameters: kind and allowed range (the defaults are RECOMMENDED_PARAMS)
_PARAM_KINDS: dict[str, Param] = {
    "vector_size": Param(None, "int", low=1),
    "window": Param(None, "int", low=1),
    "min_count": Param(None, "int", low=1),
    "negative": Param(None, "int", low=0),
    "ns_exponent": Param(None, "float"),
    "sample": Param(None, "float", low=0),
    "epochs": Param(None, "int", low=1),
    "sg": Param(None, "choice", choices=(0, 1)),
    "alpha": Param(None, "float", low=0, low_open=True),
    "min_alpha": Param(None, "float", low=0, low_open=True, optional=True),
    "hs": Param(None, "choice", choices=(0, 1)),
    "cbow_mean": Param(None, "choice", choices=(0, 1)),
    "shrink_windows": Param(None, "bool"),
    "vectors": Param(None, "choice", choices=VECTORS),
    "seed": Param(None, "int", low=0),
    "workers": Param(None, "int", low=1),
    "separate_by": Param(None, "choice", choices=SEPARATE_BY),
    "category_level": Param(None, "int", low=0),
    "max_len": Param(None, "int", low=2, optional=True),
    "dedupe": Param(None, "bool"),
    "fallback": Param(None, "choice", choices=FALLBACKS),
}
_META_PARAM_KINDS: dict[str, Param] = {
    **_PARAM_KINDS,
    "meta_category_level": Param(None, "int", low=0, optional=True),
    "use_brand": Param(None, "bool"),
    "fill_from_metadata": Param(None, "bool"),
}


def describe_auto_choice(c: dict[str, Any]) -> str:
    """One line: what a fit-time "auto" setting chose (run.json's ``auto_choice``, a model's
    ``choice_``), on what, and the candidates' validation scores. ``recsys train`` prints it
    and the Runs page shows it for the selected run."""
    scores = ", ".join(f"{name} {v['hr@20']:.4f}" for name, v in (c.get("validation") or {}).items())
    on = f" on {c['cases']} validation cases ({c['split']})" if c.get("cases") else ""
    seen = f": validation {c['metric']} {scores}" if scores else f": {c.get('why', '')}"
    return f"{c['param']}=auto chose {c['chosen']}{on}{seen}; it cost {c.get('seconds', 0)} s"


class _EpochLogger:
    """gensim callback: per-epoch loss deltas (gensim's own loss is cumulative)."""

    def __init__(self, family: str, epochs: int, progress: Progress) -> None:
        self.family = family
        self.epochs = epochs
        self.progress = progress
        self.epoch = 0
        self.previous = 0.0
        self.deltas: list[float] = []
        self.started = time.perf_counter()

    # gensim calls these by name; the class need not subclass CallbackAny2Vec
    def on_train_begin(self, model: Any) -> None:
        self.started = time.perf_counter()

    def on_epoch_begin(self, model: Any) -> None:
        pass

    def on_batch_begin(self, model: Any) -> None:
        pass

    def on_batch_end(self, model: Any) -> None:
        pass

    def on_train_end(self, model: Any) -> None:
        pass

    def on_epoch_end(self, model: Any) -> None:
        current = float(model.get_latest_training_loss())
        delta = current - self.previous if current >= self.previous else current
        self.previous = current
        self.deltas.append(delta)
        self.epoch += 1
        msg = f"{self.family}: epoch {self.epoch}/{self.epochs} loss {delta:.1f}"
        logger.info("%s (%.1f s)", msg, time.perf_counter() - self.started)
        self.progress(self.epoch, self.epochs, msg)


class Prod2Vec(EmbeddingModel):
    """Item vectors from gensim Word2Vec (skip-gram, negative sampling) over sequences.

    Parameters
    ----------
    vector_size, window, min_count, negative, ns_exponent, sample, epochs, sg, alpha, seed, workers
        Passed to ``gensim.models.Word2Vec``. Results are deterministic for a given
        ``seed`` only with ``workers=1``.
    min_alpha : float or None
        Learning rate at the end of training (decays linearly from ``alpha``); must be
        > 0 and <= ``alpha``. None = gensim's 0.0001 (or ``alpha`` when smaller).
    hs : {0, 1}
        1 = hierarchical softmax. ``negative`` may then be 0 (no negative sampling);
        with ``hs=0`` it must be >= 1.
    cbow_mean : {0, 1}
        CBOW only (``sg=0``): 1 averages the context vectors, 0 sums them.
    shrink_windows : bool
        True (gensim's default) draws a window between 1 and ``window`` for every word,
        so near neighbours weigh more; False always uses the full ``window``.
    vectors : {"auto", "input", "input+output", "in-out"}
        An item's vector: gensim's input vector, or the sum of its input and output
        (context) vectors ("w+c", Levy et al., 2015), which mixes in how well one item
        *predicts* another. "in-out" keeps both: ``vectors_`` (what is indexed and
        ranked) are the output vectors and ``query_vectors_`` (what a seed is looked up
        by) the input vectors, so a seed's neighbours are the items it predicts
        (Nalisnick et al., 2016), which suits next-item and bought-together use. Both
        need ``negative >= 1``. "auto" (the default) picks one of those three on a
        validation split carved from the training data (:data:`AUTO_VECTORS`), recorded
        in ``choice_``.
    separate_by : {None, "category", "category+gender"}
        Context separation of sequences (:func:`recsys.sequences.build_sequences`).
    category_level : int
        Category level used by ``separate_by``.
    max_len : int or None
        Sequences are cut into chunks of at most this many items.
    dedupe : bool
        Collapse consecutive repeats of an item in a sequence (``a a b`` -> ``a b``).

    Fitted attributes
    -----------------
    item_ids_ : numpy.ndarray of str
    vectors_ : numpy.ndarray of float32, shape (n_items, vector_size)
    loss_history_ : list of float
        Training loss of each epoch (delta of gensim's cumulative loss).
    coverage_ : dict
        Catalogue items with a vector; items below ``min_count`` have none.
    choice_ : dict or None
        What ``vectors="auto"`` chose and why (each candidate's validation HR@20 and
        MRR@20, the split, the cases, the seconds it cost); None otherwise.
    validation_fit_ : dict or None
        ``vectors="auto"`` only, in memory (never saved): the choice's fit on the validation
        carve in the chosen space (``model``), that carve (``fit_part``, ``valid``) and how it
        was cut (``method``, ``fraction``); the run's validation score reuses it.
    """

    family: ClassVar[str] = "prod2vec"
    param_specs: ClassVar[dict[str, Param]] = with_defaults(_PARAM_KINDS, RECOMMENDED_PARAMS)
    param_help: ClassVar[dict[str, str]] = PARAM_HELP
    #: named starting points of the Runs form (the defaults are "recommended")
    param_presets: ClassVar[dict[str, dict[str, Any]]] = {"gensim defaults": dict(GENSIM_PRESET)}

    # -- fitting -----------------------------------------------------------
    def _check_together(self, p: dict[str, Any]) -> None:
        if p["negative"] == 0 and p["hs"] != 1:
            raise ModelFitError(
                f"{self.family}: parameter 'negative' must be >= 1 unless hs=1 (hierarchical softmax), got 0"
            )
        if p["negative"] == 0 and p["vectors"] not in ("input", "auto"):
            raise ModelFitError(
                f"{self.family}: parameter 'vectors'={p['vectors']!r} needs negative sampling (output vectors); "
                "set 'negative' >= 1"
            )
        if p["min_alpha"] is not None and p["min_alpha"] > p["alpha"]:
            raise ModelFitError(
                f"{self.family}: parameter 'min_alpha' must be <= alpha ({p['alpha']!r}), got {p['min_alpha']!r}"
            )

    def _sequences(self, dataset: Any) -> list[list[str]]:
        p = self.params
        return build_sequences(
            dataset,
            separate_by=p["separate_by"],
            category_level=p["category_level"],
            max_len=p["max_len"],
            dedupe_consecutive=bool(p["dedupe"]),
        )

    def _corpus(self, dataset: Any, sequences: list[list[str]]) -> tuple[list[list[str]], int]:
        """Sentences given to gensim and the window to use."""
        return sequences, int(self.params["window"])

    def fit(self, dataset: Any, progress: Progress | None = None) -> Prod2Vec:
        """Train on the dataset's sequences.

        With ``vectors="auto"`` the vector space is first chosen on a validation split
        carved from ``dataset`` (:meth:`_choose_vectors`; one more fit, on 90% of it),
        and recorded in ``choice_``.

        Raises
        ------
        ModelFitError
            For an invalid parameter (named in the message), or when no sequence with
            two or more items exists, or no item reaches ``min_count``.
        """
        progress = progress or null_progress
        self._validate()
        p = self.params
        started = time.perf_counter()
        self.choice_ = None
        self.validation_fit_ = None
        self._chosen = {}
        vectors = p["vectors"]
        if vectors == "auto":  # the validation fit is the first half of the bar, the fit the second
            vectors, self._chosen = self._choose_vectors(
                dataset, lambda d, n, msg: progress(d, 2 * n, f"vectors=auto, validation fit: {msg}")
            )
            whole = progress
            progress = lambda d, n, msg: whole(n + d, 2 * n, msg)  # noqa: E731
        w2v, sequences = self._train(dataset, progress)
        self._finish(w2v, sequences, dataset, vectors)
        logger.info(
            "%s: %d item vectors (dim %d, %s) from %d sequences in %.1f s",
            self.family,
            len(self.item_ids_),
            p["vector_size"],
            vectors,
            len(sequences),
            time.perf_counter() - started,
        )
        return self

    def _train(self, dataset: Any, progress: Progress) -> tuple[Any, list[list[str]]]:
        """gensim's Word2Vec trained on ``dataset``'s sequences, and those sequences."""
        from gensim.models import Word2Vec

        p = self.params
        sequences = self._sequences(dataset)
        if not sequences:
            raise ModelFitError(
                f"{self.family}: dataset '{getattr(dataset, 'name', '?')}' has no sequence with 2 or more items"
            )
        corpus, window = self._corpus(dataset, sequences)
        progress(0, p["epochs"], f"{self.family}: building vocabulary over {len(corpus)} sequences")
        w2v = Word2Vec(
            vector_size=p["vector_size"],
            window=window,
            min_count=p["min_count"],
            negative=p["negative"],
            ns_exponent=float(p["ns_exponent"]),
            sample=float(p["sample"]),
            sg=p["sg"],
            hs=p["hs"],
            cbow_mean=p["cbow_mean"],
            alpha=float(p["alpha"]),
            min_alpha=min(0.0001, float(p["alpha"])) if p["min_alpha"] is None else float(p["min_alpha"]),
            seed=p["seed"],
            workers=p["workers"],
            max_vocab_size=None,
            shrink_windows=bool(p["shrink_windows"]),
        )
        w2v.build_vocab(corpus)
        if len(w2v.wv) == 0:
            raise ModelFitError(
                f"{self.family}: no token occurs at least min_count={p['min_count']} times; lower 'min_count'"
            )
        cb = _EpochLogger(self.family, p["epochs"], progress)
        w2v.train(
            corpus,
            total_examples=w2v.corpus_count,
            epochs=p["epochs"],
            compute_loss=True,
            callbacks=[cb],
        )
        self.loss_history_ = list(cb.deltas)
        return w2v, sequences

    def _finish(self, w2v: Any, sequences: list[list[str]], dataset: Any, vectors: str) -> None:
        """Set the fitted vectors of the space ``vectors`` from a trained Word2Vec."""
        # rows of syn1neg (output vectors) follow wv's vocabulary order
        if vectors == "input":
            spaces = {"vectors_": w2v.wv.vectors}
        elif vectors == "input+output":  # w + c
            spaces = {"vectors_": w2v.wv.vectors + w2v.syn1neg}
        else:  # in-out: candidates in the output space, seeds in the input space
            spaces = {"vectors_": w2v.syn1neg, "query_vectors_": w2v.wv.vectors}
        item_set = {t for s in sequences for t in s}
        self._set_vectors_from(w2v.wv.key_to_index, spaces, item_set, dataset)
        self._build_lookup()
        self._unit = self._query_unit = None

    def _setting(self, name: str) -> Any:
        """A parameter as this fit uses it: what ``vectors="auto"`` chose with the space
        (Meta-Prod2Vec's metadata fill), else the parameter."""
        return getattr(self, "_chosen", {}).get(name, self.params[name])

    def _auto_candidates(self) -> list[tuple[str, str, dict[str, Any]]]:
        """What ``vectors="auto"`` chooses among: (name, vector space, other settings it
        implies), every one served from the same fit. Prod2Vec: the spaces."""
        spaces = AUTO_VECTORS if self.params["negative"] >= 1 else ("input",)
        return [(v, v, {}) for v in spaces]

    def _choose_vectors(self, dataset: Any, progress: Progress) -> tuple[str, dict[str, Any]]:
        """``vectors="auto"``: the candidate of :meth:`_auto_candidates` (the spaces of
        :data:`AUTO_VECTORS`; for Meta-Prod2Vec each with and without the metadata fill)
        with the best next-item HR@20 on a validation split carved from ``dataset`` (the
        training data: the latest 10% of its sequences by time, or each sequence's last
        item without timestamps), from ONE fit on the rest scored as every candidate; ties
        keep the earlier candidate. Recorded in ``choice_`` (candidates, validation HR@20
        and MRR@20, cases, seconds, why). With no validation case (tiny data) the first
        candidate is kept, and says so. Returns the space and the other settings chosen."""
        from recsys.evaluation import build_session_cases, evaluate_sessions, split

        t0 = time.perf_counter()
        options = {name: (space, settings) for name, space, settings in self._auto_candidates()}
        candidates = list(options)
        choice: dict[str, Any] = {"param": "vectors", "candidates": candidates, "metric": "hr@20"}
        try:
            if getattr(dataset, "interactions", None) is None:  # streamed sequences (spark train)
                raise ValueError("the sequences come without interactions")
            try:
                fit_part, valid = split(dataset, "time", test_fraction=AUTO_VALIDATION_FRACTION)
                how = f"time: the latest {AUTO_VALIDATION_FRACTION:.0%} of the training sequences"
                method = "time"
            except ValueError:  # no timestamps (or too few sequences): each sequence's last item
                fit_part, valid = split(dataset, "leave_last_out")
                how = "leave-last-out: each training sequence's last item"
                method = "leave_last_out"
            cases = build_session_cases(valid, "every_position", max_cases=AUTO_MAX_CASES, seed=0)
            if not len(cases[1]):
                raise ValueError("the validation part has no next-item case")
            w2v, sequences = self._train(fit_part, progress)
        except (ValueError, ModelFitError) as exc:
            self.choice_ = {
                **choice,
                "chosen": candidates[0],
                "why": f"no validation split could be carved ({exc}); kept the first candidate",
                "seconds": round(time.perf_counter() - t0, 2),
            }
            logger.info("%s: vectors=auto kept %s: %s", self.family, candidates[0], exc)
            return options[candidates[0]]
        scores: dict[str, dict[str, float]] = {}
        for name in candidates:
            vectors, self._chosen = options[name]
            self._finish(w2v, sequences, fit_part, vectors)
            m = evaluate_sessions(self, valid, k=20, exclude_seen=False, cases=cases, catalog=dataset.catalog)
            scores[name] = {"hr@20": round(float(m["hr@20"]), 4), "mrr@20": round(float(m["mrr@20"]), 4)}
        self._chosen = {}
        chosen = max(
            candidates, key=lambda v: (scores[v]["hr@20"], scores[v]["mrr@20"], -candidates.index(v))
        )
        self.choice_ = {
            **choice,
            "chosen": chosen,
            "validation": scores,
            "split": how,
            "cases": int(len(cases[1])),
            "why": f"best validation HR@20 of {len(candidates)} candidates from one fit on the rest of the training data",
            "seconds": round(time.perf_counter() - t0, 2),
        }
        if options[chosen][1]:
            self.choice_["settings"] = dict(options[chosen][1])
        self._keep_validation_fit(w2v, sequences, fit_part, method, options[chosen])
        logger.info("%s: vectors=auto chose %s (validation %s)", self.family, chosen, scores)
        return options[chosen]

    def _keep_validation_fit(
        self,
        w2v: Any,
        sequences: list[list[str]],
        fit_part: Any,
        method: str,
        option: tuple[str, dict[str, Any]],
    ) -> None:
        """Keep the choice's fit on the validation carve, served in the chosen space, as
        ``validation_fit_`` (in memory only, never saved): a run's validation score
        (:func:`recsys.pipeline.validation_metrics`) is that model scored on that split, so
        a run with the recommended settings fits Word2Vec twice, not four times (the choice
        and the validation score both fitted the same 90% of the training data)."""
        self._chosen = dict(option[1])
        self._finish(w2v, sequences, fit_part, option[0])
        held = copy.copy(self)  # _finish sets new arrays: the run's own fit leaves these alone
        held.choice_ = None
        # the carve itself is not held (a copy of 90% of the interactions): it is cut again,
        # the same way, where the model is scored
        self.validation_fit_ = {
            "model": held,
            "method": method,
            "fraction": AUTO_VALIDATION_FRACTION if method == "time" else None,
        }
        self._chosen = {}

    def _set_vectors_from(
        self, key_to_index: dict[str, int], spaces: dict[str, np.ndarray], item_set: set[str], dataset: Any
    ) -> list[str]:
        """Set ``item_ids_`` and every fitted matrix in ``spaces`` (attribute name -> gensim
        matrix, rows in vocabulary order): the rows of the items' own tokens, then one row per
        item that :meth:`_token_fill` gives a vector from other tokens (the mean of its known
        token rows, in every space). Returns those items' ids."""
        keys = [k for k in key_to_index if k in item_set]
        rows = np.fromiter((key_to_index[k] for k in keys), dtype=np.int64, count=len(keys))
        catalog_ids = _catalog_ids(dataset, item_set)
        extra_ids, tok_rows = self._token_fill(key_to_index, keys, catalog_ids)
        known = tok_rows >= 0
        self.query_vectors_ = None
        for name, matrix in spaces.items():
            tokens = matrix[np.where(known, tok_rows, 0)] * known[..., None]
            fill = tokens.sum(axis=1) / np.maximum(known.sum(axis=1), 1)[:, None]
            setattr(self, name, np.ascontiguousarray(np.vstack([matrix[rows], fill]), dtype=np.float32))
        self.item_ids_ = np.asarray(keys + extra_ids, dtype=str)
        self._n_own = len(keys)
        cat_ids = self._category_fill(dataset, catalog_ids, list(spaces))
        self.fallback_ = np.arange(len(self.item_ids_)) >= len(keys)
        self._set_coverage(catalog_ids)
        self.coverage_["fallback"] = self.params["fallback"]
        self.coverage_["from_fallback"] = int(self.fallback_.sum())
        self.coverage_["from_category"] = len(cat_ids)
        return extra_ids

    def _category_fill(self, dataset: Any, catalog_ids: list[str], names: list[str]) -> list[str]:
        """The declared fallback: catalogue items still without a vector get the mean vector
        of the items that share their category (full path, else its top level, else their
        brand). Returns their ids."""
        catalog = getattr(dataset, "catalog", None)
        if self.params["fallback"] != "category" or catalog is None:
            return []
        attrs = [
            (c, lv)
            for c, lv in (("category", None), ("category", 0), ("brand", None))
            if c in catalog.columns
        ]
        if not attrs:
            return []
        have = set(map(str, self.item_ids_))
        cat = (
            catalog.assign(item_id=catalog["item_id"].astype(str))
            .drop_duplicates("item_id")
            .set_index("item_id")
        )
        missing = [i for i in catalog_ids if i not in have and i in cat.index]
        if not missing:
            return []
        fill_rows = np.full(len(missing), -1, dtype=np.int64)
        means: dict[str, list[np.ndarray]] = {name: [] for name in names}
        n_groups = 0
        for column, level in attrs:
            values = cat[column].fillna("").astype(str)
            if level is not None:
                values = pd.Series(_category_level(values, level).to_numpy(dtype=object), index=values.index)
            own = values.reindex(self.item_ids_).fillna("").to_numpy(dtype=object)
            wq = values.loc[missing].to_numpy(dtype=object)
            codes, uniques = pd.factorize(own)
            lookup = {u: n for n, u in enumerate(uniques) if u != ""}
            q = np.fromiter((lookup.get(w, -1) for w in wq), dtype=np.int64, count=len(wq))
            todo = (fill_rows < 0) & (q >= 0)
            if not todo.any():
                continue
            counts = np.bincount(codes[codes >= 0], minlength=len(uniques)).astype(np.float32)
            for name in names:
                matrix = getattr(self, name)
                sums = np.zeros((len(uniques), matrix.shape[1]), dtype=np.float32)
                np.add.at(sums, codes[codes >= 0], matrix[codes >= 0])
                means[name].append(sums / np.maximum(counts, 1)[:, None])
            fill_rows[todo] = q[todo] + n_groups
            n_groups += len(uniques)
        ok = fill_rows >= 0
        if not ok.any():
            return []
        for name in names:
            table = np.vstack(means[name])
            setattr(self, name, np.ascontiguousarray(np.vstack([getattr(self, name), table[fill_rows[ok]]])))
        filled = list(np.asarray(missing, dtype=object)[ok])
        self.item_ids_ = np.asarray([*map(str, self.item_ids_), *filled], dtype=str)
        logger.info(
            "%s: %d items without an own vector served by their category's mean", self.family, len(filled)
        )
        return filled

    def _token_fill(
        self, key_to_index: dict[str, int], keys: list[str], catalog_ids: list[str]
    ) -> tuple[list[str], np.ndarray]:
        """Catalogue items without a vector of their own that get one from other tokens, and
        per item the rows of those tokens (-1 where unknown). Prod2Vec: none."""
        return [], np.zeros((0, 2), dtype=np.int64)

    # -- persistence -------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        super()._save_state(path)
        loss = np.asarray(getattr(self, "loss_history_", []), dtype=np.float64)
        np.save(path / "loss_history.npy", loss, allow_pickle=False)
        fallback = getattr(self, "fallback_", None)
        if fallback is not None:
            np.save(path / "fallback.npy", np.asarray(fallback, dtype=bool), allow_pickle=False)
        if getattr(self, "choice_", None):
            (path / "choice.json").write_text(json.dumps(self.choice_, indent=2))

    def _load_state(self, path: Path) -> None:
        from recsys.stored import read_npy  # a damaged file is named

        super()._load_state(path)
        f = path / "loss_history.npy"
        self.loss_history_ = read_npy(f).tolist() if f.exists() else []
        f = path / "fallback.npy"
        self.fallback_ = read_npy(f) if f.exists() else None
        f = path / "choice.json"
        if f.exists():
            from recsys.stored import read_stored

            self.choice_ = read_stored(f)  # a damaged file is named
        else:
            self.choice_ = None


def _catalog_ids(dataset: Any, fallback: set[str]) -> list[str]:
    catalog = getattr(dataset, "catalog", None)
    if catalog is not None and "item_id" in catalog.columns and len(catalog):
        return catalog["item_id"].astype(str).tolist()
    return sorted(fallback)


class MetaProd2Vec(Prod2Vec):
    """Prod2Vec with category and brand tokens interleaved after every item.

    A sequence ``a b`` becomes ``a cat:<a's category> brand:<a's brand> b cat:... brand:...``
    (empty metadata is left out) and the window is widened by the same factor, so
    items still see the same neighbouring items, and each item also predicts (and is
    predicted by) its own and its neighbours' metadata. Items with no vector of their
    own (below ``min_count`` or absent from the interactions) get the mean of their
    category and brand token vectors when ``fill_from_metadata`` is on.

    Extra parameters
    ----------------
    meta_category_level : int or None
        Level of the category path used for the category token; None = the full path.
    use_brand : bool
        Add brand tokens.
    fill_from_metadata : bool
        Give long-tail and unseen catalogue items a vector from their metadata tokens.

    With ``vectors="in-out"`` the metadata-filled items tend to become hubs (their
    tokens' output vectors score high against most seeds); ``META_TUNED_PARAMS`` keep
    "input+output". With ``vectors="auto"`` each space is scored with and without the fill
    (:meth:`_auto_candidates`): on dunnhumby, where 79% of the catalogue is never bought,
    the filled items took every in-out list (validation HR@20 0.0007 against 0.022 without
    the fill), and the in-out space is the one that scores there.

    Extra fitted attributes
    -----------------------
    from_metadata_ : numpy.ndarray of bool
        Aligned with ``item_ids_``: True where the vector is the metadata mean.
    """

    family: ClassVar[str] = "meta_prod2vec"
    param_presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gensim defaults": {
            **GENSIM_PRESET,
            "meta_category_level": None,
            "use_brand": True,
            "fill_from_metadata": True,
        }
    }
    param_specs: ClassVar[dict[str, Param]] = with_defaults(
        _META_PARAM_KINDS,
        {
            **META_RECOMMENDED_PARAMS,
            "meta_category_level": None,
            "use_brand": True,
            "fill_from_metadata": True,
        },
    )

    def _auto_candidates(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Each space with the metadata fill, then without it (see the class docstring)."""
        spaces = super()._auto_candidates()
        if not self.params["fill_from_metadata"]:
            return spaces
        return spaces + [(f"{n}, no metadata fill", v, {"fill_from_metadata": False}) for n, v, _ in spaces]

    def _meta_tokens(self, catalog: pd.DataFrame) -> pd.DataFrame:
        """item_id -> its category and brand tokens ("" when unknown)."""
        ids = catalog["item_id"].astype(str)
        if "category" in catalog.columns:
            cat = catalog["category"].fillna("").astype(str)
            level = self.params["meta_category_level"]
            if level is not None:
                cat = _category_level(cat, level)
            cat_tok = np.where(cat.to_numpy() != "", CAT_PREFIX + cat.to_numpy(dtype=object), "")
        else:
            cat_tok = np.full(len(ids), "", dtype=object)
        if self.params["use_brand"] and "brand" in catalog.columns:
            brand = catalog["brand"].fillna("").astype(str).to_numpy(dtype=object)
            brand_tok = np.where(brand != "", BRAND_PREFIX + brand, "")
        else:
            brand_tok = np.full(len(ids), "", dtype=object)
        return pd.DataFrame({"cat": cat_tok, "brand": brand_tok}, index=ids.to_numpy())

    def _corpus(self, dataset: Any, sequences: list[list[str]]) -> tuple[list[list[str]], int]:
        catalog = getattr(dataset, "catalog", None)
        if catalog is None or not len(catalog):
            self._meta = pd.DataFrame({"cat": [], "brand": []})
            return sequences, int(self.params["window"])
        meta = self._meta_tokens(catalog)
        self._meta = meta
        lookup = {i: [t for t in (c, b) if t] for i, c, b in zip(meta.index, meta["cat"], meta["brand"])}
        n_meta = int((meta["cat"] != "").any()) + int((meta["brand"] != "").any())
        corpus = []
        for seq in sequences:
            out: list[str] = []
            for item in seq:
                out.append(item)
                out.extend(lookup.get(item, ()))
            corpus.append(out)
        return corpus, int(self.params["window"]) * (1 + n_meta)

    def _token_fill(
        self, key_to_index: dict[str, int], keys: list[str], catalog_ids: list[str]
    ) -> tuple[list[str], np.ndarray]:
        """Items without their own vector, filled from their category and brand tokens."""
        if not (self._setting("fill_from_metadata") and len(self._meta)):
            return super()._token_fill(key_to_index, keys, catalog_ids)
        have = set(keys)
        missing = [i for i in catalog_ids if i not in have and i in self._meta.index]
        if not missing:
            return super()._token_fill(key_to_index, keys, catalog_ids)
        meta = self._meta.loc[missing]
        tok_rows = np.stack(
            [
                np.fromiter((key_to_index.get(t, -1) if t else -1 for t in meta[col]), np.int64, len(meta))
                for col in ("cat", "brand")
            ],
            axis=1,
        )
        ok = (tok_rows >= 0).any(axis=1)
        return list(np.asarray(missing, dtype=object)[ok]), tok_rows[ok]

    def _set_vectors_from(
        self, key_to_index: dict[str, int], spaces: dict[str, np.ndarray], item_set: set[str], dataset: Any
    ) -> list[str]:
        extra_ids = super()._set_vectors_from(key_to_index, spaces, item_set, dataset)
        n_own = self._n_own
        from_meta = np.zeros(len(self.item_ids_), dtype=bool)
        from_meta[n_own : n_own + len(extra_ids)] = True
        self.from_metadata_ = from_meta
        self.coverage_["from_metadata"] = int(from_meta.sum())
        self.coverage_["from_metadata_examples"] = self.item_ids_[from_meta][:10].tolist()
        logger.info(
            "%s: %d items have their own vector, %d got one from category/brand tokens",
            self.family,
            int((~from_meta).sum()),
            int(from_meta.sum()),
        )
        return extra_ids

    def _save_state(self, path: Path) -> None:
        super()._save_state(path)
        np.save(path / "from_metadata.npy", np.asarray(self.from_metadata_, dtype=bool), allow_pickle=False)

    def _load_state(self, path: Path) -> None:
        super()._load_state(path)
        from recsys.stored import read_npy  # a damaged file is named

        f = path / "from_metadata.npy"
        self.from_metadata_ = read_npy(f) if f.exists() else np.zeros(len(self.item_ids_), dtype=bool)

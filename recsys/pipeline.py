"""Recompute pipelines: split -> fit -> evaluate -> index -> register.

Each function is plain Python taking a ``progress(done, total, message)``
callable, so the CLI, the background job runner and tests drive the same code.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from recsys.config import Progress, data_dir, null_progress
from recsys.data.schema import load_dataset, save_dataset
from recsys.errors import DataValidationError, ModelFitError
from recsys.models import catalog_only_families, make_model
from recsys.registry import Registry, label_problem, run_label

logger = logging.getLogger(__name__)

#: The families the demo build trains, in order (fast ones first, so the
#: dashboard becomes useful early).
DEMO_FAMILIES: tuple[str, ...] = ("popularity", "cooccurrence", "prod2vec", "meta_prod2vec")
#: What the dashboard's first-start build trains: the core four, then the deep models.
APP_DEMO_FAMILIES: tuple[str, ...] = (*DEMO_FAMILIES, "content", "two_tower")
DEMO_ITEMS = 5000


def _under(label: str, message: str) -> str:
    """``message`` under ``label`` ("label: message"), the phase named once: a message that
    already starts with the label (the evaluation's "evaluating: 1024/2562 seeds") is not
    prefixed again, and one under the label's last word ("cooccurrence: counting pairs" while
    "training cooccurrence") loses that word."""
    if not message:
        return label
    if message.startswith(label):
        return message
    head, sep, rest = message.partition(": ")
    if sep and label.endswith(" " + head):
        message = rest
    return f"{label}: {message}"


def stage(progress: Progress, index: int, n_stages: int, label: str) -> Progress:
    """A progress callback for stage ``index`` of ``n_stages``, scaled to 0..1000."""

    def report(done: int, total: int, message: str = "") -> None:
        frac = (done / total) if total else 0.0
        overall = int(1000 * (index + min(max(frac, 0.0), 1.0)) / n_stages)
        progress(overall, 1000, _under(label, message))

    return report


def _span(progress: Progress, low: int, high: int, label: str) -> Progress:
    """``progress`` with 0..1000 mapped onto ``low``..``high`` of the bar, messages under ``label``."""

    def report(done: int, total: int, message: str = "") -> None:
        frac = min(max(done / total, 0.0), 1.0) if total else 0.0
        progress(int(low + (high - low) * frac), 1000, _under(label, message))

    return report


def _after(progress: Progress, start: int) -> Progress:
    """``progress`` with 0..1000 mapped onto ``start``..1000 (what is left of the bar)."""

    def report(done: int, total: int, message: str = "") -> None:
        frac = min(max(done / total, 0.0), 1.0) if total else 0.0
        progress(int(start + (1000 - start) * frac), 1000, message)

    return report


def _index_writer(model: Any, params: dict[str, Any]) -> Any:
    def write(folder: os.PathLike[str]) -> dict[str, Any]:
        from recsys.index import HnswIndex
        from recsys.models.base import duplicate_vector_share

        t0 = time.perf_counter()
        index = HnswIndex.build(model.vectors_, **params)
        index.save(os.path.join(folder, "index.bin"))
        # many items sharing one vector (a thin catalogue's metadata vectors, category
        # fallbacks): HNSW returns an arbitrary subset of the tied items, so such runs are
        # searched exactly, ties ordered by position (the declared secondary key)
        dup = duplicate_vector_share(model.vectors_)
        info = {"file": "index.bin", "build_s": round(time.perf_counter() - t0, 3), **params}
        info.update({"duplicate_vector_share": round(dup, 4), "exact_search": dup > 0})
        return {"index": info}

    return write


#: The job card's line while the fallback chain is fitted (after the model's last epoch).
FALLBACK_FIT = (
    "fitting the fallback chain (popularity, co-occurrence, category means) for items without a vector"
)


def fit_fallback(train: Any, catalog: Any) -> Any:
    """The run's :class:`recsys.fallback.FallbackChain`, fitted on the training part (the
    catalogue gives the categories and brands of items training never saw)."""
    from recsys.fallback import FallbackChain

    return FallbackChain().fit(train, catalog)


def run_fallback(
    registry: Registry,
    dataset_name: str,
    fingerprint: str,
    split_spec: dict[str, Any],
    training: Callable[[], tuple[Any, Any]],
) -> tuple[Any, dict[str, Any]]:
    """The fallback chain of a new run (trained or imported) of a dataset split so, and what
    run.json records of it: ``key`` (:func:`recsys.fallback.chain_key`) and, when another run
    of the dataset already fitted the same chain (same content, same split), ``reused_from``
    (that run: its chain is loaded, not fitted again). ``training()`` gives ``(training part,
    catalogue)`` to fit on, only called when no run has the chain."""
    from recsys.fallback import chain_key, fitted_chain

    key = chain_key(fingerprint, split_spec)
    found = fitted_chain(registry, dataset_name, key)
    if found is not None:
        return found[0], {"key": key, "reused_from": found[1]}
    return fit_fallback(*training()), {"key": key}


def fallback_writer(chain: Any, info: dict[str, Any] | None = None) -> Any:
    def write(folder: os.PathLike[str]) -> dict[str, Any]:
        from recsys.fallback import FOLDER

        chain.save(os.path.join(folder, FOLDER))
        return {"fallback": {"folder": FOLDER, "steps": ["model", *chain.steps], **(info or {})}}

    return write


def _with_local_images(dataset: Any, name: str, root: os.PathLike[str]) -> Any:
    """``dataset`` with its local image paths made absolute paths into its images folder
    (:func:`recsys.images.resolve_catalog_images`), for the image feature extractor."""
    import dataclasses

    from recsys.images import resolve_catalog_images

    return dataclasses.replace(dataset, catalog=resolve_catalog_images(dataset.catalog, name, root))


def train_run(
    family: str,
    params: dict[str, Any] | None = None,
    dataset_name: str = "demo",
    root: str | os.PathLike[str] | None = None,
    *,
    split_method: str = "time",
    k: int = 10,
    max_cases: int | None = None,
    index_params: dict[str, Any] | None = None,
    activate: bool | None = None,
    label: str | None = None,
    progress: Progress | None = None,
    tracking_parent: str | None = None,
    split_options: dict[str, Any] | None = None,
    test_dataset: str | None = None,
    repeats: str = "collapse",
    tune: dict[str, Any] | None = None,
    validate: bool | None = None,
) -> dict[str, Any]:
    """Train one model variant on a stored dataset and register it as a run.

    The model is fitted on the training part of the split and evaluated on
    the held-out part, so the metrics in run.json are honest; embedding runs
    also get an HNSW index (``index.bin``).

    Parameters
    ----------
    family : str
        A key of :data:`recsys.models.FAMILIES`.
    params : dict, optional
        Model parameters (validated by the model's ``fit``).
    dataset_name : str
        A stored dataset (see ``python -m recsys import``).
    root : path-like, optional
        The data directory.
    split_method : {"time", "leave_last_out", "cutoff", "last_days"}
    k : int
        Cut-off of the offline metrics.
    max_cases : int, optional
        Sample this many evaluation cases; None (default) scores every case.
    index_params : dict, optional
        ``HnswIndex.build`` parameters (space, M, ef_construction, ef).
    activate : bool, optional
        Make the new run active; by default only when its family has none.
    progress : callable, optional
        ``progress(done, total, message)``.
    tracking_parent : str, optional
        The MLflow run id of a tuning sweep (:func:`recsys.tracking.sweep`): the run
        is logged as one of its children. Every run is logged to MLflow unless
        ``RECSYS_MLFLOW=off``; a tracking failure only logs a warning.
    split_options : dict, optional
        ``test_fraction``, ``test_days`` or ``cutoff`` for :func:`recsys.evaluation.split`.
    test_dataset : str, optional
        A stored dataset to test on (the user's own split): the model is fitted on the
        whole of ``dataset_name`` and scored on this one.
    repeats : {"collapse", "keep"}
        Next-item protocol: consecutive repeats collapsed or every position a case.
    tune : dict, optional
        Tune the settings on this dataset first (:func:`recsys.tuning.tune` keyword
        arguments: ``budget_s``, ``n_trials``, ``sample``): on a time split carved from the
        training part only; the best setting is refitted on the whole training part and
        every trial is recorded under ``tuning`` in run.json (and in MLflow: the sweep is
        a parent run, each trial and this run are its children).
    validate : bool, optional
        Also fit on the earlier 90% of the training part and score the latest 10%
        (``metrics["validation"]``, with each case's hit and the cases' fingerprint): what
        the Overview picks the best variant by, never the test split. Default: on, except
        for the deep models (content, two_tower).

    Returns
    -------
    dict
        The new run's run.json.
    """
    from recsys.evaluation import evaluate, split

    problem = label_problem(label)
    if problem:  # before the fit, not after it
        raise DataValidationError(f"run not trained: {problem}")
    progress = progress or null_progress
    root = data_dir(root)
    registry = Registry(root)
    timings: dict[str, float] = {}
    progress(0, 1000, f"loading dataset {dataset_name}")
    t0 = time.perf_counter()
    dataset = load_dataset(dataset_name, root)
    if (params or {}).get("image_features"):  # image_url paths are relative to the images folder
        dataset = _with_local_images(dataset, dataset_name, root)
    timings["load_s"] = round(time.perf_counter() - t0, 3)

    if len(dataset.interactions) == 0:
        if tune is not None:
            raise ModelFitError(
                f"cannot tune on '{dataset.name}': it has no interactions to carve a validation split from"
            )
        return _train_catalog_only(
            family, params, dataset, registry, index_params, activate, label, progress, tracking_parent
        )

    t0 = time.perf_counter()
    split_options = {k_: v for k_, v in (split_options or {}).items() if v is not None}
    if test_dataset:
        train, test = dataset, load_dataset(test_dataset, root)
        split_method = "given"
        split_options = {"test_dataset": test_dataset}
    else:
        train, test = split(dataset, method=split_method, **split_options)
    timings["split_s"] = round(time.perf_counter() - t0, 3)

    tuning = None
    if tune is not None:
        from recsys.tuning import tune as run_tuning

        t0 = time.perf_counter()
        tuning = run_tuning(
            family,
            train,
            base_params=params or {},
            progress=stage(progress, 0, 2, "tuning"),
            root=root,
            dataset_name=dataset.name,
            **tune,
        )
        params = {**(params or {}), **tuning["best_params"]}
        # the refitted run is one more child of the sweep in MLflow
        tracking_parent = tracking_parent or (tuning.get("mlflow") or {}).get("sweep_run_id")
        progress = _after(progress, 500)  # the search took the first half of the bar
        timings["tune_s"] = round(time.perf_counter() - t0, 3)
    model = make_model(family, **(params or {}))
    t0 = time.perf_counter()
    model.fit(train, progress=stage(progress, 0, 3, f"training {family}"))
    timings["fit_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    # the declared fallback chain (recsys.fallback): completes every served list, and the
    # evaluation below scores the lists as they are served. Minutes on a big catalogue: the card
    # says so (it read "epoch 40/40" meanwhile, as if stuck)
    stage(progress, 1, 3, FALLBACK_FIT)(0, 1)
    fingerprint = dataset.fingerprint()
    model.fallback_chain_, fallback_info = run_fallback(
        registry,
        dataset.name,
        fingerprint,
        {"method": split_method, **split_options},
        lambda: (train, dataset.catalog),
    )
    timings["fallback_s"] = round(time.perf_counter() - t0, 3)

    t0 = time.perf_counter()
    # Baskets: the next line of the basket is the target. "Every other line" saturates
    # (popularity alone hits one of ~20 targets in its top 10), see recsys.evaluation.
    basket_targets = "next" if dataset.kind == "baskets" else "rest"
    metrics = evaluate(
        model,
        train,
        test,
        k=k,
        max_cases=max_cases,
        catalog=dataset.catalog,
        progress=stage(progress, 1, 3, "evaluating"),
        basket_targets=basket_targets,
        repeats=repeats,
    )
    # next item from the whole session so far ("recent views"), the session's own items
    # hidden and shown: repeat views are common on some shops
    metrics["recent_views"] = recent_views_metrics(
        model,
        test,
        k=k,
        max_cases=max_cases,
        catalog=dataset.catalog,
        progress=stage(progress, 1, 3, "evaluating"),
    )
    timings["evaluate_s"] = round(time.perf_counter() - t0, 3)
    _warn_coverage(family, model, metrics, params or {})
    # who serves the catalogue's items and the test seeds: the model, each fallback step, nothing
    # (run.json's "served", as an import records it; the Runs page and `recsys runs show` say it)
    from recsys.fallback import run_served

    t0 = time.perf_counter()
    served = run_served(model, model.fallback_chain_, dataset.catalog["item_id"], metrics)
    timings["served_s"] = round(time.perf_counter() - t0, 3)

    if validate is None:
        validate = family not in ("content", "two_tower")
    if validate:
        t0 = time.perf_counter()
        # vectors="auto" already fitted the earlier 90% to choose the space: that fit is scored
        # (the run fits twice, not four times); other runs fit a second time, and the job card
        # says so (it read "evaluating: N/N seeds" for as long as the first fit took)
        held = getattr(model, "validation_fit_", None)
        if held:
            model.validation_fit_ = None  # the run does not keep the validation model
        what = "the vectors=auto choice's fit on" if held else "fitted again on"
        validating = _span(progress, 667, 699, f"validation score: {family} {what} the earlier 90%")
        validating(0, 1)
        metrics["validation"] = validation_metrics(
            family,
            params or {},
            train,
            dataset,
            k=k,
            max_cases=max_cases,
            basket_targets=basket_targets,
            progress=validating,
            fitted=held,
        )
        timings["validate_s"] = round(time.perf_counter() - t0, 3)

    writers = [fallback_writer(model.fallback_chain_, fallback_info)]
    if model.is_embedding:
        writers.append(_index_writer(model, index_params or {}))
    progress(700, 1000, "building index and saving run")
    extra = {
        "split": {
            "method": split_method,
            **split_options,
            "k": k,
            "max_cases": max_cases,
            "basket_targets": basket_targets,
            "repeats": repeats,
        }
    }
    extra["served"] = served
    if tuning is not None:
        extra["tuning"] = tuning
    if getattr(model, "choice_", None):  # a setting chosen at fit time (Prod2Vec's vectors="auto")
        extra["auto_choice"] = model.choice_
    device = getattr(model, "device_", None)
    extra["device"] = device if device is not None else {"device": "CPU"}
    meta = registry.create_run(
        model,
        dataset_name=dataset.name,
        dataset_fingerprint=fingerprint,
        metrics=metrics,
        timings=timings,
        extra=extra,
        writers=writers,
        label=label,
    )
    if activate or (activate is None and family not in registry.active(dataset.name)):
        registry.activate(meta["run_id"])
        meta["active"] = True
    _track(meta, root, tracking_parent)
    progress(1000, 1000, f"run {meta['run_id']} ready")
    return meta


def _track(meta: dict[str, Any], root: Any, parent: str | None) -> None:
    """Log a new run to MLflow (:mod:`recsys.tracking`; never raises) and note where in run.json."""
    from recsys import tracking

    info = tracking.log_run(meta, root, parent=parent)
    if info:
        meta["mlflow"] = info


def _train_catalog_only(
    family: str,
    params: dict[str, Any] | None,
    dataset: Any,
    registry: Registry,
    index_params: dict[str, Any] | None,
    activate: bool | None,
    label: str | None,
    progress: Progress,
    tracking_parent: str | None = None,
) -> dict[str, Any]:
    """Fit a catalogue-only family on a dataset with no interactions: nothing to evaluate on."""
    from recsys.models import get_model_class

    if getattr(get_model_class(family), "needs_interactions", True):
        works = ", ".join(catalog_only_families()) or "none"
        raise ModelFitError(
            f"{family} learns from interactions, and dataset '{dataset.name}' is a catalogue with none; "
            f"families that work on a catalogue alone: {works}. Or import events with the catalogue "
            "(import csv EVENTS --catalog CATALOG)"
        )
    model = make_model(family, **(params or {}))
    t0 = time.perf_counter()
    model.fit(dataset, progress=stage(progress, 0, 3, f"training {family}"))
    timings = {"fit_s": round(time.perf_counter() - t0, 3)}
    writers = [_index_writer(model, index_params or {})] if model.is_embedding else []
    progress(700, 1000, "building index and saving run")
    device = getattr(model, "device_", None)
    from recsys.fallback import run_served

    extra = {
        "split": {"method": "none", "note": "catalogue only: no interactions to evaluate on"},
        "device": device if device is not None else {"device": "CPU"},
        # no fallback chain (nothing popular, no co-occurrence): an item without a vector gets nothing
        "served": run_served(model, None, dataset.catalog["item_id"], {}),
    }
    meta = registry.create_run(
        model,
        dataset_name=dataset.name,
        dataset_fingerprint=dataset.fingerprint(),
        metrics={},
        timings=timings,
        extra=extra,
        writers=writers,
        label=label,
    )
    # the family's first run on this dataset is activated (the default dataset's active runs had been
    # asked: Myntra's first content run stayed inactive beside the demo's)
    if activate or (activate is None and family not in registry.active(dataset.name)):
        registry.activate(meta["run_id"])
        meta["active"] = True
    _track(meta, registry.root, tracking_parent)
    progress(1000, 1000, f"run {meta['run_id']} ready")
    return meta


def validation_metrics(
    family: str,
    params: dict[str, Any],
    train: Any,
    dataset: Any,
    k: int = 10,
    max_cases: int | None = 3000,
    basket_targets: str = "rest",
    progress: Progress | None = None,
    fitted: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """HR@K (with its 95% interval) of ``family`` fitted on the earlier part of ``train`` and
    scored on its latest sequences (a time split, else leave-last-out): the validation
    score that chooses between variants. Empty dict when the training part cannot be split.
    ``progress`` hears the fit (first half) and the scoring (second half).

    ``fitted``: a model's ``validation_fit_`` (Prod2Vec's ``vectors="auto"`` choice, which
    fitted the same earlier part to choose the space): when it was carved as this split is,
    its model is scored instead of fitting again (the result's ``fit`` says so); the chosen
    space is the one the run serves."""
    from recsys.errors import RecsysError
    from recsys.evaluation import evaluate, split
    from recsys.selection import pack_hits

    try:
        has_time = "timestamp" in train.interactions and train.interactions["timestamp"].notna().any()
        method = "time" if has_time else "leave_last_out"
        report = progress or null_progress
        reuse = bool(fitted) and fitted.get("method") == method
        if reuse and method == "time":
            reuse = fitted.get("fraction") == VALIDATION_FRACTION
        fit_part, valid = split(train, method, test_fraction=VALIDATION_FRACTION)  # the choice's carve
        if reuse:
            model = fitted["model"]
            report(1, 2, "the vectors=auto choice's validation fit, reused")
        else:
            model = make_model(family, **params).fit(fit_part, progress=stage(report, 0, 2, "fitting"))
        report(1, 2, FALLBACK_FIT)
        model.fallback_chain_ = fit_fallback(fit_part, dataset.catalog)
        m = evaluate(
            model,
            fit_part,
            valid,
            k=k,
            max_cases=max_cases,
            catalog=dataset.catalog,
            basket_targets=basket_targets,
            progress=stage(report, 1, 2, "scoring"),
            per_case=True,
        )
    except (RecsysError, ValueError) as exc:
        logger.warning("%s: no validation score: %s", family, exc)
        return {}
    keys = (f"hr@{k}", f"hr@{k}_ci", f"ndcg@{k}", "n_cases", "no_recommendation_share")
    out = {key: m[key] for key in keys if key in m} | {"split": "latest 10% of the training sequences"}
    # each case's hit and which cases: Overview recommends among runs scored on the same cases by
    # the paired one-standard-error rule (recsys.selection), as bench/quality.py does
    out["per_case"] = pack_hits(m["hits"], m["cases_fingerprint"])
    if reuse:
        out["fit"] = "the vectors=auto choice's fit on this split, in the chosen space"
    return out


#: The share of the training sequences (the latest) that a run's validation score holds out;
#: the same carve as Prod2Vec's ``vectors="auto"`` choice, whose fit the score then reuses.
VALIDATION_FRACTION = 0.1


def recent_views_metrics(
    model: Any,
    test: Any,
    k: int = 10,
    max_cases: int | None = 3000,
    catalog: Any = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """:func:`recsys.evaluation.evaluate_sessions` (every position) with the session's own
    items hidden (``exclude_seen``, what the panel does by default) and shown (``include_seen``).
    ``progress`` hears each half begin (minutes on Taobao, where the job card had kept saying
    "evaluating: 6144/6151 seeds" meanwhile)."""
    from recsys.evaluation import build_session_cases, evaluate_sessions

    progress = progress or null_progress
    cases = build_session_cases(test, "every_position", max_cases=max_cases)
    out = {}
    for n, (name, flag, what) in enumerate(
        (("exclude_seen", True, "hidden"), ("include_seen", False, "shown")), start=1
    ):
        progress(1, 1, f"recent views, the session's own items {what} ({n}/2)")
        out[name] = evaluate_sessions(model, test, k=k, exclude_seen=flag, catalog=catalog, cases=cases)
    return out


#: Share of test seeds left without any recommendation above which a run says so loudly.
NO_RECOMMENDATION_WARN = 0.02


def _warn_coverage(family: str, model: Any, metrics: dict[str, Any], params: dict[str, Any]) -> None:
    """Log (and record in the metrics) when too many test seeds get nothing: never silent."""
    share = float(metrics.get("no_recommendation_share", 0.0))
    if share > NO_RECOMMENDATION_WARN:
        cov = getattr(model, "coverage_", {})
        hint = " (min_count was set: lower it)" if "min_count" in params else ""
        message = (
            f"{family}: {share:.1%} of test seeds got no recommendation; "
            f"{cov.get('items_with_vector', '?')} of {cov.get('catalog_items', '?')} catalogue items "
            f"have a representation{hint}"
        )
        metrics["coverage_warning"] = message
        logger.warning(message)


def build_demo(
    root: str | os.PathLike[str] | None = None,
    n_items: int = DEMO_ITEMS,
    seed: int = 0,
    families: Sequence[str] = DEMO_FAMILIES,
    progress: Progress | None = None,
    project: bool = True,
) -> dict[str, Any]:
    """Generate the demo dataset and train the default variants on it.

    With ``project`` every embedding run gets its PCA map at once and a background
    ``"project"`` job for its UMAP map (the Map page switches to it when it lands).

    Returns ``{"dataset": "demo", "runs": [run ids], "seconds": s, "umap_jobs": [job ids]}``.
    """
    from recsys.data.synthetic import generate_demo

    progress = progress or null_progress
    root = data_dir(root)
    started = time.perf_counter()
    n_stages = len(families) + 1
    progress(0, n_stages * 1000, f"generating {n_items} demo items")
    dataset = generate_demo(n_items=n_items, seed=seed)
    save_dataset(dataset, root)
    save_demo_presets(root)
    runs = []
    for i, family in enumerate(families):
        meta = train_run(
            family,
            _demo_params(family),
            dataset.name,
            root,
            progress=stage(progress, i + 1, n_stages, f"variant {i + 1}/{len(families)}"),
            label=f"{family} (demo)",
        )
        runs.append(meta["run_id"])
    umap_jobs = project_in_background(runs, root) if project else []
    seconds = round(time.perf_counter() - started, 1)
    progress(n_stages * 1000, n_stages * 1000, f"demo ready in {seconds} s")
    return {"dataset": dataset.name, "runs": runs, "seconds": seconds, "umap_jobs": umap_jobs}


def project_in_background(run_ids: Sequence[str], root: str | os.PathLike[str] | None = None) -> list[str]:
    """PCA maps of the embedding runs now (a fraction of a second each), UMAP as jobs.

    Returns the ids of the UMAP jobs. A run whose PCA fails is logged and skipped: the demo
    stays usable (the Map page computes PCA on demand as well).
    """
    from recsys.errors import RecsysError
    from recsys.jobs import JobStore
    from recsys.projection import project_run

    registry = Registry(root)
    jobs = []
    for run_id in run_ids:
        meta = registry.get(run_id)
        if not meta.get("is_embedding"):
            continue
        try:
            project_run(run_id, "pca", root)
        except RecsysError as exc:
            logger.warning("PCA of %s failed: %s", run_id, exc)
            continue
        jobs.append(
            JobStore(root).submit(
                "project",
                {"run_id": run_id, "method": "umap"},
                label=f"UMAP of {run_label(meta)}",
            )
        )
    return jobs


#: ``off`` leaves a trained run's UMAP map to the Map's "Compute UMAP" button instead of queuing
#: it after a training job (the test suite sets it: a UMAP fit per trained run would cost minutes)
ENV_UMAP_AFTER_TRAIN = "RECSYS_UMAP_AFTER_TRAIN"


def umap_after_train() -> bool:
    """Whether a training job queues its run's UMAP projection (``$RECSYS_UMAP_AFTER_TRAIN``, on by default)."""
    return os.environ.get(ENV_UMAP_AFTER_TRAIN, "on").strip().lower() not in ("off", "0", "false", "no")


def train_job(
    family: str, params: dict[str, Any] | None = None, dataset_name: str = "demo", **kwargs: Any
) -> dict[str, Any]:
    """The ``train`` and ``tune`` jobs (Runs page, ``POST /api/v1/train``/``tune``): :func:`train_run`,
    then, for an embedding run, its PCA map at once and its UMAP map queued as a ``project`` job,
    as the demo build does (:func:`project_in_background`; one UMAP fit at a time per data
    directory, see :data:`recsys.jobs.kinds.SLOT_ENV`). The Map shows PCA and says UMAP is
    computing until it lands. ``recsys train`` in a terminal queues nothing (a command that
    exits starts no background job; the Map's "Compute UMAP" does it).

    Returns run.json as :func:`train_run` does, plus ``umap_job`` (the job id, or None).
    """
    meta = train_run(family, params, dataset_name, **kwargs)
    if not meta.get("is_embedding") or not umap_after_train():
        return meta
    try:
        jobs = project_in_background([meta["run_id"]], kwargs.get("root"))
    except Exception as exc:  # noqa: BLE001 - the run is trained; the Map's button still works
        logger.warning("could not queue the UMAP projection of %s: %s", meta["run_id"], exc)
        jobs = []
    return {**meta, "umap_job": jobs[0] if jobs else None}


def _demo_params(family: str) -> dict[str, Any]:
    """Parameters the demo uses: the tuned ones where a family publishes them."""
    if family in ("prod2vec", "meta_prod2vec"):
        from recsys.models import prod2vec

        # Online Retail's tuned settings, with fewer epochs so the demo build stays quick.
        return {**prod2vec.tuned_params(family), "epochs": 10}
    return {}


def import_job(
    source: str,
    path: str,
    name: str | None = None,
    root: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Import and store a dataset; return its summary and validation report (JSON-able).

    The background-job form of :func:`recsys.data.adapters.import_dataset`.
    """
    from recsys.data.adapters import import_dataset

    dataset = import_dataset(source, path, name=name, root=root, progress=progress, **options)
    return {"dataset": dataset.name, "summary": dataset.summary(), "report": dataset.report.to_dict()}


#: Filter presets the demo starts with: what a merchandiser would try first.
DEMO_PRESETS: dict[str, dict[str, Any]] = {
    "same-category": {"same_category": True, "category_level": 2, "exclude_adult": True},
    "same-category-and-price": {
        "same_category": True,
        "category_level": 1,
        "same_gender": True,
        "price_ratio_min": 0.5,
        "price_ratio_max": 2.0,
        "exclude_adult": True,
        "max_per_brand": 3,
    },
}


def save_demo_presets(root: str | os.PathLike[str] | None = None) -> list[str]:
    """Store :data:`DEMO_PRESETS` (an unchanged preset gets no new version)."""
    from recsys.filters import PresetStore

    store = PresetStore(data_dir(root))
    for name, config in DEMO_PRESETS.items():
        store.save(name, config)
    return list(DEMO_PRESETS)

"""Next-item quality of every model family on every dataset with interactions; ONE JSON line.

For each dataset (the demo, and every dataset in ``../shared/datasets`` with interactions
that the project can import: the shared ones by their documented commands, **any other folder
there** by the generic import's own detection, ``read_as`` saying how, and with ``--stored NAME``
a dataset the user imported with ``recsys import``; a folder it cannot read is listed under
``skipped_datasets`` with the reason; ``RECSYS_SHARED_DATASETS`` points elsewhere) the data is split by time (the latest 10% of sequences are
the test part; leave-last-out where there are no timestamps). The training part is split
again the same way: every model is fitted on its earlier part and scored on its latest
part (validation), and the variant the tool **recommends** is chosen on validation (HR@20),
never on the test part: the simplest variant whose validation HR@20 is within one standard
error of the best one's, the error of their paired gap on the same cases
(:func:`recsys.selection.recommend`; ``recommended_by`` gives the best, each gap and its error).
Every model is then refitted on the whole training part and scored once on the test part.

Cases: next item from the session so far (:func:`recsys.evaluation.build_session_cases`),
a basket read in line order. Two protocols: every position (``NAME``; repeat views kept)
and repeats collapsed (``NAME:collapsed``). Item-to-item models answer from the most
recent item, session models (sknn, vsknn, two-tower) from the whole session; the
session's items may be recommended again (``exclude_seen`` off) for every model alike.
Every model's lists are completed by the run's declared fallback chain
(:mod:`recsys.fallback`, fitted on the same training part), as a run serves them
(``--no-fallback``: the models alone). Metrics at 20: HR with its 95% Wilson interval, MRR,
catalogue coverage, the share of cases with no recommendation at all
(``no_recommendation_share``), the share the fallback served (``fallback_share``) and the
share the model alone left empty (``model_no_recommendation_share``); content and tfidf also give ``cold_hr@20`` (cases
whose target had fewer than 3 training interactions, ``cold_cases`` of them); content also
``tfidf_blend``: the weight ``a`` of its TF-IDF side (issue 13's hybrid) and what chose it
(items held out of the training part's interactions, never the test part), and
``query_expansion``: the weight ``b`` of a seed's co-purchases in its query, chosen the same way.

Models: popularity, cooccurrence, item_knn, sknn and vsknn (their settings tuned on this
dataset's validation split with ``--knn-budget`` each, by the same tuner as Prod2Vec;
``--no-knn-tuning``: session-rec's defaults), prod2vec_defaults (gensim's
defaults, skip-gram), prod2vec_fixed (the recommended defaults: the fixed tuned settings,
min_count 1, the vector space chosen on a split of the training part: ``vectors="auto"``),
prod2vec_tuned (tuned on this dataset's training part with ``--budget``),
meta_prod2vec, content (``--content-budget``: its settings first tuned on the validation
split's cold targets, as ``recsys train content --tune`` does), tfidf, two_tower. A model that cannot run is listed under
``skipped`` with the reason.

Output: ``{"datasets": {NAME: {"n_cases", "models": {MODEL: {"hr@20", "hr@20_ci",
"mrr@20", "coverage@20", "no_recommendation_share", "fallback_share",
"model_no_recommendation_share"}}, "recommended", "recommended_by", "validation_hr@20", "tuning": {MODEL:
{"budget_s", "n_trials", "start_value", "best_value", "best_params", ...}}, "skipped"}},
"load_average": [...], "settings": {...}}``.

Prod2Vec's tuning runs at least ``--tune-min-trials`` trials (default: its recommended
settings and the tuner's portfolio, :data:`recsys.tuning.PORTFOLIOS`), counted whatever the
budget, so ``prod2vec_tuned`` does not hang on the machine's load; ``tuning`` keeps the
tuner's notes when the budget cut the search short.

Usage: ``python bench/quality.py [--quick] [--only NAME ...] [--max-cases N] [--budget 2m]``.
``--quick`` runs the demo (2,000 items), REES46 and Instacart on 1,500 sampled cases with
a 60 s tuning budget (40 s for sknn and vsknn each) and without the TensorFlow models (content, two_tower), in minutes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recsys.selection import BASELINE_FAMILIES  # noqa: E402  (the rule's order, as on Overview)

K = 20
MODELS = (
    "popularity",
    "cooccurrence",
    "item_knn",
    "sknn",
    "vsknn",
    "prod2vec_defaults",
    "prod2vec_fixed",
    "prod2vec_tuned",
    "meta_prod2vec",
    "content",
    "tfidf",
    "two_tower",
)
TF_MODELS = ("content", "two_tower")
#: The recommended variant is the simplest (first here: the baselines, then the learned models in
#: ``MODELS``' order) within one standard error of the paired validation gap to the best
#: (:mod:`recsys.selection`; the same order as Overview's best variant).
BASELINES = BASELINE_FAMILIES
SIMPLEST_FIRST = BASELINES + tuple(m for m in MODELS if m not in BASELINES)
RULE = "the simplest variant within 1 standard error of the paired validation gap to the best (HR@20)"
#: Session-kNN variants whose settings are tuned on the validation split (``--knn-budget``
#: each; ``--no-knn-tuning``: session-rec's defaults).
KNN_TUNED = ("sknn", "vsknn")


def datasets_dir() -> Path:
    env = os.environ.get("RECSYS_SHARED_DATASETS")
    return Path(env) if env else (ROOT / ".." / "shared" / "datasets").resolve()


#: the shared datasets this bench imports with their own documented commands: folder -> name
KNOWN_FOLDERS = {
    "rees46_sample": "rees46",
    "instacart_sample": "instacart",
    "online_retail": "online_retail",
    "dunnhumby_completejourney": "dunnhumby",
    "taobao_userbehavior": "taobao",
}
#: a file of a folder not known here whose name says it is the catalogue, in this order
CATALOG_WORDS = ("catalog", "product", "article", "meta", "item", "feed")
#: the inactivity gap that cuts a user's events into sessions when no column holds them (the
#: session-based recommendation literature's usual 30 minutes; the README's RetailRocket command)
SESSION_GAP = "30m"
#: files in a dataset folder that are never its data
NOT_DATA = ("readme", "license", "licence", "notice", "changelog", "provenance")


def _table_files(folder: Path) -> list[Path]:
    from recsys.data.tables import file_kind

    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and file_kind(p) and not p.name.lower().startswith(NOT_DATA)
    )


def _discovered(folder: Path) -> tuple[Any, dict[str, str]]:
    """A loader for a dataset folder this bench has no command for (a dataset it has never seen),
    read by the generic import's own detection (``recsys import csv``, ``--errors drop``), and the
    command that read it (filled in by the loader). The largest table file is the interactions; a
    file named like a catalogue (:data:`CATALOG_WORDS`) is its catalogue (else the events alone);
    events with no session column are cut into sessions on :data:`SESSION_GAP`; a folder with
    ``interactions.*`` is read as the import reads such a folder; a file that reads only as a
    catalogue is one (no interactions: skipped, with why it did not read as events)."""
    from recsys.data import adapters

    files = _table_files(folder)
    if not files:
        raise ValueError("no file the import can read")
    if any(p.name.lower().startswith("interactions.") for p in files):
        return (
            lambda: adapters.import_dataset("csv", folder, name=folder.name, dry_run=True, errors="drop"),
            {"read_as": f"recsys import csv {folder.name} --errors drop"},
        )
    # the catalogue: a file named like one, when another file can hold the events (a full product
    # list is often larger than a sample of order lines); the events: the largest of the others
    named = [p for w in CATALOG_WORDS for p in files if w in p.stem.lower()]
    catalog = named[0] if named and len(files) > 1 else None
    events = max((p for p in files if p != catalog), key=lambda p: p.stat().st_size)
    how = {"read_as": _command(events, catalog)}

    def load() -> Any:
        tries = [(events, catalog)] if catalog is not None else []
        tries += [(events, None), (None, events)]  # the events alone; the file as a catalogue
        errors = []
        for ev, cat in tries:
            gaps = [None, SESSION_GAP] if ev is not None else [None]
            for gap in gaps:
                try:
                    ds = adapters.import_dataset(
                        "csv",
                        ev,
                        catalog_path=cat,
                        name=folder.name,
                        dry_run=True,
                        errors="drop",
                        **({"session_gap": gap} if gap else {}),
                    )
                except Exception as exc:  # noqa: BLE001 - the next reading, then every reason said
                    errors.append(f"{_command(ev, cat, gap)}: {str(exc)[:240]}")
                    if getattr(exc, "column", None) != "sequence_id":
                        break  # a session gap is only worth a try when no column holds sessions
                    continue
                how["read_as"] = _command(ev, cat, gap)
                if ev is None:  # read as a catalogue alone: say why not as events
                    how["not_events"] = "; ".join(errors)
                return ds
        raise ValueError("; ".join(errors))

    return load, how


def _command(events: Path | None, catalog: Path | None, gap: str | None = None) -> str:
    return " ".join(
        ["recsys import csv"]
        + ([events.name] if events else [])
        + ([f"--catalog {catalog.name}"] if catalog else [])
        + ([f"--session-gap {gap}"] if gap else [])
        + ["--errors drop"]
    )


def load_datasets(
    names: list[str] | None, quick: bool, demo_items: int, stored: list[str] | None = None
) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """name -> Dataset for every dataset with interactions; name -> reason for those left out;
    name -> how a dataset the bench has no command for was read (the generic import's command).

    Besides the demo and the shared datasets it knows (:data:`KNOWN_FOLDERS`), every other folder
    of the datasets directory is tried with the generic import (:func:`_discovered`), and each
    ``stored`` name is a dataset the user imported (``recsys import ...``) into the data
    directory (``RECSYS_DATA_DIR``): an export the generic detection cannot read alone is
    imported with the flags it needs, then scored by name."""
    from recsys.config import data_dir
    from recsys.data import adapters
    from recsys.data.schema import load_dataset

    base = datasets_dir()
    loaders = {
        "demo": lambda: __import__("recsys.data.synthetic", fromlist=["x"]).generate_demo(
            n_items=demo_items, seed=0
        ),
        "rees46": lambda: adapters.import_rees46(base / "rees46_sample" / "events.csv"),
        "instacart": lambda: adapters.import_instacart(base / "instacart_sample"),
        "online_retail": lambda: adapters.import_online_retail(
            base / "online_retail" / "online_retail.csv.gz"
        ),
        "dunnhumby": lambda: adapters.import_generic(
            base / "dunnhumby_completejourney" / "products.csv",
            base / "dunnhumby_completejourney" / "transactions_sample.csv",
            {
                "catalog": {"product_id": "item_id", "product_type": "title", "product_category": "category"},
                "interactions": {
                    "basket_id": "sequence_id",
                    "product_id": "item_id",
                    "household_id": "user_id",
                    "transaction_timestamp": "timestamp",
                },
            },
            name="dunnhumby",
            kind="baskets",
            errors="drop",
        ),
    }
    # Taobao through the generic CSV import exactly as the README documents it (no header,
    # unix seconds, sessions cut on a 30-minute gap); dry_run: read and validated, not stored
    loaders["taobao"] = lambda: adapters.import_dataset(
        "csv",
        base / "taobao_userbehavior" / "UserBehavior_head84475.csv",
        name="taobao",
        dry_run=True,
        columns=["user_id", "item_id", "category", "event_type", "timestamp"],
        event_map=["pv=view", "fav=cart", "cart=cart", "buy=purchase"],
        session_gap="30m",
    )
    read_as: dict[str, dict[str, str]] = {}
    skipped: dict[str, str] = {}
    if base.is_dir():
        for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if folder.name in KNOWN_FOLDERS or folder.name in loaders:
                continue
            try:
                loaders[folder.name], read_as[folder.name] = _discovered(folder)
            except (ValueError, OSError) as exc:
                skipped[folder.name] = f"could not import: {exc}"[:300]
    for name in stored or []:
        loaders[name] = lambda name=name: load_dataset(name, data_dir())
        read_as[name] = {"read_as": f"stored dataset '{name}' (recsys datasets)"}
    if names or stored:
        wanted = list(dict.fromkeys([*(names or []), *(stored or [])]))
    else:
        # --quick: the small shared datasets, and every folder the bench has no command for (a
        # held-out directory's datasets are what a --quick check is run for)
        found = [*read_as, *skipped]
        wanted = ["demo", "rees46", "instacart", *found] if quick else list(loaders) + list(skipped)
    out = {}
    for name in wanted:
        if name in skipped:
            continue
        if name not in loaders:
            skipped[name] = "unknown dataset name"
            continue
        try:
            ds = loaders[name]()
        except Exception as exc:  # a missing or unreadable file: say why, go on
            skipped[name] = f"could not import: {exc}"[: 300 if name not in read_as else 900]
            continue
        if len(ds.interactions) == 0:
            why = read_as.get(name, {}).get("not_events")
            skipped[name] = "no interactions (a catalogue alone" + (f"; as events: {why})" if why else ")")
            continue
        out[name] = ds
    return (
        out,
        {k: v for k, v in skipped.items() if k in wanted},
        {k: v["read_as"] for k, v in read_as.items() if k in out},
    )


def variants(tuned_budget: float, quick: bool) -> dict[str, tuple[str, dict[str, Any]]]:
    from recsys.models.prod2vec import GENSIM_DEFAULTS

    fast = {"workers": 2}
    out = {
        "popularity": ("popularity", {}),
        "cooccurrence": ("cooccurrence", {"similarity": "jaccard"}),
        "item_knn": ("item_knn", {}),
        "sknn": ("sknn", {}),
        "vsknn": ("vsknn", {}),
        "prod2vec_defaults": ("prod2vec", {**GENSIM_DEFAULTS, "fallback": "none", **fast}),
        "prod2vec_fixed": (
            "prod2vec",
            {**fast},
        ),  # the recommended defaults: fixed tuned settings, min_count 1, vectors "auto"
        "prod2vec_tuned": ("prod2vec", {**fast}),  # + the tuner's best on this dataset
        "meta_prod2vec": ("meta_prod2vec", {**fast}),
        "tfidf": ("tfidf", {}),
        "content": ("content", {"epochs": 3} if quick else {}),
        "two_tower": ("two_tower", {"epochs": 3} if quick else {}),
    }
    return out


def split_of(ds: Any) -> tuple[Any, Any, str]:
    from recsys.evaluation import split

    ts = ds.interactions.get("timestamp")
    if ts is not None and ts.notna().any():
        train, test = split(ds, "time", test_fraction=0.1)
        return train, test, "time"
    train, test = split(ds, "leave_last_out")
    return train, test, "leave_last_out"


def score(
    model: Any,
    test: Any,
    cases: Any,
    catalog: Any,
    cold: Any = None,
    fallback: Any = None,
    per_case: bool = False,
) -> dict[str, Any]:
    from recsys.evaluation import evaluate_sessions

    m = evaluate_sessions(
        model,
        test,
        k=K,
        exclude_seen=False,
        cases=cases,
        catalog=catalog,
        fallback=fallback,
        per_case=per_case,
    )
    out = {
        f"hr@{K}": round(m[f"hr@{K}"], 4),
        f"hr@{K}_ci": [round(x, 4) for x in m[f"hr@{K}_ci"]],
        f"mrr@{K}": round(m[f"mrr@{K}"], 4),
        f"coverage@{K}": round(m[f"coverage@{K}"], 4),
        "no_recommendation_share": round(m["no_recommendation_share"], 4),
        "fallback_share": round(m["fallback_share"], 4),
        "model_no_recommendation_share": round(m["model_no_recommendation_share"], 4),
        **({"hits": m["hits"]} if per_case else {}),
    }
    if cold is not None:
        ctx, tgt = cases
        keep = [i for i, t in enumerate(tgt) if t in cold]
        out["cold_cases"] = len(keep)
        if keep:
            sub = ([ctx[i] for i in keep], tgt[keep])
            out[f"cold_hr@{K}"] = round(
                evaluate_sessions(
                    model, test, k=K, exclude_seen=False, cases=sub, catalog=catalog, fallback=fallback
                )[f"hr@{K}"],
                4,
            )
    return out


def run_dataset(name: str, ds: Any, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Both protocols' entries of one dataset."""

    from recsys.evaluation import build_session_cases, cold_items
    from recsys.models import make_model
    from recsys.pipeline import fit_fallback
    from recsys.selection import recommend
    from recsys.tuning import tune

    train, test, how = split_of(ds)
    fit_part, valid, _ = split_of(train)
    valid_cases = {
        p: build_session_cases(valid, p, max_cases=args.max_cases, seed=1)
        for p in ("every_position", "collapsed")
    }
    cases = {
        p: build_session_cases(test, p, max_cases=args.max_cases) for p in ("every_position", "collapsed")
    }
    cold = set(cold_items(train, 3, ds.catalog["item_id"].astype(str).to_numpy()))
    # every model's lists are completed by the declared fallback chain, as a run serves them
    chains = (
        (None, None)
        if args.no_fallback
        else (fit_fallback(fit_part, ds.catalog), fit_fallback(train, ds.catalog))
    )
    entries = {
        p: {"n_cases": int(len(cases[p][1])), "models": {}, "recommended": None, "skipped": {}} for p in cases
    }
    validation: dict[str, dict[str, Any]] = {p: {} for p in valid_cases}  # per-case hits
    wanted = args.models or list(MODELS)
    tuned_info: dict[str, dict[str, Any]] = {}
    tuned_keys = {"prod2vec_tuned"} | (set() if args.no_knn_tuning else set(KNN_TUNED))
    if args.content_budget:
        tuned_keys.add("content")
    for key, (family, params) in variants(args.budget, args.quick).items():
        if key not in wanted:
            continue
        if key == "content" and getattr(args, "content_holdout_by", None):
            params = {**params, "holdout_by": args.content_holdout_by}
        if args.quick and key in TF_MODELS:
            for e in entries.values():
                e["skipped"][key] = "--quick leaves the TensorFlow models out"
            continue
        t0 = time.perf_counter()
        try:
            if key in tuned_keys:
                info = tune(
                    family,
                    train,
                    budget_s={"prod2vec_tuned": args.budget, "content": args.content_budget}.get(
                        key, args.knn_budget
                    ),
                    sample=args.tune_sample if key == "prod2vec_tuned" else None,
                    **({"min_trials": args.tune_min_trials} if key == "prod2vec_tuned" else {}),
                    k=K,
                    max_cases=args.max_cases or 3000,
                    base_params=params,
                )
                tuned_info[key] = info
                params = {**params, **info["best_params"]}
            val_model = make_model(family, **params).fit(fit_part)  # the tuner's split, refitted
            for p in valid_cases:
                validation[p][key] = score(
                    val_model, valid, valid_cases[p], ds.catalog, fallback=chains[0], per_case=True
                )["hits"]
            model = make_model(family, **params).fit(train)
        except Exception as exc:  # a family that cannot run on this dataset
            for e in entries.values():
                e["skipped"][key] = f"{type(exc).__name__}: {exc}"[:300]
            logging.warning("%s %s skipped: %s", name, key, exc)
            continue
        for p, e in entries.items():
            e["models"][key] = score(
                model, test, cases[p], ds.catalog, cold if key in ("content", "tfidf") else None, chains[1]
            )
            if getattr(model, "choice_", None):  # Prod2Vec's vectors="auto": chosen on the training part
                c = model.choice_
                e["models"][key]["auto_choice"] = {"chosen": c["chosen"], "validation": c.get("validation")}
            if getattr(model, "blend_", None):  # the content model's TF-IDF side, chosen on validation
                e["models"][key]["tfidf_blend"] = {
                    k: model.blend_[k]
                    for k in ("a", "chosen_on", "projection", "dim", "terms")
                    if k in model.blend_
                }
                # what the simulated cold items said: the chosen a's hit share against a = 1
                # (the TF-IDF side alone), and how they were carved
                val = {r["a"]: r["hr"] for r in model.blend_.get("validation", [])}
                if val:
                    e["models"][key]["tfidf_blend"]["validation_hr@20"] = {
                        "chosen": round(val.get(model.blend_["a"], 0.0), 4),
                        "tfidf_side_alone": round(val.get(1.0, 0.0), 4),
                    }
                e["models"][key]["tfidf_blend"]["holdout_by"] = model.coverage_.get("holdout_by")
            if getattr(model, "expansion_", None):  # seeds looked up with their co-purchases
                e["models"][key]["query_expansion"] = {
                    k: model.expansion_[k] for k in ("b", "chosen_on") if k in model.expansion_
                }
        logging.info(
            "%s %s %.0fs %s", name, key, time.perf_counter() - t0, entries["every_position"]["models"][key]
        )
    out = {}
    for p, e in entries.items():
        v = {m: validation[p][m] for m in sorted(validation[p], key=SIMPLEST_FIRST.index)}
        e["recommended"], why = recommend(v)
        e["recommended_by"] = {"rule": RULE, **why}
        e["validation_hr@20"] = {m: round(float(h.mean()), 4) if len(h) else 0.0 for m, h in v.items()}
        e["split"] = how
        e["tuning"] = {
            key: {
                "budget_s": info["budget_s"],
                "n_trials": info["n_trials"],
                "sample": info["sample"],
                "start_value": info["start_value"],
                "best_value": info["best_value"],
                "best_params": info["best_params"],
                # the tuner's portfolio size, the baselines' validation floor and its notes
                # (a budget that cut the search short), where the tuner gives them
                **{f: info[f] for f in ("portfolio", "baselines", "notes") if f in info},
            }
            for key, info in tuned_info.items()
        }
        if not e["skipped"]:
            del e["skipped"]
        out[name if p == "every_position" else f"{name}:collapsed"] = e
    return out


def main(argv: list[str] | None = None) -> int:
    from recsys.tuning import parse_budget

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="demo, rees46, instacart; sampled cases; no TF models"
    )
    ap.add_argument(
        "--only",
        nargs="+",
        default=None,
        help="dataset names (demo rees46 instacart online_retail dunnhumby taobao, or the folder "
        "name of any other dataset in the datasets directory)",
    )
    ap.add_argument(
        "--stored",
        nargs="+",
        default=None,
        metavar="NAME",
        help="score datasets imported into the data directory ($RECSYS_DATA_DIR) with `recsys import` "
        "(alone, unless --only names others too)",
    )
    ap.add_argument("--models", nargs="+", default=None, choices=MODELS, help="a subset of the models")
    ap.add_argument(
        "--max-cases", type=int, default=None, help="cases sampled per protocol (default: all; --quick 1500)"
    )
    ap.add_argument("--budget", default=None, help="tuning budget per dataset (default 5m; --quick 60s)")
    ap.add_argument("--tune-sample", type=float, default=None, help="tune on this share of sequences")
    ap.add_argument(
        "--tune-min-trials",
        type=int,
        default=None,
        help="Prod2Vec tuning runs at least this many trials past --budget (default: the start point "
        "and the tuner's portfolio, counted, so the figure does not hang on the machine's load; "
        "0: the budget alone)",
    )
    ap.add_argument(
        "--knn-budget", default=None, help="tuning budget of sknn and vsknn each (default 2m; --quick 40s)"
    )
    ap.add_argument(
        "--content-budget",
        default=None,
        help="tune the content model on the validation split's cold targets first (default: its defaults)",
    )
    ap.add_argument(
        "--content-holdout-by",
        default=None,
        choices=("tail", "time", "newest"),
        help="how the content model carves its simulated cold items (default: its own default)",
    )
    ap.add_argument(
        "--no-knn-tuning", action="store_true", help="sknn and vsknn with their defaults, not tuned"
    )
    ap.add_argument(
        "--no-fallback",
        action="store_true",
        help="score the models alone (default: lists completed by the run's fallback chain, as served)",
    )
    ap.add_argument(
        "--demo-items", type=int, default=None, help="demo catalogue size (default 5000; --quick 2000)"
    )
    args = ap.parse_args(argv)
    args.budget = parse_budget(args.budget or ("60s" if args.quick else "5m"))
    args.knn_budget = parse_budget(args.knn_budget or ("40s" if args.quick else "2m"))
    args.content_budget = parse_budget(args.content_budget) if args.content_budget else None
    if args.tune_min_trials is None:
        from recsys.tuning import PORTFOLIOS

        args.tune_min_trials = 1 + len(PORTFOLIOS["prod2vec"])
    args.tune_min_trials = args.tune_min_trials or None  # 0: the tuner's own rule
    if args.max_cases is None and args.quick:
        args.max_cases = 1500
    demo_items = args.demo_items or (2000 if args.quick else 5000)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    for noisy in ("gensim", "recsys", "optuna"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    started = time.perf_counter()
    load_before = os.getloadavg()
    data, skipped, read_as = load_datasets(args.only, args.quick, demo_items, args.stored)
    result: dict[str, Any] = {"datasets": {}}
    for name, ds in data.items():
        entries = run_dataset(name, ds, args)
        for entry in entries.values():
            if name in read_as:
                entry["read_as"] = read_as[name]
        result["datasets"].update(entries)
    if skipped:
        result["skipped_datasets"] = skipped
    result["load_average"] = {
        "start": [round(x, 2) for x in load_before],
        "end": [round(x, 2) for x in os.getloadavg()],
    }
    result["settings"] = {
        "k": K,
        "quick": bool(args.quick),
        "max_cases": args.max_cases,
        "tuning_budget_s": args.budget,
        "tune_sample": args.tune_sample,
        "tune_min_trials": args.tune_min_trials,
        "knn_tuning_budget_s": None if args.no_knn_tuning else args.knn_budget,
        "content_tuning_budget_s": args.content_budget,
        "content_holdout_by": args.content_holdout_by,
        "exclude_seen": False,
        "fallback": not args.no_fallback,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What the commands share: argument types, progress bars, split options, printing."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from recsys.config import Progress
from recsys.errors import RecsysError


class TqdmProgress:
    """A ``progress(done, total, message)`` callable drawing a tqdm bar."""

    def __init__(self, desc: str, enabled: bool = True) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=1, desc=desc, disable=not enabled, unit="", bar_format="{l_bar}{bar}| {postfix}"
        )

    def __call__(self, done: int, total: int, message: str = "") -> None:
        if total and self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        self.bar.set_postfix_str(message[:60], refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _progress(args: argparse.Namespace, desc: str) -> Progress | TqdmProgress:
    return TqdmProgress(desc, enabled=not args.quiet and sys.stderr.isatty() or args.progress)


def _parse_pairs(pairs: Sequence[str] | None, what: str) -> dict[str, Any]:
    """Parse ``key=value`` options; values are read as JSON when they parse."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RecsysError(f"{what} '{pair}' is not of the form key=value")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _number_where(cast: Callable[[str], Any], ok: Callable[[Any], bool], what: str) -> Callable[[str], Any]:
    """An argparse ``type``: ``cast(text)`` (``int`` or ``float``) for which ``ok`` holds, else a
    usage error saying what it must be (``what``), not a traceback later."""
    noun = "an integer" if cast is int else "a number"

    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {noun}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
        return value

    return parse


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``low``."""
    return _number_where(int, lambda v: v >= low, f"at least {low}")


#: an argparse ``type``: a number strictly between 0 and 1
_fraction = _number_where(float, lambda v: 0 < v < 1, "between 0 and 1 (exclusive)")
#: an argparse ``type``: a number above 0
_positive = _number_where(float, lambda v: v > 0, "above 0")


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _split_list(text: str | None) -> list[str] | None:
    if not text:
        return None
    import csv

    return [c.strip() for c in next(csv.reader([text]))]


def _split_name(value: str) -> str:
    return value.replace("-", "_")


def _split_options(args: argparse.Namespace) -> dict[str, Any]:
    """The split's options from the command line, refusing those of another split."""
    method = _split_name(args.split or "time")
    given = {
        "--test-fraction": ("test_fraction", args.test_fraction, ("time",)),
        "--cutoff": ("cutoff", args.cutoff, ("cutoff",)),
        "--days": ("test_days", args.days, ("last_days", "time")),
    }
    out: dict[str, Any] = {}
    for flag, (key, value, methods) in given.items():
        if value is None:
            continue
        if method not in methods:
            raise RecsysError(f"{flag} goes with --split {' or '.join(m.replace('_', '-') for m in methods)}")
        out[key] = value
    if method == "cutoff" and "cutoff" not in out:
        raise RecsysError("--split cutoff needs --cutoff DATE, e.g. --cutoff 2024-05-01")
    if method == "last_days" and "test_days" not in out:
        raise RecsysError("--split last-days needs --days N, e.g. --days 7")
    if getattr(args, "test_dataset", None) or getattr(args, "test", None):
        if args.split or out:
            raise RecsysError("a given test dataset is the split: drop --split and its options")
    return out


def format_metrics(m: dict[str, Any]) -> str:
    """Metrics with their 95% intervals and case counts, then the protocol and warnings."""
    k = m.get("k", 10)
    ci = m.get("ci95", {})
    lines = [f"{'metric':14s} {'value':>8s}  {'95% interval':>19s}"]
    for name in ("hr", "ndcg", "mrr", "precision", "recall", "coverage", "popularity_bias"):
        key = f"{name}@{k}"
        if key not in m:
            continue
        lo_hi = ci.get(key)
        interval = f"[{lo_hi[0]:.4f}, {lo_hi[1]:.4f}]" if lo_hi else ""
        lines.append(f"{key:14s} {m[key]:8.4f}  {interval:>19s}")
    n_seeds = m.get("n_seeds", 0)
    no_recs = m.get("seeds_without_recs", 0)
    lines.append(f"cases: {m.get('n_cases', 0):,} ({n_seeds:,} distinct seeds)")
    proto = m.get("protocol") or {}
    if proto:
        what = proto.get("cases", "")
        if proto.get("cases") == "next item":
            what += f", repeats {proto.get('repeats')}"
        lines.append(f"protocol: {what}{', sampled' if proto.get('sampled') else ', every case scored'}")
    if n_seeds:
        lines.append(f"no recommendation for {no_recs:,} of {n_seeds:,} test seeds ({no_recs / n_seeds:.1%})")
    if "unknown_test_items" in m:
        lines.append(
            f"test items unknown to the training set: {m['unknown_test_items']:,} of {m.get('test_items', 0):,}"
        )
    for w in m.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def _print_coverage(meta: dict[str, Any]) -> None:
    """What share of test seeds the fallback served and what share got nothing (never silent)."""
    m = meta.get("metrics", {})
    cov = meta.get("coverage", {})
    print(
        f"coverage: {cov.get('items_with_vector', '-')} of {cov.get('catalog_items', '-')} catalogue items "
        f"represented ({cov.get('from_fallback', 0)} by the fallback); test seeds served by the fallback "
        f"{m.get('fallback_share', 0.0):.1%}, by nothing {m.get('no_recommendation_share', 0.0):.1%}"
    )
    for note in cov.get("notes", []):
        print(f"note: {note}")
    steps = m.get("fallback_steps") or {}
    if steps or "model_no_recommendation_share" in m:
        served = ", ".join(f"{step} {share:.1%}" for step, share in steps.items()) or "none"
        print(
            f"fallback chain (model -> co-occurrence -> category -> brand -> popular): served {served}; "
            f"the model alone left {m.get('model_no_recommendation_share', 0.0):.1%} of test seeds empty"
        )
    if m.get("coverage_warning"):
        print(f"WARNING: {m['coverage_warning']}", file=sys.stderr)
    rv = m.get("recent_views") or {}
    if rv:
        k = m.get("k", 10)
        parts = [f"{name} hr@{k}={v.get(f'hr@{k}', 0):.4f}" for name, v in rv.items()]
        print("recent views (every position): " + ", ".join(parts))


def _registry(args: argparse.Namespace):
    from recsys.registry import Registry

    return Registry(args.data_dir)


def _print_runs_table(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    from recsys.registry import run_label  # the name every page gives a run

    k = 10
    print(
        f"{'run_id':42s} {'family':14s} {'act':3s} {'hr@10':>7s} {'ndcg@10':>8s} {'cov@10':>7s} {'items':>7s}"
        "  dataset / name"  # the name given at import or training (s41-w), as the pages name the run
    )
    for r in runs:
        if r.get("damaged"):
            print(f"{r['run_id']:42s} {r.get('family') or '?':14s} DAMAGED: {r.get('error')}")
            continue
        m = r.get("metrics", {})
        cov = r.get("coverage", {})

        def f(key: str, m: dict[str, Any] = m) -> str:
            v = m.get(f"{key}@{k}")
            return f"{v:.4f}" if isinstance(v, (int, float)) else "-"

        print(
            f"{r['run_id']:42s} {r['family']:14s} {'*' if r.get('active') else '':3s} {f('hr'):>7s} "
            f"{f('ndcg'):>8s} {f('coverage'):>7s} {cov.get('items_with_vector', '-')!s:>7s}"
            f"  {(r.get('dataset') or {}).get('name') or '-'} / {run_label(r)}"
        )


def _add_split_args(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument(
        "--split",
        default=None,
        choices=["time", "cutoff", "last-days", "leave-last-out", "last_days", "leave_last_out"],
        help="evaluation split: time (the latest --test-fraction of sequences), cutoff (sequences from "
        "--cutoff DATE on), last-days (the last --days N days) or leave-last-out (the last event of "
        f"every sequence); default: {default or 'the run’s own'}",
    )
    p.add_argument(
        "--test-fraction", type=_fraction, default=None, help="time split: share held out (default 0.1)"
    )
    p.add_argument("--cutoff", default=None, metavar="DATE", help="cutoff split: e.g. 2024-05-01")
    p.add_argument("--days", type=_positive, default=None, help="last-days split: days held out")
    p.add_argument(
        "--repeats",
        default="collapse",
        choices=["collapse", "keep"],
        help="next-item cases: collapse consecutive repeats of an item (default) or keep every position",
    )
    p.add_argument(
        "--max-cases",
        type=_int_at_least(1),
        default=None,
        help="sample this many test cases (default: score every case)",
    )


def _duration_s(text: str) -> float:
    """An argparse ``type``: seconds, or a number with s/m/h/d (``30m``)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    scale = units.get(t[-1:], None)
    try:
        value = float(t[:-1] if scale else t) * (scale or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration (e.g. 1800, 30m, 2h)") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value

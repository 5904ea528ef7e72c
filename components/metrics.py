"""The runs/metrics table, shared by Overview, Runs and Compare (dash-ag-grid).

``metrics_grid(grid_id, runs)`` turns a list of run.json dicts (as returned by
``Registry.list_runs``) into a sortable grid whose rows are keyed by
``run_id`` (``getRowId``), so selections survive refreshes. ``run_rows`` and
``metric_keys`` are the plain-data halves, usable without the grid (and in tests).

Example
-------
>>> metrics_grid("compare-metrics", Registry(root).list_runs(), metrics=metric_keys(runs))
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import dash_ag_grid as dag

from recsys.registry import run_label

#: The metrics the Overview shows (and the Runs page by default).
HEADLINE_METRICS: tuple[str, ...] = ("hr@10", "ndcg@10", "coverage@10")

#: Preferred order of metric name prefixes; others follow alphabetically.
_METRIC_ORDER = ("hr", "ndcg", "mrr", "precision", "recall", "coverage", "popularity_bias", "diversity")

#: What an empty metric cell reads: "not evaluated" for a run that has no evaluation because its
#: dataset is a catalogue only (:data:`NOT_EVALUATED`, its row's ``not_evaluated``), else "—".
#: The grid showed "—" for such a run's metrics without saying why (s44's walk).
_EMPTY = "(params.data && params.data.not_evaluated ? 'not evaluated' : '—')"
#: A catalogue-only run's row: why its metrics are empty (the cells' tooltip, its Warnings cell).
NOT_EVALUATED = "not evaluated: catalogue only (the dataset has no interactions to score on)"

# the Cases column keeps "—": "not evaluated" was cut to "not ev…" there, beside metric cells saying it
_COUNT_FORMAT = {"function": "params.value == null ? '—' : d3.format(',')(params.value)"}


def not_evaluated(run: dict[str, Any]) -> bool:
    """A catalogue-only run (``pipeline._train_catalog_only``: split "none", no metrics): it has no
    evaluation because its dataset has no interactions."""
    return (run.get("split") or {}).get("method") == "none" and not run.get("damaged")


#: Counters stored beside the metrics (not metric columns).
COUNTERS = frozenset(
    {"n_cases", "k", "n_seeds", "skipped_cases", "seeds_without_recs", "unknown_test_items", "test_items"}
)


def _metric_format(key: str) -> dict[str, str]:
    """The value, then "±half-width" of its 95% interval when the run has one (tooltip: the interval)."""
    # parenthesised: pasted into "ci[1] - ci[0]" below, a bare "a && b" read "a && (b[1] - a) && ..."
    ci = f"(params.data && params.data[{key + '_ci'!r}])"
    return {
        "function": f"params.value == null ? {_EMPTY} : d3.format('.3f')(params.value) + ({ci} ? ' ±' + "
        f"d3.format('.3f')(({ci}[1] - {ci}[0]) / 2) : '')"
    }


#: the served shares (``recsys.evaluation``) as an analyst reads them: header, what it counts
SHARE_COLUMNS: dict[str, tuple[str, str]] = {
    "fallback_share": (
        "Seeds by fallback",
        "share of test seeds the model had no list for, served by the fallback chain (or a stand-in vector)",
    ),
    "no_recommendation_share": (
        "Seeds with no list",
        "share of test seeds that got no recommendation at all",
    ),
    "model_no_recommendation_share": (
        "Model alone: no list",
        "share of test seeds the model alone left without a list, before the fallback chain",
    ),
    "completed_share": (
        "Lists completed",
        "share of test seeds whose list the model started and the fallback chain completed to k",
    ),
}
_SHARE_FORMAT = {"function": f"params.value == null ? {_EMPTY} : d3.format('.1%')(params.value)"}


_INTEGER_FORMAT = {"function": "params.value == null ? '—' : d3.format(',d')(params.value)"}


_SECONDS_FORMAT = {"function": "params.value == null ? '—' : d3.format('.1f')(params.value) + ' s'"}


def metric_keys(runs: Iterable[dict[str, Any]]) -> list[str]:
    """Every scalar metric name found in ``runs`` (headline ones first).

    Nested values (``per_category``) and counters (``n_cases``) are left out.
    """
    found: set[str] = set()
    for run in runs:
        for key, value in (run.get("metrics") or {}).items():
            if key not in COUNTERS and _is_number(value):
                found.add(key)

    def order(key: str) -> tuple[int, str]:
        prefix = key.split("@")[0]
        rank = _METRIC_ORDER.index(prefix) if prefix in _METRIC_ORDER else len(_METRIC_ORDER)
        return (rank, key)

    return sorted(found, key=order)


def run_rows(
    runs: Iterable[dict[str, Any]], metrics: Sequence[str] = HEADLINE_METRICS
) -> list[dict[str, Any]]:
    """One flat row per run: identity, status, metrics (None when missing), timings."""
    rows = []
    for run in runs:
        m = run.get("metrics") or {}
        timings = run.get("timings") or {}
        device = run.get("device") or {}
        row = {
            "run_id": run.get("run_id", ""),
            "label": run_label(run),
            "family": run.get("family", ""),
            "dataset": (run.get("dataset") or {}).get("name", ""),
            "status": run.get("status", ""),
            "active": bool(run.get("active")),
            "created": str(run.get("created", ""))[:19].replace("T", " "),
            "fit_s": _number_or_none(timings.get("fit_s")),
            "device": device.get("device", "") if isinstance(device, dict) else str(device),
            "error": str(run.get("error") or "") if run.get("damaged") else "",
        }
        ci = m.get("ci95") or {}
        # a catalogue-only run (pipeline._train_catalog_only: split "none", no metrics)
        unevaluated = not_evaluated(run)
        if unevaluated:
            row["not_evaluated"] = True
        for key in metrics:
            row[key] = _number_or_none(m.get(key))
            if unevaluated:
                row[f"{key}_ci_text"] = NOT_EVALUATED
            interval = ci.get(key)
            if (
                isinstance(interval, (list, tuple))
                and len(interval) == 2
                and all(_number_or_none(b) is not None for b in interval)
            ):  # an interval with a missing or NaN bound is not shown (it read "±NaN")
                row[f"{key}_ci"] = [float(interval[0]), float(interval[1])]
                row[f"{key}_ci_text"] = (
                    f"95% interval {interval[0]:.4f} to {interval[1]:.4f} over {m.get('n_cases', 0):,} cases"
                )
        row["cases"] = m.get("n_cases") if isinstance(m.get("n_cases"), int) else None
        # an imported run's caution (its vectors may have seen the test part) is a note too (s41-w)
        notes = [*(m.get("warnings") or []), *([run["metrics_note"]] if run.get("metrics_note") else [])]
        if unevaluated:
            notes.insert(0, NOT_EVALUATED)
        row["notes"] = "; ".join(notes)
        rows.append(row)
    return rows


def column_defs(metrics: Sequence[str] = HEADLINE_METRICS, extra: Sequence[str] = ()) -> list[dict[str, Any]]:
    """ag-grid column definitions: label, family, dataset, status, active, metrics, extras."""
    cols: list[dict[str, Any]] = [
        # wide enough for a run's generated name whole ("prod2vec tuned · taobao · 2026-12-07 10:42"):
        # at 200 px every run of a day read "content · demo · 2026-..." (s45)
        {
            "field": "label",
            "headerName": "Run",
            "pinned": "left",
            "minWidth": 320,
            "flex": 2,
            "tooltipField": "label",
        },
        {"field": "family", "headerName": "Family", "minWidth": 120},
        {"field": "dataset", "headerName": "Dataset", "minWidth": 100},
        {
            "field": "active",
            "headerName": "Active",
            "maxWidth": 95,
            "cellRenderer": "agCheckboxCellRenderer",
            "cellClass": "text-center",
        },
    ]
    for key in metrics:
        if key in SHARE_COLUMNS:  # a share of test seeds, in words and as a percentage
            header, tip = SHARE_COLUMNS[key]
            cols.append(
                {
                    "field": key,
                    "headerName": header,
                    "headerTooltip": f"{tip} ({key} in run.json)",
                    "type": "numericColumn",
                    "valueFormatter": _SHARE_FORMAT,
                    "minWidth": 128,
                    "cellClass": ["ag-right-aligned-cell", "metric-cell"],
                }
            )
            continue
        cols.append(
            {
                "field": key,
                "headerName": key,
                "type": "numericColumn",
                "valueFormatter": _metric_format(key),
                "tooltipField": f"{key}_ci_text",
                "minWidth": 128,  # "0.373 ±0.004" whole at 1280 px (105 cut it to "0.373 ±0.…")
                "cellClass": ["ag-right-aligned-cell", "metric-cell"],
            }
        )
    if metrics:
        cols.append(
            {
                "field": "cases",
                "headerName": "Cases",
                "type": "numericColumn",
                "valueFormatter": _COUNT_FORMAT,
                "maxWidth": 110,
                "headerTooltip": "test cases scored; each metric shows ± half its 95% interval",
            }
        )
        cols.append(
            {
                "field": "notes",
                "headerName": "Warnings",
                "tooltipField": "notes",
                "minWidth": 120,
                "cellClass": "metric-warning",
            }
        )
    extra_defs = {
        "status": {"field": "status", "headerName": "Status", "maxWidth": 110},
        "created": {"field": "created", "headerName": "Created (UTC)", "minWidth": 160, "sort": "desc"},
        "fit_s": {"field": "fit_s", "headerName": "Fit", "valueFormatter": _SECONDS_FORMAT, "maxWidth": 100},
        "device": {"field": "device", "headerName": "Device", "minWidth": 90},
        "run_id": {"field": "run_id", "headerName": "Run id", "minWidth": 220},
        "error": {"field": "error", "headerName": "Problem", "minWidth": 260, "tooltipField": "error"},
    }
    for key in extra:
        cols.append(extra_defs.get(key, {"field": key}))
    return cols


def metrics_grid(
    grid_id: Any,
    runs: Iterable[dict[str, Any]],
    *,
    metrics: Sequence[str] = HEADLINE_METRICS,
    extra: Sequence[str] = (),
    selectable: bool = False,
    height: int | None = None,
    compact: bool = False,
) -> dag.AgGrid:
    """A sortable grid of runs and their metrics.

    Parameters
    ----------
    grid_id : str or dict
        The component id (a constant from :mod:`components.ids`).
    runs : iterable of dict
        run.json dicts (``Registry.list_runs()``).
    metrics : sequence of str
        Metric columns, in order (``metric_keys(runs)`` for all of them).
    extra : sequence of str
        More columns among ``status``, ``created``, ``fit_s``, ``device``, ``run_id``, ``error``
        (why a damaged run is damaged).
    selectable : bool
        Single-row selection (read it from ``selectedRows``).
    height : int, optional
        Pixel height; by default the grid sizes itself to its rows (``autoHeight``).
    compact : bool
        Smaller rows (for cards).
    """
    rows = run_rows(runs, metrics)
    grid_options: dict[str, Any] = {
        "animateRows": False,
        "suppressCellFocus": True,
        "localeText": {"noRowsToShow": "No runs yet"},
        # every column drawn, also those scrolled out of view (a run grid has about 20): a screen
        # reader, a find-in-page and a test read a run's Warnings cell without scrolling to it
        "suppressColumnVirtualisation": True,
    }
    if selectable:
        grid_options["rowSelection"] = {
            "mode": "singleRow",
            "enableClickSelection": True,
            "checkboxes": False,
        }
    if compact:
        grid_options["rowHeight"] = 34
    style = {"height": f"{height}px"} if height else None
    if style is None:
        grid_options["domLayout"] = "autoHeight"
    columns = column_defs(metrics, extra)
    for col in columns:
        if col.get("field") in metrics and is_count_column([r.get(col["field"]) for r in rows]):
            col["valueFormatter"] = _INTEGER_FORMAT  # counts ("10", not "10.000")
    return dag.AgGrid(
        id=grid_id,
        rowData=rows,
        columnDefs=columns,
        defaultColDef={"sortable": True, "resizable": True, "filter": False, "flex": 1, "minWidth": 90},
        getRowId="params.data.run_id",
        dashGridOptions=grid_options,
        columnSize="responsiveSizeToFit",
        className="metrics-grid",
        style=style or {"width": "100%"},
    )


def is_count_column(values: Sequence[Any]) -> bool:
    """Whether a metric column holds counts: every value a whole number and one above 1
    (so a rate that happens to be 0 or 1 keeps its decimals)."""
    nums = [float(v) for v in values if _is_number(v) and math.isfinite(float(v))]
    return bool(nums) and all(v.is_integer() for v in nums) and any(abs(v) > 1 for v in nums)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_or_none(value: Any) -> float | None:
    if not _is_number(value) or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)

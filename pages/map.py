"""Map: a 2-D projection of a run's item vectors as a WebGL scatter.

PCA is computed in memory at once (a fraction of a second even at 100k items) as the first
view; UMAP runs as a background job ("project", cached per run on disk as
``projection_umap.parquet``) started with a button here or on the Runs page, and the map
switches to it when the job finishes. Points are coloured by category level, brand (top N +
other), gender or price; hovering shows a card, searching highlights matching items,
clicking a point opens it in Explore, a lasso/box selection lists its items in a grid, and
the neighbourhood-purity chart says how well each category holds together.

Size: coordinates go as base64 float32 typed arrays; item positions as plain integer lists
(see ``components.scatter.map_figure``), so 100k points make a figure of about 1.7 MB; above
``MAX_POINTS`` a seeded random sample is drawn and the status line says so.

Speed: the first figure comes with the page's layout (:func:`first_figure`); above
``FIRST_PAINT_POINTS`` it is a seeded sample of that size ("showing N of M, loading the
rest"), and :func:`complete_map` sends every point once the sample is drawn; the
purity chart (seconds of exact search at 100k items) is computed only once the map is
complete, so it never competes with the figure for the server's CPU.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import Input, Output, Patch, State, callback, clientside_callback, dcc, html, no_update

from components import ids
from components.common import (
    bounded_k,
    data_registry,
    run_catalog_view,
    run_dataset,
    run_searcher,
    unavailable_run,
)
from components.item_card import explore_href
from components.jobs import run_name
from components.layout import (
    error_alert,
    info_alert,
    labelled_col,
    no_embedding_runs,
    page_header,
)
from components.map_selection import (  # noqa: F401
    MAX_SELECTION_ROWS,
    ORDER_NOTE,
    selection_grid,
    selection_order,
    selection_rows,
    selection_summary,
)
from components.map_warm import FIGURES, read_stored, run_lock, stored_digest, stored_path, write_stored
from components.pickers import opening_run, search_items
from components.scatter import OTHER, TOP_N, hover_card, map_figure, point_labels, purity_figure  # noqa: F401
from recsys.config import data_dir
from recsys.errors import RecsysError
from recsys.labels import readable_label

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/map", title="RecSys Lab · Map", name="Map", order=2)

MAX_POINTS = 100_000
#: Above this many points the first figure is a seeded random sample of this size (drawn in a
#: fraction of the time), and the full figure follows once it is drawn (:func:`complete_map`).
#: 10k: in ``bench/browser.py`` at 100k items the first paint with 10k took 0.73-0.89x the
#: time with 20k, and 5k was no faster than 10k (what is left is plotly.js and WebGL set-up,
#: whatever the count); 10k points still draw every cluster at the map's size, and a category
#: of 0.5% of the items still has about 50 points in it.
FIRST_PAINT_POINTS = 10_000
MAX_HIGHLIGHT = 5_000
COLOR_CHOICES = (
    ("category:0", "Category (top level)"),
    ("category:1", "Category (level 2)"),
    ("category:2", "Category (level 3)"),
    ("brand", f"Brand (top {TOP_N})"),
    ("gender", "Gender"),
    ("price", "Price"),
)


# -- data -------------------------------------------------------------------------------
def projection_frame(run_id: str, method: str) -> pd.DataFrame | None:
    """``item_id, x, y`` of a run (:func:`recsys.projection.run_projection`)."""
    from recsys.projection import run_projection

    return run_projection(data_dir(), run_id, method)


_POSITIONS: list[tuple[Any, Any, tuple, tuple]] = []  # (view, frame, key, result), newest last


def point_positions(view: Any, frame: pd.DataFrame, max_points: int = MAX_POINTS, seed: int = 0) -> tuple:
    """(x, y, positions, total) of the points the view knows (:func:`recsys.projection.sample_points`).

    Memoised for the last few (view, projection) pairs: the view is cached per run and the
    projection frames are (shallow copies of) cached frames, so the same data has the same
    column memory; aligning 100k item ids took about 0.25 s of every Map load.
    """
    from recsys.projection import sample_points

    xs = frame["x"].to_numpy()
    key = (xs.__array_interface__["data"][0], len(frame), max_points, seed)
    for v, _frame, k, result in _POSITIONS:
        if v is view and k == key:
            return result
    result = sample_points(view.item_ids, frame, max_points, seed)
    _POSITIONS.append((view, frame, key, result))  # the frame is kept: its memory is not reused
    del _POSITIONS[:-4]
    return result


def umap_job(jobs: dict[str, Any] | None, run_id: str) -> dict[str, Any] | None:
    """The newest UMAP job of a run in the app-level jobs store (None when there is none)."""
    for job in (jobs or {}).get("jobs", []):
        params = job.get("params") or {}
        if (
            job.get("kind") == "project"
            and params.get("run_id") == run_id
            and params.get("method", "umap") == "umap"
        ):
            return job
    return None


def map_state(
    run_id: str,
    method: str,
    color_by: str,
    jobs: dict[str, Any] | None,
    drawn: dict[str, Any] | None,
    first_paint: int | None = None,
) -> dict[str, Any]:
    """Plain-function body of the draw callback: figure (or no_update), meta, status.

    With ``first_paint`` and more points than that, the figure holds a seeded random sample
    of ``first_paint`` points (each colour group in proportion, in expectation) and the meta
    says ``"partial": True``; :func:`complete_map` then sends every point.

    One call at a time per run (:func:`components.map_warm.run_lock`): a request that comes
    while the warm-up draws the same run waits for it and finds the figure built."""
    with run_lock(str(data_dir()), run_id):
        return _map_state(run_id, method, color_by, jobs, drawn, first_paint)


def _map_state(
    run_id: str,
    method: str,
    color_by: str,
    jobs: dict[str, Any] | None,
    drawn: dict[str, Any] | None,
    first_paint: int | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"figure": no_update, "meta": no_update, "status": None}
    try:
        view = run_catalog_view(run_id)
        umap = projection_frame(run_id, "umap")
    except RecsysError as exc:
        out["status"] = error_alert(exc, f"Could not load run {run_id}", dismissable=False)
        return out
    job = umap_job(jobs, run_id)
    use = "umap" if (method == "umap" or method == "auto") and umap is not None else "pca"
    stamp = str(umap.attrs.get("seconds", "")) if use == "umap" and umap is not None else ""
    want = {"run": run_id, "method": use, "color": color_by, "stamp": stamp}
    drawn = drawn or {}
    status_bits: list[Any] = [dbc.Badge(use.upper(), color="primary", className="me-2")]
    if drawn and all(drawn.get(k) == v for k, v in want.items()):
        status_bits += _status_tail(drawn, umap, job, method)
        out["status"] = html.Div(status_bits, className="map-status-line")
        return out
    try:  # the PCA of a run whose files were damaged since the page was drawn
        frame = umap if use == "umap" else projection_frame(run_id, "pca")
        fig, n_shown, total = drawn_figure(view, frame, run_id, use, color_by, stamp, first_paint)
    except RecsysError as exc:
        out["status"] = error_alert(exc, f"Could not load run {run_id}", dismissable=False)
        return out
    meta = {**want, "n_traces": len(fig["data"]), "n_shown": n_shown, "n_total": total}
    if "meta" in fig["layout"]:  # a sample
        meta["partial"] = True
        meta["sample"] = fig["layout"]["meta"]
    out["figure"], out["meta"] = fig, meta
    status_bits += _status_tail(meta, umap, job, method)
    out["status"] = html.Div(status_bits, className="map-status-line")
    return out


def drawn_figure(
    view: Any, frame: pd.DataFrame, run_id: str, use: str, color_by: str, stamp: str, first_paint: int | None
) -> tuple[dict[str, Any], int, int]:
    """``(figure, points shown, points in all)``: a copy of the one built from the same view and
    frame (:data:`components.map_warm.FIGURES`)."""
    xs = frame["x"].to_numpy()
    key = (run_id, use, color_by, stamp, int(first_paint or 0), xs.__array_interface__["data"][0], len(frame))

    def build() -> dict[str, Any]:
        x, y, pos, total = point_positions(view, frame)
        partial = bool(first_paint) and len(x) > int(first_paint)
        if partial:
            keep = np.sort(np.random.default_rng(0).permutation(len(x))[: int(first_paint)])
            x, y, pos = x[keep], y[keep], pos[keep]
        fig = map_figure(x, y, pos, view, color_by, uirevision=f"{run_id}:{use}")
        if partial:
            # the browser's mark that this very sample is on screen (see WAIT_FOR_SAMPLE_JS)
            fig["layout"]["meta"] = f"{run_id}|{use}|{color_by}|{stamp}|{len(x)}"
            # no lasso/box on the sample: a selection of it would list only the sampled items,
            # and in a select drag mode plotly.js builds a second scatter (its selection layer,
            # on the second WebGL context: shaders compiled again) and every point's pixel
            # position before the first paint; the complete figure brings the lasso back
            # (uirevision keeps a drag mode the user picked meanwhile)
            fig["layout"]["dragmode"] = "zoom"
        return {"data": fig["data"], "layout": fig["layout"], "n": [int(len(x)), int(total)]}

    # the frame is kept with the figure: its column memory (in the key) is not reused
    built = FIGURES.get((view,), key, build, keep=(frame,))
    n_shown, total = built.pop("n")
    return built, n_shown, total


def _status_tail(meta: dict[str, Any], umap: Any, job: dict[str, Any] | None, method: str) -> list[Any]:
    bits: list[Any] = []
    shown, total = meta.get("n_shown", 0), meta.get("n_total", 0)
    if meta.get("partial"):
        bits.append(
            html.Span(
                f"showing {shown:,} of {total:,} items, loading the rest… (lasso and box select once all are drawn)",
                className="text-info me-2",
            )
        )
    elif shown < total:
        bits.append(
            html.Span(
                f"{shown:,} of {total:,} items (random sample above {MAX_POINTS:,})",
                className="text-warning me-2",
            )
        )
    else:
        bits.append(html.Span(f"{shown:,} items", className="me-2"))
    if umap is None:
        text, css = _umap_job_line(job)
        bits.append(html.Span(text, className=css))
    elif method == "pca":
        bits.append(html.Span("· UMAP available", className="text-muted"))
    return bits


def _umap_job_line(job: dict[str, Any] | None) -> tuple[str, str]:
    """(text, CSS class) of the status line while no UMAP projection is stored."""
    status = (job or {}).get("status")
    message = str((job or {}).get("message") or "")
    if status == "queued":
        waiting = message.removeprefix("queued: ") or "waiting to start"
        return f"· UMAP queued ({waiting}); PCA shown meanwhile", "text-muted"
    if status == "running":
        pct = int(round(100 * float(job.get("fraction") or 0)))
        # "fitting UMAP on N points: finding neighbours: NN-descent 3/13" -> the phase
        phase = (
            message.split(": ", 1)[1] if message.startswith("fitting UMAP") and ": " in message else message
        )
        return (
            f"· UMAP computing in the background ({pct}%{': ' + phase if phase else ''}); PCA shown meanwhile",
            "text-muted",
        )
    if status == "failed":
        return f"· UMAP job failed: {job.get('error') or message}", "text-danger"
    return "· UMAP not computed yet: PCA shown", "text-muted"


def umap_offer(run_id: str | None) -> dict[str, str]:
    """The style of "Compute UMAP" (and a viewer's note in its place): hidden once the run's UMAP
    projection is stored and readable. A run's vectors never change and UMAP is seeded, so a
    second job would draw the same map; the button was offered while UMAP was shown (s44's walk)."""
    if not run_id:
        return {}
    try:
        stored = projection_frame(run_id, "umap") is not None
    except RecsysError:  # a damaged file: computing it again is the way out
        stored = False
    return {"display": "none"} if stored else {}


# -- layout -------------------------------------------------------------------------------
def first_figure(run_id: str, color_by: str) -> dict[str, Any]:
    """The first figure, its meta and status line, sent with the page's layout.

    Answered by :func:`draw_map` instead, the figure cost one more round trip after the layout
    had arrived and rendered (about 0.1-0.3 s of a Map load at 100k items), and with plotly.js
    cached that round trip was on the first paint's path. :func:`draw_map`'s first call finds
    the meta of this figure and leaves the figure alone; above ``FIRST_PAINT_POINTS`` this is
    the sample, and :func:`complete_map` follows as before. Whatever goes wrong here is left to
    :func:`draw_map`, which says what it is.

    A run of more than ``INLINE_DRAW_ITEMS`` items whose first figure is not stored yet (a run
    never opened, e.g. just imported) is drawn off the request (:func:`_draw_behind`) and
    :func:`draw_map` answers it: drawn inline, its layout came seconds later and the page
    stayed blank meanwhile (about 4 s at 92k items); now the page shows at once, with the
    map's loading state and a status line saying it is being drawn."""
    empty: dict[str, Any] = {"figure": {"data": [], "layout": {}}, "meta": None, "status": None}
    try:
        n_items = _run_items(run_id)
        inline = n_items is None or n_items <= INLINE_DRAW_ITEMS
        stored = stored_first_figure(run_id, color_by, draw=inline)
        if stored is not None or inline:
            return stored or empty
    except (RecsysError, OSError, ValueError, KeyError):
        logger.exception("the Map's first figure of %s: left to the draw callback", run_id)
        return empty
    _draw_behind(run_id, color_by)
    status = f"Drawing the map of {n_items:,} items (the first time this run is shown)…"
    return {**empty, "status": html.Div(status, className="map-status-line text-muted map-drawing")}


#: Above this many items, :func:`first_figure` leaves a first figure that is not stored yet
#: to :func:`_draw_behind` and :func:`draw_map` (drawn inline, the page stayed blank meanwhile).
INLINE_DRAW_ITEMS = 20_000


def _run_items(run_id: str) -> int | None:
    """The run's number of items with a vector (its run.json), None when it does not say."""
    n = (data_registry().get(run_id).get("coverage") or {}).get("items_with_vector")
    return int(n) if isinstance(n, int) else None


def _draw_behind(run_id: str, color_by: str) -> None:
    """Draw and store the run's first figure in a thread: :func:`draw_map`'s first call waits
    for it (:func:`map_state` holds the run's lock) and finds it built; the stored copy serves
    the next load at once."""
    import threading

    def draw() -> None:
        try:
            stored_first_figure(run_id, color_by)
        except Exception:  # noqa: BLE001 - draw_map's own call says what went wrong
            logger.exception("drawing the Map's first figure of %s", run_id)

    threading.Thread(target=draw, name="recsys-map-first", daemon=True).start()


#: The modules whose code draws the first figure (their stamps are part of its stored name).
_FIGURE_CODE = (
    Path(__file__),
    *(Path(sys.modules[m].__file__ or "") for m in (map_figure.__module__, "recsys.labels")),
)


def stored_first_figure(run_id: str, color_by: str, draw: bool = True) -> dict[str, Any] | None:
    """:func:`first_figure`'s answer, read from its stored copy for the files it is drawn from
    (:func:`components.map_warm.stored_path`), else drawn and stored; None when the run cannot
    be drawn (draw_map's first call says why), or (``draw=False``) is not stored yet. Raises
    RecsysError for an unknown run."""
    from recsys.data.schema import dataset_report_path
    from recsys.projection import projection_name

    registry = data_registry()
    name = registry.get(run_id)["dataset"]["name"]
    run_dir = registry.run_dir(run_id)
    files = [
        run_dir / "run.json",
        run_dir / "item_ids.npy",
        dataset_report_path(name, registry.root),
        *(registry.artifact_path(run_id, projection_name(m)) for m in ("umap", "pca")),
        *_FIGURE_CODE,  # a new version of the code that draws it draws it anew
    ]
    parts = [str(registry.root), run_id, name, color_by, FIRST_PAINT_POINTS]
    digest = stored_digest(parts, files)
    path = stored_path(registry.root, run_id, color_by, digest)
    stored = read_stored(path)
    if stored is not None:
        meta = stored["meta"]
        bits = [dbc.Badge(str(meta.get("method", "pca")).upper(), color="primary", className="me-2")]
        bits += _status_tail(meta, True if meta.get("method") == "umap" else None, None, "auto")
        return {**stored, "status": html.Div(bits, className="map-status-line")}
    if not draw:
        return None
    out = map_state(run_id, "auto", color_by, None, None, FIRST_PAINT_POINTS)
    if not isinstance(out["figure"], dict) or not isinstance(out["meta"], dict):
        return None
    if stored_digest(parts, files) == digest:  # not if a file changed while it was drawn
        write_stored(path, {"figure": out["figure"], "meta": out["meta"]})
    return out


def chosen_run(
    registry: Any, runs: list[dict[str, Any]], asked: str | None, all_runs: list[dict[str, Any]] | None = None
) -> str:
    """The run the Map opens on: ``asked`` when it is one of ``runs`` (the embedding runs),
    else the best variant Overview names (:func:`components.pickers.opening_run`, as Explore),
    else the newest. ``all_runs``: every run as the caller listed them (read once)."""
    run_ids = [r["run_id"] for r in runs]
    if asked in run_ids:
        return str(asked)
    default, _ = opening_run(registry, runs, all_runs)
    return default if default in run_ids else run_ids[0]


def warm_first_map(color_by: str = "category:0") -> str | None:
    """The Map's first load of the run it opens on (:func:`chosen_run`) done now: the first
    figure (and its stored copy), the complete one; the run, None without embedding runs.
    Not the purity chart: computed ahead, it slowed a first Map load that came meanwhile."""
    from components.map_warm import sweep_stored

    registry = data_registry()
    sweep_stored(registry)  # the stored figures of deleted runs
    all_runs = registry.list_runs()
    runs = [r for r in all_runs if r.get("is_embedding")]
    if not runs:
        return None
    run = chosen_run(registry, runs, None, all_runs)
    stored_first_figure(run, color_by)  # its stored copy, for the next start
    # the catalogue and projection the draw callbacks read, and the complete figure
    first = map_state(run, "auto", color_by, None, None, FIRST_PAINT_POINTS)
    if not isinstance(first["meta"], dict):
        return run  # the run cannot be read: the page says why
    if first["meta"].get("partial"):
        map_state(run, "auto", color_by, None, None)
    return run


def layout(run: str | None = None, color: str | None = None, **_: Any) -> html.Div:
    """The Map page (``?run=`` picks the run, ``?color=`` the colouring)."""
    header = page_header("Map", "The embedding space in 2-D: neighbours in vector space sit close together.")
    try:
        registry = data_registry()
        all_runs = registry.list_runs()  # once per layout: each listing reads every run.json
        runs = [r for r in all_runs if r.get("is_embedding")]
    except (OSError, RecsysError) as exc:
        return html.Div([header, error_alert(exc, "Could not read the runs")])
    if not runs:
        return no_embedding_runs(header, runs=all_runs)
    asked = run
    run = chosen_run(registry, runs, asked, all_runs)
    notice = (
        info_alert(
            f"Run '{asked}' has no map here (unknown, deleted, damaged, or a baseline without item "
            f"vectors: {unavailable_run(asked)}); showing the default run instead.",
            color="warning",
        )
        if asked and asked != run
        else None
    )
    color = color if color in dict(COLOR_CHOICES) else "category:0"
    first = first_figure(run, color)
    from components.pickers import run_options

    controls = dbc.Card(
        dbc.CardBody(
            dbc.Row(
                [
                    labelled_col(
                        "Variant (run)",
                        dcc.Dropdown(id=ids.MAP_RUN, options=run_options(runs), value=run, clearable=False),
                        lg=3,
                    ),
                    labelled_col(
                        "Projection",
                        dbc.RadioItems(
                            id=ids.MAP_METHOD,
                            value="auto",
                            inline=True,
                            className="pt-1",
                            options=[
                                {"label": "UMAP when ready", "value": "auto"},
                                {"label": "PCA", "value": "pca"},
                            ],
                        ),
                        lg=3,
                    ),
                    labelled_col(
                        "Colour by",
                        dcc.Dropdown(
                            id=ids.MAP_COLOR,
                            value=color,
                            clearable=False,
                            searchable=False,
                            options=[{"label": lab, "value": v} for v, lab in COLOR_CHOICES],
                        ),
                        lg=3,  # "Category (top level)" whole at 1280 (it read "Category (top …")
                    ),
                    labelled_col(
                        "Highlight",
                        dbc.Input(
                            id=ids.MAP_SEARCH,
                            placeholder="title, brand or id…",
                            debounce=True,
                            type="search",
                        ),
                        lg=3,
                    ),
                ],
                className="g-3",
            )
        ),
        className="section-card mb-3 map-controls",
    )
    graph_card = dbc.Card(
        [
            dbc.CardHeader(
                html.Div(
                    [
                        html.Div(first["status"], id=ids.MAP_STATUS, className="small"),
                        html.Div(
                            [
                                dbc.Button(
                                    "Compute UMAP",
                                    id=ids.MAP_UMAP_BUTTON,
                                    className="editor-only",
                                    size="sm",
                                    color="primary",
                                    outline=True,
                                    n_clicks=0,
                                ),
                                html.Div(  # in the hidden button's place, for a viewer (s41-w)
                                    "Computing UMAP needs the editor role",
                                    className="small text-muted viewer-only map-viewer-note",
                                ),
                            ],
                            id=ids.MAP_UMAP_OFFER,
                            style=umap_offer(run),
                        ),
                    ],
                    className="d-flex justify-content-between align-items-center gap-2",
                )
            ),
            dbc.CardBody(
                [
                    dcc.Loading(
                        dcc.Graph(
                            id=ids.MAP_GRAPH,
                            figure=first["figure"],
                            config={"displaylogo": False, "scrollZoom": True},
                            clear_on_unhover=True,
                            # the whole plot on the first screen: 640 px where it fits, less on a
                            # short one (at 1280x720 it began 382 px down and ran 445 px past the fold)
                            className="map-graph",
                        ),
                        type="circle",
                        delay_show=400,
                        # the sampled first paint stays visible while the rest of the points load
                        overlay_style={"visibility": "visible", "opacity": 0.6},
                    ),
                    dcc.Tooltip(id=ids.MAP_TOOLTIP, direction="right", className="map-tooltip"),
                    html.Div(
                        "Hover a point for its card · click it to open it in Explore · lasso or box to list "
                        "items",
                        className="text-muted small mt-1",
                    ),
                ],
                className="p-2",
            ),
        ],
        className="section-card mb-3 map-graph-card",
    )
    selection = dbc.Card(
        [
            dbc.CardHeader(
                html.Div(
                    [
                        html.H5("Selection", className="mb-0"),
                        html.Span(id=ids.MAP_SELECTION_INFO, className="small text-muted"),
                    ],
                    className="d-flex justify-content-between align-items-center",
                )
            ),
            dbc.CardBody(html.Div(selection_grid([]), id=ids.MAP_SELECTION_BOX)),
        ],
        className="section-card mb-3",
    )
    purity = dbc.Card(
        [
            dbc.CardHeader(
                html.Div(
                    [
                        html.H5("Neighbourhood purity", className="mb-0"),
                        html.Div(
                            [
                                html.Span("k", className="small text-muted"),
                                dcc.Dropdown(
                                    id=ids.MAP_PURITY_K,
                                    options=[5, 10, 20],
                                    value=10,
                                    clearable=False,
                                    searchable=False,
                                    className="purity-k",
                                ),
                            ],
                            className="d-flex gap-2 align-items-center",
                        ),
                    ],
                    className="d-flex justify-content-between align-items-center",
                )
            ),
            dbc.CardBody(dcc.Loading(html.Div(id=ids.MAP_PURITY), type="dot")),
        ],
        className="section-card mb-3",
    )
    return html.Div(
        [
            header,
            notice,
            dcc.Location(id=ids.MAP_NAV, refresh="callback-nav"),
            # "from_layout": draw_map's first call sends this meta on (see there)
            dcc.Store(
                id=ids.MAP_META, data={**first["meta"], "from_layout": True} if first["meta"] else None
            ),
            dcc.Store(id=ids.MAP_DRAWN),
            controls,
            graph_card,
            dbc.Row([dbc.Col(selection, lg=7), dbc.Col(purity, lg=5)], className="g-3"),
        ],
        className="map-page",
    )


# -- callbacks --------------------------------------------------------------------------
@callback(
    Output(ids.MAP_GRAPH, "figure"),
    Output(ids.MAP_META, "data"),
    Output(ids.MAP_STATUS, "children"),
    Input(ids.MAP_RUN, "value"),
    Input(ids.MAP_METHOD, "value"),
    Input(ids.MAP_COLOR, "value"),
    Input(ids.JOBS_STORE, "data"),
    State(ids.MAP_META, "data"),
)
def draw_map(
    run_id: str | None, method: str, color_by: str, jobs: dict[str, Any] | None, drawn: dict[str, Any] | None
) -> tuple[Any, Any, Any]:
    """Draw (or keep) the scatter; the jobs store only refreshes the status unless UMAP landed."""
    if not run_id:
        return no_update, no_update, ""
    out = map_state(run_id, method or "auto", color_by or "category:0", jobs, drawn, FIRST_PAINT_POINTS)
    meta = out["meta"]
    if meta is no_update and drawn and drawn.get("from_layout"):
        # the first call after the layout drew the first figure (:func:`first_figure`): the
        # same meta again, since the callbacks that follow the drawn map (complete_map through
        # the drawn store, update_purity) wait for this call and run only on a changed meta.
        # Told by the mark, not by an initial call's empty trigger: when the jobs store is
        # filled before this call goes out (a data directory with jobs), Dash merges the two
        # and the first call comes triggered by the jobs store (the purity then never came)
        meta = {k: v for k, v in drawn.items() if k != "from_layout"}
    return out["figure"], meta, out["status"]


#: Resolves with the meta of a sampled first paint once the browser has drawn that sample
#: (the graph holds the figure whose ``layout.meta`` is ``meta["sample"]``, and two frames have
#: passed), so that :func:`complete_map` asks for every point only then. Asked at once, the
#: full figure arrived while plotly.js was still loading on a first visit, and the graph drew
#: it directly: the sample was never seen (issue 14). Gives up waiting after 30 s and asks anyway.
WAIT_FOR_SAMPLE_JS = """
function (meta) {
    if (!meta || !meta.partial) { return window.dash_clientside.no_update; }
    return new Promise(function (resolve) {
        const start = Date.now();
        const painted = function () {
            requestAnimationFrame(function () { requestAnimationFrame(function () { resolve(meta); }); });
        };
        const check = function () {
            const gd = document.querySelector("#GRAPH .js-plotly-plot");
            if ((gd && gd._fullData && gd.layout && gd.layout.meta === meta.sample) || Date.now() - start > 30000) {
                painted();
            } else {
                setTimeout(check, 25);
            }
        };
        check();
    });
}
""".replace("GRAPH", ids.MAP_GRAPH)

clientside_callback(WAIT_FOR_SAMPLE_JS, Output(ids.MAP_DRAWN, "data"), Input(ids.MAP_META, "data"))


@callback(
    Output(ids.MAP_GRAPH, "figure", allow_duplicate=True),
    Output(ids.MAP_META, "data", allow_duplicate=True),
    Output(ids.MAP_STATUS, "children", allow_duplicate=True),
    Input(ids.MAP_DRAWN, "data"),
    State(ids.MAP_RUN, "value"),
    State(ids.MAP_METHOD, "value"),
    State(ids.MAP_COLOR, "value"),
    State(ids.JOBS_STORE, "data"),
    State(ids.MAP_SEARCH, "value"),
    prevent_initial_call=True,
)
def complete_map(
    meta: dict[str, Any] | None,
    run_id: str | None,
    method: str | None,
    color_by: str | None,
    jobs: dict[str, Any] | None,
    query: str | None = None,
) -> tuple:
    """After a sampled first paint (``meta["partial"]``) is on screen (the browser says so through
    the drawn store, :data:`WAIT_FOR_SAMPLE_JS`), send the figure with every point, with the
    search typed meanwhile still highlighted.

    Answers nothing when the drawn map is complete, or when the full figure would no longer
    be the one asked for (the run, projection or colouring changed meanwhile)."""
    if not meta or not meta.get("partial") or (run_id, color_by) != (meta.get("run"), meta.get("color")):
        return no_update, no_update, no_update
    out = map_state(meta["run"], method or "auto", meta.get("color") or "category:0", jobs, None)
    new = out["meta"]
    if not isinstance(new, dict) or any(
        new.get(k) != meta.get(k) for k in ("run", "method", "color", "stamp")
    ):
        return no_update, no_update, no_update
    if query and str(query).strip():
        apply_highlight(out["figure"], query, meta["run"], new)
    return out["figure"], new, out["status"]


@callback(
    Output(ids.MAP_STATUS, "children", allow_duplicate=True),
    Input(ids.MAP_UMAP_BUTTON, "n_clicks"),
    State(ids.MAP_RUN, "value"),
    State(ids.JOBS_STORE, "data"),
    prevent_initial_call=True,
)
def submit_umap(_n: int, run_id: str | None, jobs: dict[str, Any] | None) -> Any:
    """Start the UMAP projection of the run as a background job (once at a time per run)."""
    from recsys.jobs import JobStore

    if not run_id:
        return no_update
    job = umap_job(jobs, run_id)
    if job and job.get("status") in ("queued", "running"):
        return html.Span("UMAP is already computing for this run.", className="text-muted")
    try:
        job_id = JobStore(data_dir()).submit(
            "project", {"run_id": run_id, "method": "umap"}, label=f"UMAP of {run_name(run_id)}"
        )
    except RecsysError as exc:
        return error_alert(exc, "Could not start UMAP")
    return html.Span(
        [
            dbc.Badge("PCA", color="primary", className="me-2"),
            f"UMAP job {job_id} started; the map switches to it when it is done.",
        ]
    )


@callback(
    Output(ids.MAP_UMAP_OFFER, "style"),
    Input(ids.MAP_RUN, "value"),
    Input(ids.JOBS_STORE, "data"),
    State(ids.MAP_UMAP_OFFER, "style"),
    prevent_initial_call=True,
)
def follow_umap(run_id: str | None, _jobs: dict[str, Any] | None, now: dict[str, str] | None = None) -> Any:
    """ "Compute UMAP" follows the run shown: offered while its UMAP is not stored, gone once a
    job has stored it (the jobs store changes when the job ends) or for a run that has one.
    Unchanged, nothing is sent (the jobs store changes every second while any job runs)."""
    style = umap_offer(run_id)
    return no_update if style == (now or {}) else style


@callback(
    Output(ids.MAP_GRAPH, "figure", allow_duplicate=True),
    Input(ids.MAP_SEARCH, "value"),
    State(ids.MAP_RUN, "value"),
    State(ids.MAP_META, "data"),
    State(ids.MAP_GRAPH, "figure"),
    prevent_initial_call=True,
)
def highlight(query: str | None, run_id: str | None, meta: dict[str, Any] | None, figure: Any) -> Any:
    """Outline the points matching the search (a Patch: the big arrays are not resent)."""
    if not run_id or not meta or not figure:
        return no_update
    try:  # the run may have been deleted since the map was drawn
        return highlight_patch(query, run_id, meta, figure)
    except RecsysError:
        return no_update


def highlight_patch(query: str | None, run_id: str, meta: dict[str, Any], figure: Any) -> Patch:
    """The Patch that fills the highlight trace with the matches among the drawn points."""
    patch = Patch()
    apply_highlight(patch, query, run_id, meta)
    return patch


def apply_highlight(figure: Any, query: str | None, run_id: str, meta: dict[str, Any]) -> None:
    """Fill the highlight trace (the last one) of ``figure`` (a Patch or the figure's dict)
    with the search's matches, and dim the other traces while there are matches."""
    view = run_catalog_view(run_id)
    n = int(meta.get("n_traces", 1))
    hits = search_items(view, query, limit=None)
    if len(hits) == 0:
        for i in range(n - 1):
            figure["data"][i]["marker"]["opacity"] = 0.7 if meta.get("color") != "price" else 0.75
        figure["data"][n - 1]["x"] = []
        figure["data"][n - 1]["y"] = []
        figure["data"][n - 1]["customdata"] = []
        return
    frame = projection_frame(run_id, meta.get("method", "pca"))
    x, y, pos, _ = point_positions(view, frame)
    sel = np.flatnonzero(np.isin(pos, hits))[:MAX_HIGHLIGHT]
    for i in range(n - 1):
        figure["data"][i]["marker"]["opacity"] = 0.25
    figure["data"][n - 1]["x"] = x[sel].tolist()
    figure["data"][n - 1]["y"] = y[sel].tolist()
    figure["data"][n - 1]["customdata"] = pos[sel].tolist()
    figure["data"][n - 1]["name"] = f"{len(sel):,} matches"


@callback(
    Output(ids.MAP_TOOLTIP, "show"),
    Output(ids.MAP_TOOLTIP, "bbox"),
    Output(ids.MAP_TOOLTIP, "children"),
    Input(ids.MAP_GRAPH, "hoverData"),
    State(ids.MAP_RUN, "value"),
    prevent_initial_call=True,  # nothing is hovered when the page opens
)
def show_tooltip(hover: dict[str, Any] | None, run_id: str | None) -> tuple[Any, Any, Any]:
    """Card of the hovered point (title, brand, category, price).

    One small server round trip per hovered point, on purpose: drawing the card from the
    figure (``customdata`` + ``hovertemplate``) would ship title, brand, category and price
    of every point, about 9.4 MB of JSON at 100k items (the whole figure is 1.7 MB today,
    3 MB at most), while this callback answers under 1 KB in a millisecond or two of server time.
    """
    if not hover or not run_id or not hover.get("points"):
        return False, no_update, no_update
    point = hover["points"][0]
    if "customdata" not in point:
        return False, no_update, no_update
    try:
        card = hover_card(run_catalog_view(run_id), int(point["customdata"]), run_dataset(run_id))
    except (RecsysError, IndexError, ValueError):
        return False, no_update, no_update
    return True, point.get("bbox"), card


@callback(
    Output(ids.MAP_NAV, "href"),
    Input(ids.MAP_GRAPH, "clickData"),
    State(ids.MAP_RUN, "value"),
    prevent_initial_call=True,
)
def open_in_explore(click: dict[str, Any] | None, run_id: str | None) -> Any:
    """Clicking a point opens it as the seed in Explore."""
    if not click or not run_id or not click.get("points") or "customdata" not in click["points"][0]:
        return no_update
    try:  # the run may have been deleted since the map was drawn
        item_id = str(run_catalog_view(run_id).item_ids[int(click["points"][0]["customdata"])])
    except (RecsysError, IndexError, ValueError):
        return no_update
    return explore_href(item_id, run_id)


@callback(
    Output(ids.MAP_SELECTION_BOX, "children"),
    Output(ids.MAP_SELECTION_INFO, "children"),
    Input(ids.MAP_GRAPH, "selectedData"),
    State(ids.MAP_RUN, "value"),
    prevent_initial_call=True,
)
def list_selection(selected: dict[str, Any] | None, run_id: str | None) -> tuple[Any, Any]:
    """Items inside the lasso/box selection: (the grid or the hint, the info line)."""
    if not selected or not run_id:
        return selection_grid([]), ""
    positions, shape = selection_order(selected)  # nearest the lasso's centre first
    try:  # the run may have been deleted since the map was drawn
        view = run_catalog_view(run_id)
        rows, info = selection_rows(view, positions, ordered=True)
        summary = selection_summary(view, positions)
    except RecsysError as exc:
        return selection_grid([]), f"Could not list the selection: {exc}"
    parts = [summary, selection_grid(rows)]
    if shape and rows:
        note = html.Div(ORDER_NOTE.format(shape=shape), className="small text-muted mb-1 selection-order")
        parts.insert(1, note)
    return html.Div(parts), info


#: Purity tables already computed in this process: (data dir, run, labels, k, queries) ->
#: table. A run's vectors and catalogue never change, and exact search over 100k items takes
#: seconds, so a page revisit or a colouring switched back is answered at once.
_PURITY_CACHE: dict[tuple, Any] = {}
_PURITY_CACHE_SIZE = 32


def _purity_table(run_id: str, by: str, k: int, max_queries: int) -> Any:
    from recsys.projection import catalogue_purity

    key = (str(data_dir()), run_id, by, k, max_queries)
    # one computation at a time per run: a second page asking meanwhile waits for the first
    with run_lock(key[0], f"purity:{run_id}"):
        if key not in _PURITY_CACHE:
            searcher = run_searcher(run_id)
            table = catalogue_purity(searcher.view, searcher.unit, by, k=k, max_queries=max_queries)
            while len(_PURITY_CACHE) >= _PURITY_CACHE_SIZE:
                _PURITY_CACHE.pop(next(iter(_PURITY_CACHE)))
            _PURITY_CACHE[key] = table
        return _PURITY_CACHE[key]


def purity_view(run_id: str, color_by: str, k: int, max_queries: int = 2000) -> Any:
    """Bar chart of neighbourhood purity per label (vs the random baseline)."""
    by = color_by if color_by in ("brand", "gender") or color_by.startswith("category:") else "category:0"
    full = _purity_table(run_id, by, k, max_queries)
    table = full.head(15).iloc[::-1].copy()
    table["label"] = table["label"].map(lambda v: readable_label(v, "brand" if by == "brand" else "category"))
    table.attrs = full.attrs
    fig = purity_figure(table)
    overall = table.attrs.get("overall")
    label = dict(COLOR_CHOICES).get(by, by).replace(f" (top {TOP_N})", "")
    return html.Div(
        [
            html.Div(
                [
                    html.Span(f"{overall:.0%}" if overall is not None else "—", className="purity-overall"),
                    html.Span(
                        f" of each item's {table.attrs.get('k', k)} nearest neighbours share its "
                        f"{label.lower()} ({table.attrs.get('n_queries', 0):,} items measured)",
                        className="text-muted small",
                    ),
                ]
            ),
            dcc.Graph(figure=fig, config={"displayModeBar": False}),
        ]
    )


@callback(
    Output(ids.MAP_PURITY, "children"),
    Input(ids.MAP_META, "data"),
    Input(ids.MAP_PURITY_K, "value"),
    # the first call of draw_map sets the meta store (again), which runs this: an initial call
    # as well was one more round trip while the first figure is drawn
    prevent_initial_call=True,
)
def update_purity(meta: dict[str, Any] | None, k: Any) -> Any:
    """Neighbourhood purity of the drawn run, by the colouring's labels (category when price).

    Driven by the map's meta store, i.e. once the scatter has been sent: the exact search
    takes seconds at 100k items and would otherwise compete with the figure for the server's
    CPU on the page's first load. Nothing until a map is drawn (when the run cannot be read
    the status line says why)."""
    if not meta or not meta.get("run") or meta.get("partial"):  # after the complete map
        return no_update
    try:
        return purity_view(meta["run"], meta.get("color") or "category:0", bounded_k(k))
    except RecsysError as exc:
        return error_alert(exc, "Could not compute purity", dismissable=False)

"""Vetting: judge recommended pairs one keypress each, and turn judgments into preset rules.

A merchandiser picks a dataset, run and preset, builds a queue of seeds (by traffic, N per
leaf category, at random, or pasted ids) and walks through each seed's top-k: ``j``/``k``
move, ``1`` thumbs up, ``2`` thumbs down (the reason chosen on the card, "other" by default),
``3``-``9`` thumbs down with a reason; the focus moves on by itself. Judgments go to
:class:`recsys.vetting.store.JudgmentStore` (who, when, run, preset, position); the queue
(the pairs, frozen when built) is saved there too, with progress per category.

A judged pair's "Rule…" button proposes rules (:mod:`recsys.vetting.proposals`): a pin for a
thumbs-up, a do-not-associate pair for a thumbs-down, and a banned brand pair for a brand
clash; the merchandiser confirms in a dialog and the preset is saved as a new version.

The keyboard and the outbox of judgments live in ``assets/vetting_keys.js``; the server
stores the outbox and acknowledges each judgment, so a judgment made while another is on its
way is sent again rather than lost.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import (
    ALL,
    ClientsideFunction,
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    ctx,
    dcc,
    html,
    no_update,
)
from dash.exceptions import PreventUpdate

from components.common import data_registry, run_catalog_view, run_dataset, run_searcher
from components.item_card import card_rows, display_title, item_card, mark_same_title
from components.layout import (
    empty_state,
    error_alert,
    info_alert,
    labelled_col,
    no_embedding_runs,
    page_header,
)
from components.pickers import embedding_runs, opening_run, run_options
from components.vetting_panels import (
    VETTING_JUDGED_REV,
    VETTING_PRESET,
    VETTING_RUN,
    checks_panel,
    keys_help,
    precision_panel,
    queue_modes,
)
from recsys.config import data_dir
from recsys.errors import FilterConfigError, RecsysError
from recsys.filters import FilterConfig, PresetStore
from recsys.vetting.store import (
    MAX_NOTE,
    REASON_LABELS,
    REASONS,
    DamagedJudgmentsError,
    JudgmentError,
    JudgmentStore,
    current_user,
    now_iso,
    queue_progress,
)

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/vetting", title="RecSys Lab · Vetting", name="Vetting", order=3.5)

# ids (the contract with the vetting panels of components/vetting_panels.py: run, preset, rev)
DATASET = "vetting-dataset"
RUN, PRESET, JUDGED_REV = VETTING_RUN, VETTING_PRESET, VETTING_JUDGED_REV  # the ids the panels read
K = "vetting-k"
MODE = "vetting-mode"
N_SEEDS = "vetting-n"
PER_CATEGORY = "vetting-per-category"
PASTED = "vetting-pasted"
BUILD = "vetting-build"
QUEUE = "vetting-queue"
QUEUE_DATA = "vetting-queue-data"
QUEUE_MESSAGE = "vetting-queue-message"
PROGRESS = "vetting-progress"
PAIRS = "vetting-pairs"
KEY = "vetting-key"
CURSOR = "vetting-cursor"
GROUP = "vetting-group"
OUTBOX = "vetting-outbox"
ACKED = "vetting-acked"
STATUS = "vetting-status"
FOCUS_SINK = "vetting-focus-sink"
PROPOSE = "vetting-propose"  # pattern id type of a pair's "Rule…" button
RULE_MODAL = "vetting-rule-modal"
RULE_CHOICE = "vetting-rule-choice"
RULE_PRESET = "vetting-rule-preset"
RULE_CONFIRM = "vetting-rule-confirm"
RULE_CANCEL = "vetting-rule-cancel"
RULE_PROPOSALS = "vetting-rule-proposals"
RULE_MESSAGE = "vetting-rule-message"
EXPORT = "vetting-export"
EXPORT_DOWNLOAD = "vetting-export-download"
IMPORT = "vetting-import"
IO_MESSAGE = "vetting-io-message"

K_CHOICES = (5, 10, 20)
MODES = {
    "traffic": "By traffic (popular first)",
    "category": "N per leaf category",
    "random": "At random",
    "pasted": "Pasted ids",
}
#: The queue form's inputs and the modes that read them (``build_queue``): each is shown only
#: in those modes ("Per leaf" and the pasted ids stood beside "By traffic", doing nothing).
MODE_INPUTS: dict[str, tuple[str, ...]] = {
    N_SEEDS: ("traffic", "category", "random"),
    PER_CATEGORY: ("category",),
    PASTED: ("pasted",),
}
MAX_CSV_BYTES = 20 * 1024 * 1024
NEW_PRESET = "vetted"


def judgment_store() -> JudgmentStore:
    """The judgments store of the current data directory."""
    return JudgmentStore(data_dir())


# -- plain helpers (tested directly) ----------------------------------------------------------
def preset_options(store: PresetStore) -> list[dict[str, str]]:
    """``name · vN`` options of every readable preset."""
    return [{"label": f"{p['name']} · v{p['version']}", "value": p["name"]} for p in store.list()]


def run_choices(
    dataset: str | None, all_runs: list[dict[str, Any]] | None = None
) -> tuple[list[dict[str, str]], str | None]:
    """(options, default value) of the run dropdown for a dataset (the default dataset when
    None). The default is the run Explore and the Map open on
    (:func:`components.pickers.opening_run`: Overview's best variant when it is served), so a
    merchandiser coming from Explore vets the list they looked at. ``all_runs``: every run, as
    ``registry.list_runs()`` gave the caller."""
    registry = data_registry()
    every = registry.list_runs() if all_runs is None else all_runs
    dataset = dataset or registry.default_dataset(every)
    runs = [r for r in embedding_runs(registry, every) if r["dataset"]["name"] == dataset]
    if not runs:
        return [], None
    default, _ = opening_run(registry, runs, every, dataset)
    ids = [r["run_id"] for r in runs]
    return run_options(runs), default if default in ids else ids[0]


def queue_options(run: str | None, preset: str | None) -> tuple[list[dict[str, str]], str | None]:
    """(options, newest) of the saved queues of a run + preset."""
    if not run:
        return [], None
    found = judgment_store().queues(run=run, preset=preset or "")
    opts = [
        {
            "label": f"{q['created'][:16].replace('T', ' ')} · {MODES.get(q['spec'].get('mode'), '?')} · "
            f"{q['n_pairs']} pairs · {q['user']}" + (" · damaged" if q.get("damaged") else ""),
            "value": q["id"],
        }
        for q in found
    ]
    return opts, (found[0]["id"] if found else None)


def queue_browser_data(queue: dict[str, Any]) -> dict[str, Any]:
    """What the browser keeps of a queue: its run + preset, its number of pairs ``n`` and where
    each seed's pairs start (``starts``: the index of each seed group's first pair, then ``n``).

    The pairs themselves stay on the server (:func:`queue_pairs_of`): the browser gets one
    seed's pairs at a time, drawn as cards (each card carries its seed, item and position). A
    saved queue of :data:`recsys.vetting.queue.MAX_SEEDS` seeds (20,000 pairs, 3 MB as JSON)
    in a ``dcc.Store``, sent back with every callback that read it, hung Chromium's renderer.
    """
    firsts: dict[str, int] = {}
    for i, p in enumerate(queue["pairs"]):
        firsts.setdefault(p["seed"], i)
    starts, n = list(firsts.values()), len(queue["pairs"])
    return {
        "id": queue["id"],
        "loaded": now_iso(),  # a new cursor for each load (the browser keeps its own until then)
        "dataset": queue["dataset"],
        "run": queue["run"],
        "preset": queue["preset"],
        "n": n,
        "starts": [*starts, n] if n else [0],
    }


_QUEUE_CACHE: dict[tuple[str, str], list[dict[str, Any]]] = {}
_QUEUE_CACHE_SIZE = 4
_QUEUE_CACHE_LOCK = threading.Lock()  # the server's threads share it


def queue_pairs_of(queue_id: str) -> list[dict[str, Any]]:
    """The stored queue's pairs with their seed group ``g`` (a saved queue is frozen, so the
    last few read are kept: each seed drawn would otherwise parse the whole queue again)."""
    key = (str(data_dir()), str(queue_id))
    cached = _QUEUE_CACHE.get(key)
    if cached is not None:
        return cached
    queue = judgment_store().queue(queue_id)
    groups: dict[str, int] = {}
    pairs = []
    for p in (queue or {}).get("pairs", []):
        keep = ("seed", "item_id", "position", "score", "category")
        pairs.append({**{k: p.get(k) for k in keep}, "g": groups.setdefault(p["seed"], len(groups))})
    if queue is not None:
        with _QUEUE_CACHE_LOCK:
            while len(_QUEUE_CACHE) >= _QUEUE_CACHE_SIZE:
                _QUEUE_CACHE.pop(next(iter(_QUEUE_CACHE)))
            _QUEUE_CACHE[key] = pairs
    return pairs


def first_unjudged(pairs: list[dict[str, Any]], judged: dict) -> int:
    """Index of the first pair not judged yet (0 when all are)."""
    return next((i for i, p in enumerate(pairs) if (p["seed"], p["item_id"]) not in judged), 0)


MAX_PROGRESS_ROWS = 50


def progress_view(pairs: list[dict[str, Any]], judged: dict, most: int = MAX_PROGRESS_ROWS) -> Any:
    """A table of progress per seed category, with the total: the ``most`` categories with the
    most pairs (by name), and a line saying how many are not shown (a queue of 2,000 leaves
    drew a 2,000-row table)."""
    if not pairs:
        return empty_state("The queue is empty.")
    every = queue_progress(pairs, judged)
    total = sum(r["pairs"] for r in every)
    done = sum(r["judged"] for r in every)
    rows = every
    if len(every) > most:
        busiest = sorted(every, key=lambda r: -r["pairs"])[:most]  # stable: by name among ties
        shown = {r["category"] for r in busiest}
        rows = [r for r in every if r["category"] in shown]
    hidden = [r for r in every if r not in rows]
    head = html.Div(
        [
            html.Strong(f"{done} / {total} pairs judged"),
            dbc.Progress(
                value=100 * done / total if total else 0, className="mt-1 mb-2", style={"height": "6px"}
            ),
        ],
        id="vetting-progress-total",
        **{"data-done": done, "data-total": total},
    )
    table = html.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th("Seed category"),
                        html.Th("Seeds", title="seeds with every pair judged / seeds"),
                        html.Th("Pairs", title="pairs judged / pairs"),
                    ]
                )
            ),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(r["category"]),
                            html.Td(f"{r['seeds_done']} / {r['seeds']}"),
                            html.Td(f"{r['judged']} / {r['pairs']}"),
                        ]
                    )
                    for r in rows
                ]
            ),
        ],
        className="table table-sm small vet-progress-table",
    )
    more = (
        html.Div(
            f"{len(hidden)} more categories not shown ({sum(r['judged'] for r in hidden)} / "
            f"{sum(r['pairs'] for r in hidden)} pairs judged); the {most} with the most pairs are.",
            className="text-muted small vet-progress-more",
        )
        if hidden
        else None
    )
    return html.Div([head, html.Div(table, className="vet-progress-scroll"), more])


def pair_controls(index: int, note: str | None = None) -> html.Div:
    """Thumbs buttons, reason, note (the stored one, if any) and the rule button of one pair (the
    keys do the same)."""
    return html.Div(
        [
            html.Button(
                "✓ good",
                className="btn btn-sm btn-outline-success editor-only",
                title="thumbs up (1)",
                **{"data-vote": "up"},
            ),
            html.Button(
                "✗ bad",
                className="btn btn-sm btn-outline-danger editor-only",
                title="thumbs down (2)",
                **{"data-vote": "down"},
            ),
            html.Select(
                # "other" first: the default of a thumbs-down
                [html.Option(REASON_LABELS[r], value=r) for r in ("other", *REASONS[:-1])],
                className="form-select form-select-sm vet-reason editor-only",
                title="reason of a thumbs-down (or keys 3-9)",
            ),
            html.Div(
                dcc.Input(
                    value=note or "",
                    placeholder="note (Enter: back to judging)",
                    className="form-control form-control-sm vet-note",
                    maxLength=MAX_NOTE,
                    autoComplete="off",
                ),
                className="vet-note-wrap editor-only",
            ),
            html.Button(
                "Rule…",
                id={"type": PROPOSE, "index": index},
                className="btn btn-sm btn-outline-secondary editor-only",
                title="turn this judgment into a preset rule",
            ),
        ],
        className="vet-controls",
    )


def seed_pairs_view(queue: dict[str, Any], group: int, judged: dict, notes: dict | None = None) -> Any:
    """The seed of ``group`` and its queued pairs as cards with judging controls."""
    pairs = [(i, p) for i, p in enumerate(queue["pairs"]) if p["g"] == group]
    if not pairs:
        return empty_state("Nothing to judge here.")
    view = run_catalog_view(queue["run"])
    seed = pairs[0][1]["seed"]
    seed_pos = view.position(seed)
    positions = [view.position(p["item_id"]) for _, p in pairs]
    known = [pos for pos in positions if pos >= 0]
    dataset = run_dataset(queue["run"])
    rows = dict(zip(known, card_rows(view, known, dataset, extras=True))) if known else {}
    # an item titled as the seed: maybe the same product under another id (reason 8, duplicate)
    mark_same_title(view, seed_pos, known, [rows[pos] for pos in known])
    n_groups = queue["pairs"][-1]["g"] + 1
    cards = []
    for (i, p), pos in zip(pairs, positions):
        row = rows.get(pos, {"item_id": p["item_id"], "title": f"{p['item_id']} (no longer in the run)"})
        verdict, reason = judged.get((p["seed"], p["item_id"]), (None, None))
        state = {1: " vet-up", -1: " vet-down"}.get(verdict, "")
        tag = (
            "✓ good"
            if verdict == 1
            else f"✗ {(reason or 'other').replace('_', ' ')}"
            if verdict == -1
            else ""
        )
        cards.append(
            html.Div(
                [
                    item_card(row, score=p.get("score"), rank=p["position"], run_id=queue["run"]),
                    html.Div(tag, className="vet-verdict"),
                    pair_controls(i, (notes or {}).get((p["seed"], p["item_id"]))),
                ],
                className="vet-pair" + state,
                tabIndex="-1",  # the keyboard focus sits on the focused pair (assets/vetting_keys.js)
                **{
                    "data-index": i,
                    "data-seed": p["seed"],
                    "data-item": p["item_id"],
                    "data-position": p["position"],
                    "data-queue": queue.get("id"),  # the keys judge a card of the queue loaded
                    "data-verdict": {1: "up", -1: "down"}.get(verdict, ""),
                    # the stored reason, shown in the card's reason select (assets/vetting_keys.js)
                    "data-reason": (reason or "other") if verdict == -1 else "",
                },
            )
        )
    seed_card = (
        item_card(card_rows(view, [seed_pos], dataset, extras=True)[0], seed=True)
        if seed_pos >= 0
        else html.Div(seed, className="item-card")
    )
    return html.Div(
        [
            html.Div(
                [
                    html.Span(f"Seed {group + 1} of {n_groups}", className="text-muted small d-block mb-1"),
                    seed_card,
                ],
                className="vet-seed",
            ),
            html.Div(cards, className="card-grid vet-grid"),
        ],
        className="vet-seed-row",
    )


def judged_at(value: Any) -> str:
    """The browser's time of a judgment when it is a sane ISO time within a day of the server's
    (it orders one user's re-judgments whatever order their requests land in), else now."""
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return now.isoformat()
    if when.tzinfo is None or abs(when - now) > timedelta(days=1):
        return now.isoformat()
    return when.isoformat()


def store_outbox(outbox: list[dict[str, Any]], user: str) -> tuple[list[str], list[str]]:
    """Store the browser's pending judgments as ``user``; (acknowledged ``t``s, problems).

    A judgment that cannot be stored is acknowledged too (with its problem), so it is not
    sent again and again. A judgment sent twice (its request was superseded) is stored once.
    """
    store = judgment_store()
    acked, problems = [], []
    for entry in outbox:
        if not isinstance(entry, dict) or "t" not in entry:
            continue
        fields = {
            k: entry.get(k)
            for k in ("dataset", "run", "preset", "seed", "item_id", "position", "verdict", "reason", "note")
        }
        try:
            store.judge(**fields, user=user, at=judged_at(entry.get("at")))
        except DamagedJudgmentsError:
            raise  # not acknowledged: the browser keeps the judgment and sends it again
        except JudgmentError as exc:
            problems.append(str(exc))
        acked.append(entry["t"])
    return acked, problems


# -- layout ---------------------------------------------------------------------------------
def _box(ident: str) -> str:
    """The id of the box around a queue-form input (shown or hidden with the mode)."""
    return f"{ident}-box"


def _mode_style(ident: str, mode: str | None) -> dict[str, str]:
    """The style of an input's box: hidden in the modes that do not read it (MODE_INPUTS)."""
    return {} if mode in MODE_INPUTS[ident] else {"display": "none"}


def _number(ident: str, value: int, most: int) -> dcc.Input:
    return dcc.Input(
        id=ident, type="number", min=1, max=most, value=value, className="form-control form-control-sm"
    )


def layout(run: str | None = None, preset: str | None = None, **_: Any) -> html.Div:
    """The Vetting page (``?run=`` and ``?preset=`` pick them)."""
    header = page_header(
        "Vetting", "Judge recommended pairs, one keypress each; turn judgments into preset rules."
    )
    try:
        registry = data_registry()
        all_runs = registry.list_runs()
        runs = embedding_runs(registry, all_runs)
        presets = preset_options(PresetStore(data_dir()))
    except (OSError, RecsysError) as exc:
        return html.Div([header, error_alert(exc, "Could not read the runs")])
    if not runs:
        return no_embedding_runs(header, runs=all_runs)
    by_id = {r["run_id"]: r for r in runs}
    if run in by_id:
        dataset = by_id[run]["dataset"]["name"]
        run_opts, _ = run_choices(dataset, all_runs)
    else:  # the run Explore and the Map open on
        dataset = registry.default_dataset(all_runs)
        run_opts, run = run_choices(dataset, all_runs)
        if run is None:  # the default dataset has no embedding run: the newest one's
            run = runs[0]["run_id"]
            dataset = by_id[run]["dataset"]["name"]
            run_opts, _ = run_choices(dataset, all_runs)
    datasets = sorted({r["dataset"]["name"] for r in runs})
    if preset not in {p["value"] for p in presets}:
        preset = None
    try:
        q_opts, q_value = queue_options(run, preset)
    except RecsysError as exc:  # a damaged judgments file: say which, keep the app up
        return html.Div([header, error_alert(exc, "Could not read the judgments")])

    pickers = dbc.Card(
        dbc.CardBody(
            dbc.Row(
                [
                    labelled_col(
                        "Dataset",
                        dcc.Dropdown(id=DATASET, options=datasets, value=dataset, clearable=False),
                        md=3,
                    ),
                    labelled_col(
                        "Run", dcc.Dropdown(id=RUN, options=run_opts, value=run, clearable=False), md=4
                    ),
                    labelled_col(
                        "Preset",
                        dcc.Dropdown(
                            id=PRESET, options=presets, value=preset, placeholder="no preset (run defaults)"
                        ),
                        md=3,
                    ),
                    labelled_col(
                        "Top k",
                        dcc.Dropdown(id=K, options=list(K_CHOICES), value=10, clearable=False),
                        md=2,
                    ),
                ],
                className="g-2",
            )
        ),
        className="mb-3",
    )
    mode_options, mode = queue_modes(MODES, dataset, data_dir())
    queue_card = dbc.Card(
        dbc.CardBody(
            [
                html.H6("Queue", className="mb-2"),
                dbc.RadioItems(id=MODE, options=mode_options, value=mode),
                dbc.Row(
                    [
                        labelled_col(
                            "Seeds",
                            _number(N_SEEDS, 20, 2000),
                            width=6,
                            id=_box(N_SEEDS),
                            style=_mode_style(N_SEEDS, mode),
                        ),
                        labelled_col(
                            "Per leaf",
                            _number(PER_CATEGORY, 2, 100),
                            width=6,
                            id=_box(PER_CATEGORY),
                            style=_mode_style(PER_CATEGORY, mode),
                        ),
                    ],
                    className="g-2 mt-1",
                ),
                html.Div(
                    dcc.Textarea(
                        id=PASTED,
                        placeholder="Item ids, one per line or comma-separated",
                        className="form-control form-control-sm mt-2",
                        style={"height": "4rem"},
                    ),
                    id=_box(PASTED),
                    style=_mode_style(PASTED, mode),
                ),
                html.Button("Build queue", id=BUILD, className="btn btn-primary btn-sm mt-2 editor-only"),
                html.Div(id=QUEUE_MESSAGE, className="mt-2"),
                html.Label("Saved queues", className="form-label small mt-2"),
                dcc.Dropdown(id=QUEUE, options=q_opts, value=q_value, placeholder="build a queue first"),
                html.Div(id=PROGRESS, className="mt-3"),
                html.Hr(),
                html.Div(
                    [
                        html.Button(
                            "Export judgments (CSV)",
                            id=EXPORT,
                            className="btn btn-outline-secondary btn-sm me-2",
                        ),
                        dcc.Download(id=EXPORT_DOWNLOAD),
                        dcc.Upload(
                            html.Button(
                                "Import CSV", className="btn btn-outline-secondary btn-sm editor-only"
                            ),
                            id=IMPORT,
                            accept=".csv,text/csv",
                            className="d-inline-block",
                        ),
                    ]
                ),
                html.Div(id=IO_MESSAGE, className="mt-2"),
            ]
        ),
        className="mb-3",
    )
    rule_modal = dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle("Turn the judgment into a rule")),
            dbc.ModalBody(
                [
                    dbc.RadioItems(id=RULE_CHOICE, options=[], value=None),
                    html.Label("Save into preset", className="form-label small mt-3"),
                    dcc.Input(id=RULE_PRESET, className="form-control form-control-sm", debounce=False),
                    html.Div(
                        "The preset is saved as a new version with the rule; lists built from it change.",
                        className="small text-muted mt-2",
                    ),
                ]
            ),
            dbc.ModalFooter(
                [
                    html.Button("Cancel", id=RULE_CANCEL, className="btn btn-outline-secondary btn-sm"),
                    html.Button("Add rule", id=RULE_CONFIRM, className="btn btn-primary btn-sm editor-only"),
                ]
            ),
        ],
        id=RULE_MODAL,
        is_open=False,
    )
    return html.Div(
        [
            header,
            pickers,
            dbc.Row(
                [
                    dbc.Col(queue_card, lg=3),
                    dbc.Col(
                        [
                            *keys_help(),
                            html.Div(id=STATUS),
                            html.Div(id=RULE_MESSAGE),
                            dcc.Loading(html.Div(id=PAIRS, className="vet-pairs"), delay_show=400),
                            html.Div(
                                [precision_panel(), checks_panel()], id="vetting-panels", className="mt-4"
                            ),
                        ],
                        lg=9,
                    ),
                ]
            ),
            rule_modal,
            dcc.Store(id=JUDGED_REV, data=0),
            dcc.Store(id=QUEUE_DATA),
            dcc.Store(id=KEY),
            dcc.Store(id=CURSOR, data=0),
            dcc.Store(id=GROUP, data=0),
            dcc.Store(id=OUTBOX, data=[]),
            dcc.Store(id=ACKED),
            dcc.Store(id=FOCUS_SINK),
            dcc.Store(id=RULE_PROPOSALS),
        ],
        id="vetting-page",
    )


# -- callbacks --------------------------------------------------------------------------------
@callback(
    Output(RUN, "options"),
    Output(RUN, "value"),
    Input(DATASET, "value"),
    State(RUN, "value"),
    prevent_initial_call=True,
)
def update_runs(dataset: str | None, current: str | None) -> tuple[Any, Any]:
    """The dataset's runs (keeping the current one when it belongs to it)."""
    try:
        opts, default = run_choices(dataset)
    except (OSError, RecsysError):
        return [], None
    return opts, current if current in {o["value"] for o in opts} else default


@callback(
    Output(MODE, "options"),
    Output(MODE, "value"),
    Input(DATASET, "value"),
    State(MODE, "value"),
    prevent_initial_call=True,
)
def update_modes(dataset: str | None, current: str | None) -> tuple[Any, Any]:
    """The queue modes of the dataset picked (what it lacks disabled, and why), keeping the
    mode chosen while the dataset offers it: they stayed those of the page's first dataset
    ("N per leaf category" offered on a dataset without categories)."""
    if not dataset:
        return no_update, no_update
    options, default = queue_modes(MODES, dataset, data_dir())
    offered = {o["value"] for o in options if not o["disabled"]}
    return options, current if current in offered else default


@callback(
    Output(QUEUE, "options"),
    Output(QUEUE, "value"),
    Input(RUN, "value"),
    Input(PRESET, "value"),
    prevent_initial_call=True,
)
def update_queues(run: str | None, preset: str | None) -> tuple[Any, Any]:
    """The saved queues of the run + preset, the newest selected."""
    return queue_options(run, preset)


@callback(
    Output(QUEUE, "options", allow_duplicate=True),
    Output(QUEUE, "value", allow_duplicate=True),
    Output(QUEUE_MESSAGE, "children"),
    Input(BUILD, "n_clicks"),
    State(RUN, "value"),
    State(PRESET, "value"),
    State(K, "value"),
    State(MODE, "value"),
    State(N_SEEDS, "value"),
    State(PER_CATEGORY, "value"),
    State(PASTED, "value"),
    prevent_initial_call=True,
)
def build_queue(
    _n: int | None,
    run: str | None,
    preset: str | None,
    k: Any,
    mode: str,
    n: Any,
    per: Any,
    pasted: str | None,
) -> tuple[Any, Any, Any]:
    """Sample seeds, freeze their top-k lists under the preset, and save the queue."""
    from recsys.vetting.queue import queue_pairs, sample_seeds

    if not run:
        return no_update, no_update, error_alert("Pick a run first.", "No queue built")
    try:
        k = int(k) if k in K_CHOICES else 10
        n = int(n) if isinstance(n, (int, float)) and n >= 1 else 20
        per = int(per) if isinstance(per, (int, float)) and per >= 1 else 2
        searcher = run_searcher(run)
        dataset = data_registry().get(run)["dataset"]["name"]
        presets = PresetStore(data_dir())
        config = presets.load(preset) if preset else FilterConfig()
        version = presets.history(preset)[-1]["version"] if preset else None
        popularity = None
        if mode in ("traffic", "category"):
            from recsys.data.schema import interaction_counts, load_dataset

            popularity = interaction_counts(
                load_dataset(dataset, data_dir()).interactions, searcher.view.item_ids
            )
        seeds, problems = sample_seeds(
            searcher.view, mode, n=n, per_category=per, popularity=popularity, pasted=pasted
        )
        if not seeds:
            return (
                no_update,
                no_update,
                error_alert("; ".join(problems) or "no seed to queue", "No queue built"),
            )
        pairs = queue_pairs(searcher, seeds, config, k)
        spec = {
            "mode": mode,
            "n": n,
            "per_category": per,
            "k": k,
            "preset_version": version,
            "seeds": len(seeds),
        }
        qid = judgment_store().save_queue(
            dataset=dataset, run=run, preset=preset, spec=spec, pairs=pairs, user=current_user()
        )
    except (RecsysError, ValueError, OSError) as exc:
        return no_update, no_update, error_alert(exc, "No queue built")
    opts, _ = queue_options(run, preset)
    note = f"Queued {len(pairs)} pairs of {len(seeds)} seeds."
    if problems:
        note += " " + "; ".join(problems)
    return opts, qid, info_alert(note, color="warning" if problems else "success")


@callback(
    Output(QUEUE_DATA, "data"),
    Output(CURSOR, "data"),
    Output(GROUP, "data"),
    Input(QUEUE, "value"),
)
def load_queue(queue_id: str | None) -> tuple[Any, Any, Any]:
    """The queue's pairs for the browser; the cursor on the first pair not judged yet."""
    queue = judgment_store().queue(queue_id) if queue_id else None
    if queue is None:
        return None, 0, 0
    data = queue_browser_data(queue)
    pairs = queue_pairs_of(queue_id)
    judged = judgment_store().judged(
        dataset=queue["dataset"], run=queue["run"], preset=queue["preset"], user=current_user()
    )
    first = first_unjudged(pairs, judged)
    return data, first, pairs[first]["g"] if pairs else 0


@callback(Output(PROGRESS, "children"), Input(QUEUE_DATA, "data"), Input(JUDGED_REV, "data"))
def show_progress(queue: dict[str, Any] | None, _rev: Any) -> Any:
    """Pairs judged (by anyone) per seed category of the queue."""
    if not queue:
        return None
    judged = judgment_store().judged(dataset=queue["dataset"], run=queue["run"], preset=queue["preset"])
    return progress_view(queue_pairs_of(queue["id"]), judged)


@callback(Output(PAIRS, "children"), Input(QUEUE_DATA, "data"), Input(GROUP, "data"))
def show_seed(queue: dict[str, Any] | None, group: Any) -> Any:
    """The current seed's pairs as cards (this user's verdicts marked)."""
    if not queue:
        return empty_state("No queue yet.", "Build one on the left: pick how to sample the seeds.")
    pairs = queue_pairs_of(queue["id"])
    if not pairs:
        return empty_state("This queue has no pairs (the preset left the seeds' lists empty).")
    group = int(group) if isinstance(group, int) else 0
    who = {
        "dataset": queue["dataset"],
        "run": queue["run"],
        "preset": queue["preset"],
        "user": current_user(),
    }
    store = judgment_store()
    judged, notes = store.judged(**who), store.notes(**who)
    try:
        return seed_pairs_view({**queue, "pairs": pairs}, group, judged, notes)
    except RecsysError as exc:
        return error_alert(exc, f"Could not load run {queue['run']}")


# each queue-form input shown only in the modes that read it (MODE_INPUTS), in the browser
_MODE_STYLES_JS = (
    "function(mode) { const uses = USES;"
    " return Object.values(uses).map(m => m.includes(mode) ? {} : {display: 'none'}); }"
).replace("USES", json.dumps(MODE_INPUTS))
clientside_callback(
    _MODE_STYLES_JS,
    [Output(_box(ident), "style") for ident in MODE_INPUTS],
    Input(MODE, "value"),
    prevent_initial_call=True,
)
clientside_callback(
    ClientsideFunction("vetting", "on_key"),
    Output(CURSOR, "data", allow_duplicate=True),
    Output(GROUP, "data", allow_duplicate=True),
    Output(OUTBOX, "data"),
    Input(KEY, "data"),
    State(QUEUE_DATA, "data"),
    State(CURSOR, "data"),
    State(GROUP, "data"),
    prevent_initial_call=True,
)
clientside_callback(
    ClientsideFunction("vetting", "drop_acked"),
    Output(OUTBOX, "data", allow_duplicate=True),
    Input(ACKED, "data"),
    prevent_initial_call=True,
)
clientside_callback(
    ClientsideFunction("vetting", "refocus"),
    Output(FOCUS_SINK, "data"),
    Input(PAIRS, "children"),
    State(CURSOR, "data"),
)


@callback(
    Output(ACKED, "data"),
    Output(JUDGED_REV, "data"),
    Output(STATUS, "children"),
    Input(OUTBOX, "data"),
    State(JUDGED_REV, "data"),
    prevent_initial_call=True,
)
def store_judgments(outbox: list[dict[str, Any]] | None, rev: Any) -> tuple[Any, Any, Any]:
    """Store the pending judgments as the signed-in user and acknowledge them."""
    if not outbox:
        raise PreventUpdate
    acked, problems = store_outbox(outbox, current_user())
    status = error_alert("; ".join(problems), "Some judgments were not stored") if problems else no_update
    return acked, (rev if isinstance(rev, int) else 0) + 1, status


@callback(
    Output(RULE_MODAL, "is_open"),
    Output(RULE_CHOICE, "options"),
    Output(RULE_CHOICE, "value"),
    Output(RULE_PROPOSALS, "data"),
    Output(RULE_PRESET, "value"),
    Output(RULE_MESSAGE, "children"),
    Input({"type": PROPOSE, "index": ALL}, "n_clicks"),
    Input(RULE_CANCEL, "n_clicks"),
    State(QUEUE_DATA, "data"),
    State(PRESET, "value"),
    prevent_initial_call=True,
)
def open_proposal(clicks: list[Any], _cancel: Any, queue: dict[str, Any] | None, preset: str | None) -> tuple:
    """The rules the pair's stored judgment proposes, in a dialog (nothing is saved here)."""
    from recsys.vetting.proposals import proposals

    closed = (False, no_update, no_update, no_update, no_update, no_update)
    trigger = ctx.triggered_id
    if trigger == RULE_CANCEL or not isinstance(trigger, dict) or not queue:
        return closed
    if not ctx.triggered or not ctx.triggered[0].get("value"):  # the buttons were just drawn
        raise PreventUpdate
    index = trigger.get("index")
    pairs = queue_pairs_of(queue["id"])
    if not isinstance(index, int) or not 0 <= index < len(pairs):
        raise PreventUpdate
    pair = pairs[index]
    judged = judgment_store().judged(
        dataset=queue["dataset"], run=queue["run"], preset=queue["preset"], user=current_user()
    )
    verdict, reason = judged.get((pair["seed"], pair["item_id"]), (None, None))
    if verdict is None:
        return (
            False,
            no_update,
            no_update,
            no_update,
            no_update,
            info_alert("Judge the pair first (1 or 2).", color="warning"),
        )
    try:
        view = run_catalog_view(queue["run"])
        rows = card_rows(
            view, [p for p in (view.position(pair["seed"]), view.position(pair["item_id"])) if p >= 0]
        )
    except RecsysError:
        rows = []
    brands = {str(r["item_id"]): (str(r["brand"]) if r.get("brand") else None) for r in rows}
    # named as their cards name them: a catalogue without titles (dunnhumby) by its leaf
    # category, not the bare ids the merchandiser never saw on a card
    titles = {str(r["item_id"]): display_title(r) for r in rows}
    found = proposals({**pair, "verdict": verdict, "reason": reason}, brands, titles)
    options = [{"label": p["label"], "value": i} for i, p in enumerate(found)]
    return True, options, 0, found, preset or NEW_PRESET, None


@callback(
    Output(RULE_MODAL, "is_open", allow_duplicate=True),
    Output(RULE_MESSAGE, "children", allow_duplicate=True),
    Output(PRESET, "options"),
    Input(RULE_CONFIRM, "n_clicks"),
    State(RULE_CHOICE, "value"),
    State(RULE_PROPOSALS, "data"),
    State(RULE_PRESET, "value"),
    prevent_initial_call=True,
)
def confirm_rule(
    _n: Any, choice: Any, found: list[dict[str, Any]] | None, name: str | None
) -> tuple[Any, Any, Any]:
    """Save the chosen rule into the preset (a new version)."""
    from recsys.vetting.proposals import add_rule

    if not found or not isinstance(choice, int) or not 0 <= choice < len(found):
        return no_update, error_alert("Choose a rule first.", "No rule added"), no_update
    store = PresetStore(data_dir())
    name = (name or "").strip()
    try:
        before, after = add_rule(store, name, found[choice])
    except (FilterConfigError, RecsysError, OSError) as exc:
        return no_update, error_alert(exc, "No rule added"), no_update
    label = found[choice]["label"]
    if before == after:
        text = f"Preset '{name}' already has this rule (version {after}): {label}."
    elif before is None:
        text = f"Created preset '{name}' (version {after}) with: {label}."
    else:
        text = f"Preset '{name}' is now version {after} (was {before}): {label}."
    return False, info_alert(text), preset_options(store)


@callback(
    Output(EXPORT_DOWNLOAD, "data"),
    Output(IO_MESSAGE, "children"),
    Input(EXPORT, "n_clicks"),
    State(DATASET, "value"),
    prevent_initial_call=True,
)
def export_judgments(_n: Any, dataset: str | None) -> tuple[Any, Any]:
    """Every judgment of the dataset (all runs, presets and users) as CSV."""
    import csv
    import io

    text = judgment_store().export_csv(dataset=dataset)
    name = f"judgments-{dataset or 'all'}.csv"
    rows = max(0, sum(1 for _ in csv.reader(io.StringIO(text))) - 1)  # less the header
    note = info_alert(
        f"Exported {rows} judgment{'s' if rows != 1 else ''} of dataset {dataset or '(all)'} to {name} "
        "(every run, preset and user); your browser saves the file."
    )
    return {"content": text, "filename": name, "type": "text/csv"}, note


@callback(
    Output(IO_MESSAGE, "children", allow_duplicate=True),
    Output(JUDGED_REV, "data", allow_duplicate=True),
    Input(IMPORT, "contents"),
    State(IMPORT, "filename"),
    State(JUDGED_REV, "data"),
    prevent_initial_call=True,
)
def import_judgments(contents: str | None, filename: str | None, rev: Any) -> tuple[Any, Any]:
    """Store the judgments of an uploaded CSV (all or nothing; bad rows named by line)."""
    if not contents or "," not in contents:
        raise PreventUpdate
    try:
        raw = base64.b64decode(contents.partition(",")[2], validate=False)
    except ValueError:
        return error_alert(f"{filename}: not a readable upload", "Nothing imported"), no_update
    if len(raw) > MAX_CSV_BYTES:
        return error_alert(
            f"{filename}: {len(raw):,} bytes is over {MAX_CSV_BYTES:,}", "Nothing imported"
        ), no_update
    try:
        report = judgment_store().import_csv(raw, user=current_user())
    except JudgmentError as exc:
        return error_alert(f"{filename}: {exc}", "Nothing imported"), no_update
    text = f"{filename}: {report.stored} of {report.rows} judgments stored"
    if report.kept_newer:
        text += f" ({report.kept_newer} already stored, or older than the stored ones)"
    return info_alert(text + "."), (rev if isinstance(rev, int) else 0) + 1

"""The filter panel: one control for every :class:`recsys.filters.FilterConfig` rule.

Controls have pattern-matching ids ``{"type": FILTER_CONTROL, "panel": <panel>, "field":
<FilterConfig field>}`` and all expose their state as ``value``, so a page listens to a whole
panel with ``filter_inputs(panel)`` (a dict of ``Input``s, for Dash's dict-style callback
signatures) and turns the values into a validated config with
:func:`filter_config_from_controls`. :func:`controls_from_filter_config` goes the other way
(loading a preset into the panel).

Banned brand pairs are edited with two brand pickers and an "add" button; the pairs live in
a multi-select whose values are ``"<brand a> ⇄ <brand b>"`` strings (remove one by clicking
its cross). The button's callback is defined here with ``MATCH`` on the panel, so it works for
every panel on every page.

Merchandising rules (``do_not_associate``, ``pins``, ``boost``, ``bury``; added on the Vetting
page or in a preset file) are multi-selects of one value per rule (:func:`format_rule`):
the panel shows them, carries them into a saved preset, and removes one by its cross.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, State, callback, dcc, html, no_update
from dash.dependencies import DashDependency

from components.forms import hidden_label
from recsys.errors import FilterConfigError
from recsys.filters import FilterConfig
from recsys.merch import MERCH_FIELDS
from recsys.search.rules import BRANDS, NUMBER, SLIDER, SWITCH, config_fields, panel_switches, unavailable
from recsys.vetting.proposals import item_name

FILTER_CONTROL = "filter-control"
PAIR_A = "filter-pair-a"
PAIR_B = "filter-pair-b"
PAIR_ADD = "filter-pair-add"
PAIR_SEP = " ⇄ "

#: Every FilterConfig field the panel edits, and how: from the rule table
#: (:mod:`recsys.search.rules`), so a new rule's field needs no edit here.
_CONTROLS: dict[str, str] = config_fields(panel=True)
#: ...and the merchandising rules, shown as removable chips (added on the Vetting page)
FILTER_FIELDS: tuple[str, ...] = (*_CONTROLS, *(f for f in MERCH_FIELDS if f not in _CONTROLS))
_BOOL_FIELDS = {f for f, c in _CONTROLS.items() if c == SWITCH}
_FLOAT_FIELDS = {f for f, c in _CONTROLS.items() if c in (NUMBER, SLIDER)}
_LIST_FIELDS = {f for f, c in _CONTROLS.items() if c == BRANDS}


def control_id(panel: str, field: str) -> dict[str, str]:
    """The id of one control of a panel."""
    return {"type": FILTER_CONTROL, "panel": panel, "field": field}


def filter_inputs(panel: str, dep: type[DashDependency] = Input) -> dict[str, DashDependency]:
    """``{field: Input(control_id(panel, field), "value")}`` for every rule (or State/Output)."""
    return {f: dep(control_id(panel, f), "value") for f in FILTER_FIELDS}


# -- values <-> FilterConfig -------------------------------------------------------------


def _num(v: Any) -> float | None:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def parse_pairs(values: Sequence[str] | None) -> list[tuple[str, str]]:
    """``["A ⇄ B", ...]`` -> ``[("A", "B"), ...]`` (malformed entries are skipped)."""
    out = []
    for v in values or []:
        a, sep, b = str(v).partition(PAIR_SEP)
        if sep and a.strip() and b.strip():
            out.append((a.strip(), b.strip()))
    return out


def format_pair(a: str, b: str) -> str:
    """The multi-select value of a banned pair."""
    return f"{a}{PAIR_SEP}{b}"


_PIN = re.compile(r"^(?P<item>.+?) @(?P<pos>\d+) for (?P<cat>category )?(?P<target>.+)$")


def format_rule(field: str, rule: Any) -> str:
    """One merchandising rule as the value (and label) of its multi-select.

    ``A ⇄ B`` / ``A → B`` (a do-not-associate pair, both ways / one way), ``X @3 for S`` /
    ``X @3 for category PATH`` (a pin), and compact JSON for a boost or bury.
    """
    data = rule if isinstance(rule, Mapping) else rule.model_dump(mode="json")
    if field == "do_not_associate":
        return f"{data['seed']} {'→' if data.get('one_way') else '⇄'} {data['item_id']}"
    if field == "pins":
        target = f"category {data['category']}" if data.get("category") else data["seed"]
        return f"{data['item_id']} @{data['position']} for {target}"
    defaults = {"brands": [], "category": None, "price_min": None, "price_max": None, "column": None}
    defaults.update({"values": [], "multiplier": 1.0, "shift": 0.0})
    return json.dumps(
        {k: v for k, v in data.items() if defaults.get(k, object()) != v}, separators=(",", ":")
    )


def parse_rule(field: str, text: str) -> dict[str, Any]:
    """The inverse of :func:`format_rule` (raises FilterConfigError naming the field)."""
    text = str(text).strip()
    if field == "do_not_associate":
        for sep, one_way in ((" ⇄ ", False), (" → ", True)):
            seed, found, item = text.partition(sep)
            if found:
                return {"seed": seed, "item_id": item, "one_way": one_way}
    elif field == "pins":
        m = _PIN.match(text)
        if m:
            key = "category" if m["cat"] else "seed"
            return {key: m["target"], "item_id": m["item"], "position": int(m["pos"])}
    else:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
    raise FilterConfigError(f"{field}: cannot read the rule {text!r}")


#: The merchandising rules that name items (by id in their values)
ITEM_RULES: tuple[str, ...] = ("do_not_associate", "pins")


def rule_items(values: Mapping[str, Any]) -> list[str]:
    """The item ids the item rules among control ``values`` name (each once, in order)."""
    found: dict[str, None] = {}
    for field in ITEM_RULES:
        for text in values.get(field) or []:
            try:
                data = parse_rule(field, text)
            except FilterConfigError:
                continue
            for key in ("seed", "item_id"):
                if data.get(key):
                    found[str(data[key])] = None
    return list(found)


def rule_label(field: str, value: str, titles: Mapping[str, str | None] | None = None) -> str:
    """What the panel shows for a rule's value: its items named as the Vetting page names them
    (:func:`recsys.vetting.proposals.item_name`: ``“short title” (id)``) where ``titles`` has
    them; the value itself for the other rules, or without titles.

    "Never together" listed ``P001681 ⇄ P003443`` where Vetting had proposed the rule by the
    items' titles (s44's walk)."""
    if not titles or field not in ITEM_RULES:
        return str(value)
    try:
        data = parse_rule(field, value)
    except FilterConfigError:
        return str(value)

    def name(item: str) -> str:
        return item_name(item, titles.get(item))

    if field == "do_not_associate":
        return f"{name(data['seed'])} {'→' if data['one_way'] else '⇄'} {name(data['item_id'])}"
    target = f"category {data['category']}" if data.get("category") else name(data["seed"])
    return f"{name(data['item_id'])} @{data['position']} for {target}"


def rule_options(
    field: str, values: Sequence[str] | None, titles: Mapping[str, str | None] | None = None
) -> list[dict[str, str]]:
    """The options of a merchandising rule's multi-select: the values as they are (what
    :func:`parse_rule` reads back), each labelled by :func:`rule_label`."""
    return [{"label": rule_label(field, v, titles), "value": v} for v in values or []]


def filter_config_from_controls(values: Mapping[str, Any]) -> FilterConfig:
    """Build a validated FilterConfig from the panel's control values.

    Parameters
    ----------
    values : mapping of field -> control value
        As a dict-style callback receives ``filter_inputs(panel)``; missing fields keep the
        FilterConfig default. Switches give bools, number inputs give numbers or None (empty),
        ``min_similarity`` 0 and ``max_per_brand`` 0/empty mean "no rule".

    Raises
    ------
    recsys.errors.FilterConfigError
        When the combination is invalid (e.g. price_min above price_max); the message names
        the field.
    """
    data: dict[str, Any] = {}
    for field, v in values.items():
        if field not in FILTER_FIELDS:
            continue
        if field in _BOOL_FIELDS:
            data[field] = bool(v)
        elif field in _FLOAT_FIELDS:
            data[field] = _num(v)
        elif field == "category_level":
            if v is not None and v != "":
                data[field] = int(v)
        elif field == "max_per_brand":
            n = _num(v)
            data[field] = int(n) if n is not None and n >= 1 else None
        elif field in _LIST_FIELDS:
            data[field] = [str(b) for b in (v or [])]
        elif field == "banned_brand_pairs":
            data[field] = parse_pairs(v)
        elif field in MERCH_FIELDS:
            data[field] = [parse_rule(field, r) for r in v or []]
    if data.get("min_similarity") is not None and data["min_similarity"] <= 0:
        data["min_similarity"] = None
    return FilterConfig.from_dict(data, "filter panel")


def controls_from_filter_config(config: FilterConfig | None) -> dict[str, Any]:
    """The control values that show ``config`` (FilterConfig defaults when None)."""
    cfg = config if config is not None else FilterConfig()
    out: dict[str, Any] = {}
    for field in FILTER_FIELDS:
        v = getattr(cfg, field, None)
        if field in _BOOL_FIELDS:
            out[field] = bool(v)
        elif field == "banned_brand_pairs":
            out[field] = [format_pair(a, b) for a, b in (v or [])]
        elif field in MERCH_FIELDS:
            out[field] = [format_rule(field, r) for r in v or []]
        elif field in _LIST_FIELDS:
            out[field] = list(v or [])
        elif field == "min_similarity":
            out[field] = float(v) if v is not None else 0.0
        else:
            out[field] = v
    return out


#: The dropdown controls whose options must contain a loaded value (a Dash dropdown shows
#: nothing for a value that is not among its options, and sends it back dropped).
OPTION_FIELDS: tuple[str, ...] = (
    "category_level",
    "brands_allow",
    "brands_deny",
    "banned_brand_pairs",
    *MERCH_FIELDS,
)


def option_deps(panel: str, dep: type[DashDependency] = State) -> dict[str, DashDependency]:
    """``{field: dep(control_id(panel, field), "options")}`` for the dropdowns of OPTION_FIELDS.

    As outputs they duplicate other callbacks' (the pair "Add" button), hence allow_duplicate.
    """
    if dep is Output:
        return {f: Output(control_id(panel, f), "options", allow_duplicate=True) for f in OPTION_FIELDS}
    return {f: dep(control_id(panel, f), "options") for f in OPTION_FIELDS}


def options_holding(
    values: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    titles: Mapping[str, str | None] | None = None,
) -> dict[str, list[dict]]:
    """Options of the OPTION_FIELDS dropdowns that keep what they had and hold ``values``.

    ``values`` are control values as :func:`controls_from_filter_config` gives them (a loaded
    preset); a brand or category level the run's catalogue view does not offer is appended,
    and the banned pairs' and rules' options are exactly the pairs and rules (one is removed
    by its cross), a rule's items named by their ``titles`` (:func:`rule_label`).
    """
    current = current or {}
    out: dict[str, list[dict]] = {}
    for field in OPTION_FIELDS:
        wanted = values.get(field)
        if field in MERCH_FIELDS:
            out[field] = rule_options(field, wanted, titles)
            continue
        if field == "banned_brand_pairs":
            out[field] = [{"label": p, "value": p} for p in (wanted or [])]
            continue
        opts = [
            dict(o) if isinstance(o, Mapping) else {"label": str(o), "value": o}
            for o in current.get(field) or []
        ]
        have = {o.get("value") for o in opts}
        more = [wanted] if field == "category_level" else list(wanted or [])
        for v in more:
            if v is None or v in have:
                continue
            label = f"level {int(v) + 1}" if field == "category_level" else str(v)
            opts.append({"label": label, "value": v})
            have.add(v)
        out[field] = opts
    return out


# -- layout ------------------------------------------------------------------------------


def similarity_slider_props(scale: Mapping[str, Any] | None) -> dict[str, Any]:
    """``max``, ``step`` and ``marks`` of the min-similarity slider for a run's score scale
    (:func:`recsys.search.similarity_scale`); 0-1 when there is none.

    Marks: "off" at 0, the 10th/50th/90th percentiles of the run's top-k scores (labelled
    with their value; the tooltip of the slider says what they are) and the upper end.
    """
    top = float((scale or {}).get("max") or 1.0)
    step = 0.005 if top <= 0.3 else 0.01
    marks: dict[float, Any] = {0: "off"}
    quantiles = (scale or {}).get("quantiles") or {}
    for q in sorted(quantiles, key=float):
        v = round(float(quantiles[q]), 3)
        if 0 < v < top and all(abs(v - m) >= 0.08 * top for m in marks):
            marks[v] = {"label": f"{v:.2f}", "style": {"fontSize": "0.7rem"}}
    if all(abs(top - m) >= 0.08 * top for m in marks):
        marks[top] = f"{top:.2f}"
    return {"min": 0, "max": top, "step": step, "marks": marks}


def _switch(
    panel: str, field: str, label: str, value: bool, hint: str | None = None, unavailable: str | None = None
) -> html.Div:
    """A switch; ``unavailable``: why its rule cannot apply to this catalogue (disabled, said below)."""
    switch = dbc.Switch(
        id=control_id(panel, field),
        label=label,
        value=bool(value),
        disabled=unavailable is not None,
        className="filter-switch",
    )
    if unavailable is None:
        return html.Div(switch, title=hint or "")
    return html.Div(
        [switch, html.Div(unavailable, className="filter-hint small text-muted")],
        title=unavailable,
        className="filter-unavailable",
    )


def _number(
    panel: str,
    field: str,
    value: Any,
    placeholder: str,
    step: Any = "any",
    mn: float = 0,
    disabled: bool = False,
) -> dbc.Input:
    return dbc.Input(
        disabled=disabled,
        id=control_id(panel, field),
        type="number",
        value=value,
        placeholder=placeholder,
        min=mn,
        step=step,
        debounce=True,
        size="sm",
        className="filter-number",
    )


def _max_per_brand(panel: str, value: Any, no_brands: bool) -> html.Div:
    """ "Max per brand": the cap counts the items of each brand down the ranked list; items
    without a brand are never capped (``recsys.search.ranked``), so on a catalogue without any
    brand the rule does nothing: disabled there, with the reason under it."""
    number = _number(panel, "max_per_brand", value, "no limit", 1, 1)
    number.disabled = no_brands
    row = html.Div(
        [html.Span("Max per brand", className="filter-inline-label"), number],
        className="filter-inline",
        title=None
        if no_brands
        else "at most this many items of one brand; items without a brand are not capped",
    )
    if not no_brands:
        return row
    reason = "unavailable: the catalogue has no brands"
    return html.Div(
        [row, html.Div(reason, className="filter-hint small text-muted max-per-brand-unavailable")],
        title=reason,
        className="filter-unavailable",
    )


#: Why "Same category" / "Same gender" is disabled on a catalogue without any (``lacks``).
_LACKS = {
    "category": "unavailable: the catalogue has no categories",
    "gender": "unavailable: the catalogue has no genders",
    "price": "unavailable: the catalogue has no prices",
}


def _group(title: str, children: list[Any]) -> html.Div:
    return html.Div([html.Div(title, className="filter-group-title"), *children], className="filter-group")


def filter_panel(
    panel: str,
    config: FilterConfig | None = None,
    brands: Sequence[str] = (),
    n_levels: int = 3,
    compact: bool = False,
    similarity: Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
    lacks: Sequence[str] = (),
    titles: Mapping[str, str | None] | None = None,
) -> html.Div:
    """A control for every FilterConfig rule, preset to ``config``.

    Parameters
    ----------
    panel : str
        Page-unique name put into every control id (``"explore"``, ``"compare"``).
    config : FilterConfig, optional
        Initial values (defaults when None).
    brands : sequence of str
        Brand options of the allow/deny lists and pair pickers (most frequent first).
    n_levels : int
        Depth of the catalogue's category paths (options of "category level").
    compact : bool
        Two-column layout of the switches and no hints (for Compare's side panel).
    similarity : mapping, optional
        The run's score scale (:func:`recsys.search.similarity_scale`): the min-similarity
        slider spans the run's scores instead of 0-1.
    columns : sequence of str, optional
        The catalogue's columns (``CatalogView.columns``): a rule whose optional column is
        missing is disabled, with the reason under it (:func:`recsys.search.rules.unavailable`).
    lacks : sequence of str
        The seed attributes no item of the catalogue has (``"category"``, ``"gender"``:
        :func:`components.pickers.lacking_attributes`): "Same category" or "Same gender" would
        do nothing there (every seed lacks it), so it is disabled, with the reason under it.
    titles : mapping, optional
        Item id -> the name a card gives it (:func:`components.item_card.item_titles` of
        :func:`rule_items`): the "Never together" and pin rules name their items by it.
    """
    v = controls_from_filter_config(config)
    missing = unavailable(columns) if columns is not None else {}
    brand_opts = [{"label": b, "value": b} for b in brands]
    # brands already in the config must stay selectable even if not in the top list
    extra = {b for b in (v["brands_allow"] + v["brands_deny"]) if b not in set(brands)}
    brand_opts += [{"label": b, "value": b} for b in sorted(extra)]
    level_opts = [
        {
            "label": "top level" if i == 0 else f"level {i + 1}" + (" (leaf)" if i == n_levels - 1 else ""),
            "value": i,
        }
        for i in range(max(n_levels, 1))
    ]
    if v["category_level"] is not None and v["category_level"] >= len(level_opts):
        level_opts.append({"label": f"level {v['category_level'] + 1}", "value": v["category_level"]})

    # a catalogue without any brand (Online Retail): the brand rules cannot apply; said, and
    # their controls disabled (they stay in the page: the callbacks read them)
    no_brands = columns is not None and not brand_opts
    lacking = {a: _LACKS[a] for a in lacks if a in _LACKS}
    # a catalogue without any price (Instacart): a price band would leave no item (items without
    # a price are excluded while it applies); its inputs are disabled, with the reason under them
    no_prices = "price" in lacking
    price_note = (
        [html.Div(lacking["price"], className="filter-hint small text-muted prices-unavailable")]
        if no_prices
        else []
    )
    relation = _group(
        "Relative to the seed",
        [
            _switch(
                panel,
                "same_category",
                "Same category",
                v["same_category"],
                "keep items of the seed's category",
                lacking.get("category"),
            ),
            html.Div(
                [
                    html.Span("at", className="filter-inline-label"),
                    dcc.Dropdown(
                        id=control_id(panel, "category_level"),
                        options=level_opts,
                        value=v["category_level"],
                        clearable=False,
                        searchable=False,
                        className="filter-level",
                        disabled="category" in lacking,
                    ),
                ],
                className="filter-inline",
            ),
            _switch(
                panel,
                "same_gender",
                "Same gender",
                v["same_gender"],
                "keep items of the seed's gender",
                lacking.get("gender"),
            ),
            html.Div(
                [
                    html.Span("Price × seed", className="filter-inline-label"),
                    hidden_label("price × seed, at least", control_id(panel, "price_ratio_min")),
                    _number(panel, "price_ratio_min", v["price_ratio_min"], "min ×", 0.1, disabled=no_prices),
                    html.Span("to", className="filter-inline-label"),
                    hidden_label("price × seed, at most", control_id(panel, "price_ratio_max")),
                    _number(panel, "price_ratio_max", v["price_ratio_max"], "max ×", 0.1, disabled=no_prices),
                ],
                className="filter-inline",
                title="price band relative to the seed's price, e.g. 0.5 to 2",
            ),
            *price_note,
        ],
    )
    exclusions = _group(
        "Exclusions",
        [
            _switch(
                panel, r.fields[0][0], r.control_label, v[r.fields[0][0]], r.hint or None, missing.get(r.name)
            )
            for r in panel_switches("exclusions")
        ],
    )
    price = _group(
        "Price and quality",
        [
            html.Div(
                [
                    html.Span("Price", className="filter-inline-label"),
                    hidden_label("price, at least", control_id(panel, "price_min")),
                    _number(panel, "price_min", v["price_min"], "min", disabled=no_prices),
                    html.Span("to", className="filter-inline-label"),
                    hidden_label("price, at most", control_id(panel, "price_max")),
                    _number(panel, "price_max", v["price_max"], "max", disabled=no_prices),
                ],
                className="filter-inline",
            ),
            *price_note,
            html.Div(
                "Min. similarity",
                className="filter-label",
                title="marks: 10th, 50th and 90th percentile of this run's top-10 neighbour scores",
            ),
            dcc.Slider(
                id=control_id(panel, "min_similarity"),
                value=v["min_similarity"],
                tooltip={"placement": "bottom", "always_visible": False},
                **similarity_slider_props(similarity),
                updatemode="mouseup",
                allow_direct_input=False,
                className="filter-slider",
            ),
            _max_per_brand(panel, v["max_per_brand"], no_brands),
        ],
    )
    brand_group = _group(
        "Brands",
        [
            *(
                [
                    html.Div(
                        "unavailable: the catalogue has no brands",
                        className="filter-hint small text-muted brands-unavailable",
                    )
                ]
                if no_brands
                else []
            ),
            dcc.Dropdown(
                id=control_id(panel, "brands_allow"),
                options=brand_opts,
                value=v["brands_allow"],
                multi=True,
                placeholder="Only these brands…",
                className="filter-dropdown",
                disabled=no_brands,
            ),
            dcc.Dropdown(
                id=control_id(panel, "brands_deny"),
                options=brand_opts,
                value=v["brands_deny"],
                multi=True,
                placeholder="Never these brands…",
                className="filter-dropdown",
                disabled=no_brands,
            ),
            html.Div("Banned brand pairs (seed brand ⇄ result brand)", className="filter-label"),
            html.Div(
                [
                    dcc.Dropdown(
                        id={"type": PAIR_A, "panel": panel},
                        options=brand_opts,
                        placeholder="brand",
                        className="pair-pick",
                        disabled=no_brands,
                    ),
                    dcc.Dropdown(
                        id={"type": PAIR_B, "panel": panel},
                        options=brand_opts,
                        placeholder="brand",
                        className="pair-pick",
                        disabled=no_brands,
                    ),
                    dbc.Button(
                        "Add",
                        id={"type": PAIR_ADD, "panel": panel},
                        size="sm",
                        color="secondary",
                        outline=True,
                        n_clicks=0,
                        disabled=no_brands,
                    ),
                ],
                className="filter-inline pair-row",
            ),
            dcc.Dropdown(
                id=control_id(panel, "banned_brand_pairs"),
                options=[{"label": p, "value": p} for p in v["banned_brand_pairs"]],
                value=v["banned_brand_pairs"],
                multi=True,
                searchable=False,
                placeholder="no banned pairs",
                className="filter-dropdown",
            ),
        ],
    )
    labels = {"do_not_associate": "Never together", "pins": "Pins", "boost": "Boost", "bury": "Bury"}
    merch = _group(
        "Merchandising rules",
        [
            html.Div(
                [
                    html.Label(labels[field], className="filter-label small"),
                    dcc.Dropdown(
                        id=control_id(panel, field),
                        options=rule_options(field, v[field], titles),
                        value=v[field],
                        multi=True,
                        searchable=False,
                        placeholder="none (add from the Vetting page or a preset)",
                        className="filter-dropdown rule-dropdown",  # each rule on its line, wrapped
                    ),
                ]
            )
            for field in MERCH_FIELDS
        ],
    )
    groups = [relation, exclusions, price, brand_group, merch]
    return html.Div(groups, className="filter-panel filter-panel-compact" if compact else "filter-panel")


@callback(
    Output(control_id(MATCH, "banned_brand_pairs"), "options"),
    Output(control_id(MATCH, "banned_brand_pairs"), "value"),
    Input({"type": PAIR_ADD, "panel": MATCH}, "n_clicks"),
    State({"type": PAIR_A, "panel": MATCH}, "value"),
    State({"type": PAIR_B, "panel": MATCH}, "value"),
    State(control_id(MATCH, "banned_brand_pairs"), "value"),
    prevent_initial_call=True,
)
def add_banned_pair(_n: int, a: str | None, b: str | None, current: list[str] | None) -> tuple[Any, Any]:
    """Append the picked brand pair to the banned pairs (ignores blanks, self-pairs, repeats)."""
    current = list(current or [])
    if not a or not b or a == b:
        return no_update, no_update
    pair, mirrored = format_pair(a, b), format_pair(b, a)
    if pair not in current and mirrored not in current:
        current.append(pair)
    return [{"label": p, "value": p} for p in current], current

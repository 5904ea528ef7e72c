"""A preset with a non-default value for EVERY FilterConfig field survives every load path
(upload, save + reload by URL, the dropdown, Compare's "Filters from preset") in Chromium.

The preset is generated from ``FilterConfig.model_fields`` (types and bounds), with values
drawn from the demo catalogue, so a field added to FilterConfig is covered without editing
this test (a field of a type the generator does not know fails it, asking for a rule).
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

import requests
from pydantic import BaseModel

from recsys.data.schema import load_dataset
from recsys.filters import FilterConfig
from recsys.registry import Registry
from tests.integration._browser import run_ids, wait_until

K = 20
PANEL = "explore"


def _bounds(field: Any) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in field.metadata:
        lo = getattr(m, "ge", None) if getattr(m, "ge", None) is not None else lo
        lo = getattr(m, "gt", None) if getattr(m, "gt", None) is not None else lo
        hi = getattr(m, "le", None) if getattr(m, "le", None) is not None else hi
    return lo, hi


def _base(annotation: Any) -> Any:
    """``float | None`` -> float; other annotations unchanged."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _example_rule(name: str, brands: list[str], items: list[str]) -> dict[str, Any]:
    """One valid merchandising rule (recsys.merch) for a list-of-rules field."""
    examples = {
        "do_not_associate": {"seed": items[0], "item_id": items[1]},
        "pins": {"seed": items[2], "item_id": items[3], "position": 2},
        "boost": {"brands": [brands[-1]], "multiplier": 1.25},
        "bury": {"brands": [brands[-2]], "price_min": 1.0, "shift": -0.05},
    }
    if name not in examples:
        raise AssertionError(f"no rule for FilterConfig.{name} (a list of rule models): add one here")
    return examples[name]


def nondefault_preset(brands: list[str], prices: list[float], items: list[str]) -> dict[str, Any]:
    """A valid FilterConfig dict whose every field differs from its default.

    Brands are the catalogue's (most frequent first); ``*_min`` / ``*_max`` pairs get a low and
    a high value; absolute price bounds come from the catalogue's price quantiles; rule lists
    (pins, pair bans, boosts, buries) get one rule over catalogue items and brands.
    """
    out: dict[str, Any] = {}
    fields = FilterConfig.model_fields
    for name, field in fields.items():
        default = field.get_default(call_default_factory=True)
        kind = _base(field.annotation)
        lo, hi = _bounds(field)
        stem, _, end = name.rpartition("_")
        paired = end in ("min", "max") and f"{stem}_{'max' if end == 'min' else 'min'}" in fields
        if kind is bool:
            value: Any = not default
        elif kind is int:
            value = int((default if default is not None else (lo or 0)) + 1)
        elif kind is float and paired:
            scale = sorted(prices)[len(prices) // 2] if "price" in name and "ratio" not in name else 1.0
            value = round(scale * (0.5 if end == "min" else 2.0), 2)
        elif kind is float:
            lo = -1.0 if lo is None else lo
            hi = lo + 2.0 if hi is None else hi
            value = round(lo + 0.55 * (hi - lo), 2)
        elif typing.get_origin(kind) is list and typing.get_args(kind) == (str,):
            taken = {b for v in out.values() if isinstance(v, list) for b in v if isinstance(b, str)}
            free = [b for b in brands if b not in taken]
            value = free[: 12 if "allow" in name else 1]
        elif typing.get_origin(kind) is list and typing.get_origin(typing.get_args(kind)[0]) is tuple:
            value = [(brands[0], brands[1])]
        elif typing.get_origin(kind) is list and issubclass(typing.get_args(kind)[0], BaseModel):
            value = [_example_rule(name, brands, items)]
        else:
            raise AssertionError(f"no rule for FilterConfig.{name} ({field.annotation}): add one here")
        assert value != default, name
        out[name] = value
    FilterConfig.from_dict(out)  # valid as a whole (min <= max, allow and deny disjoint)
    return out


def _cid(field: str, panel: str = PANEL) -> str:
    return json.dumps(
        {"field": field, "panel": panel, "type": "filter-control"}, sort_keys=True, separators=(",", ":")
    )


# The value Dash holds for a control and what the page shows for it.
_CONTROL_JS = """
const id = arguments[0], idobj = JSON.parse(id), keys = Object.keys(idobj).sort();
const st = window.store.getState();
let value = null;
for (const e of (st.paths.objs[keys.join(',')] || [])) {
  if (keys.every((k, i) => e.values[i] === idobj[k])) {
    let node = st.layout;
    for (const p of e.path) node = node[p];
    value = node.props.value === undefined ? null : node.props.value;
  }
}
const el = document.getElementById(id);
let shown = null;
if (el) {
  if (el.type === 'checkbox') shown = el.checked;
  else if (el.tagName === 'INPUT') shown = el.value;
  else shown = el.innerText;
}
const handle = el ? el.querySelector('[role=slider]') : null;
return {value: value, shown: shown, slider: handle ? handle.getAttribute('aria-valuenow') : null};
"""


def _check_controls(dash_duo, expected: dict[str, Any], panel: str = PANEL) -> None:
    """Every control of the panel holds and shows the preset's value."""
    from components.filter_panel import controls_from_filter_config

    want = controls_from_filter_config(FilterConfig.from_dict(expected))

    last: dict[str, Any] = {}

    def ok(field: str) -> bool:
        got = last[field] = dash_duo.driver.execute_script(_CONTROL_JS, _cid(field, panel))
        value, shown = got["value"], got["shown"]
        w = want[field]
        if isinstance(w, bool):
            return value is w and shown is w
        if field in ("do_not_associate", "pins"):  # items named by title with their ids, as on Vetting
            named = [r[k] for r in expected[field] for k in ("seed", "item_id") if r.get(k)]
            return sorted(value or []) == sorted(w) and all(f"({i})" in (shown or "") for i in named)
        if isinstance(w, list):
            return sorted(value or []) == sorted(w) and all(str(x) in (shown or "") for x in w)
        if field == "category_level":
            return value == w and f"level {w + 1}" in (shown or "")
        if got["slider"] is not None:
            return value is not None and abs(float(value) - w) < 1e-9 and abs(float(got["slider"]) - w) < 1e-9
        return (
            value is not None and abs(float(value) - float(w)) < 1e-9 and abs(float(shown) - float(w)) < 1e-9
        )

    for field in FilterConfig.model_fields:
        try:
            wait_until(lambda f=field: ok(f), timeout=20, what=f"control {field} showing {want[field]!r}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; it holds/shows {last.get(field)}") from None


def _cards(dash_duo) -> list[str]:
    return [e.get_attribute("data-item") for e in dash_duo.find_elements("#explore-results .item-card")]


def _api_list(dash_duo, seed: str, run: str, preset: str) -> list[str]:
    resp = requests.get(
        f"{dash_duo.server_url}/api/v1/similar/{seed}",
        params={"run": run, "preset": preset, "k": K},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    return [i["item_id"] for i in resp.json()["items"]]


def _best_seed(root: Path, run: str, config: dict[str, Any]) -> str:
    """The seed with the longest list under the preset (so the comparison has items)."""
    from recsys.search import get_searcher

    searcher = get_searcher(Registry(root), run)
    cfg = FilterConfig.from_dict(config)
    sizes = {str(s): len(searcher.search(str(s), cfg, K).item_ids) for s in searcher.view.item_ids[:400]}
    return max(sizes, key=lambda s: (sizes[s], s))


def _pick(dash_duo, dropdown_css: str, label: str) -> None:
    """Open a dropdown with a click and click the option with this label."""
    dash_duo.wait_for_element(dropdown_css, timeout=40).click()
    wait_until(
        lambda: any(o.text.strip() == label for o in dash_duo.find_elements(".dash-dropdown-option")),
        timeout=15,
        what=f"option {label}",
    )
    next(o for o in dash_duo.find_elements(".dash-dropdown-option") if o.text.strip() == label).click()


def _list_and_url(dash_duo, seed: str, run: str, name: str) -> None:
    api = _api_list(dash_duo, seed, run, name)
    assert api, "the preset leaves no list for this seed: the comparison would prove nothing"
    wait_until(lambda: _cards(dash_duo) == api, timeout=20, what="the page's list equal to the API's")
    wait_until(lambda: f"preset={name}" in dash_duo.driver.current_url, timeout=10, what="preset= in the URL")


def test_preset_with_every_field_round_trips(dash_duo, dash_app_copy, demo_data_copy, tmp_path):
    from components import ids

    root = demo_data_copy
    run = run_ids(root)["prod2vec"]
    cat = load_dataset("demo", root).catalog
    brands = cat["brand"].dropna().astype(str).value_counts().index.tolist()
    items = cat["item_id"].astype(str).tolist()
    preset = nondefault_preset(
        brands, cat["price"].dropna().astype(float).tolist(), items[:: len(items) // 4][:4]
    )
    seed = _best_seed(root, run, preset)
    upload = tmp_path / "every-field.json"
    upload.write_text(FilterConfig.from_dict(preset).to_json(name="every-field"))

    dash_duo.driver.set_window_size(1400, 1200)
    dash_duo.start_server(dash_app_copy)
    base = f"{dash_duo.server_url}/explore?seed={seed}&run={run}"
    dash_duo.wait_for_page(base)
    wait_until(lambda: _cards(dash_duo), timeout=40, what="the first list")

    # 1. upload the file (the real file input of dcc.Upload)
    dash_duo.find_element(
        "#" + _css({"panel": PANEL, "type": "preset-upload"}) + " input[type=file]"
    ).send_keys(str(upload))
    dash_duo.wait_for_contains_text(
        "#" + _css({"panel": PANEL, "type": "preset-message"}), "Imported", timeout=20
    )
    _check_controls(dash_duo, preset)
    _list_and_url(dash_duo, seed, run, "every-field")

    # 2. save the panel under a new name: the stored preset is the generated one
    name_box = dash_duo.find_element("#" + _css({"panel": PANEL, "type": "preset-name"}))
    name_box.clear()
    name_box.send_keys("saved-every-field")
    dash_duo.find_element("#" + _css({"panel": PANEL, "type": "preset-save"})).click()
    dash_duo.wait_for_contains_text(
        "#" + _css({"panel": PANEL, "type": "preset-message"}), "Saved", timeout=20
    )
    from recsys.filters import PresetStore

    assert PresetStore(root).load("saved-every-field") == FilterConfig.from_dict(preset)
    _list_and_url(dash_duo, seed, run, "saved-every-field")

    # 3. reload by URL
    dash_duo.driver.get(f"{base}&preset=saved-every-field")
    _check_controls(dash_duo, preset)
    _list_and_url(dash_duo, seed, run, "saved-every-field")

    # 4. the dropdown, from a page with default filters
    dash_duo.driver.get(base)
    wait_until(lambda: _cards(dash_duo), timeout=40, what="the default list")
    _pick(dash_duo, "#" + _css({"panel": PANEL, "type": "preset-select"}), "saved-every-field")
    _check_controls(dash_duo, preset)
    _list_and_url(dash_duo, seed, run, "saved-every-field")

    # 5. Compare's "Filters from preset"
    other = run_ids(root)["popularity"]
    dash_duo.driver.get(f"{dash_duo.server_url}/compare?seed={seed}&runs={run},{other}")
    _pick(dash_duo, f"#{ids.COMPARE_PRESET}", "saved-every-field")
    _check_controls(dash_duo, preset, panel="compare")
    # the address bar follows Compare's runs, seed and preset
    from urllib.parse import parse_qs, urlparse

    wait_until(
        lambda: "preset=saved-every-field" in dash_duo.driver.current_url, timeout=10, what="Compare's URL"
    )
    query = parse_qs(urlparse(dash_duo.driver.current_url).query)
    assert query["runs"] == [f"{run},{other}"] and query["seed"] == [seed]
    assert dash_duo.get_logs() == []


def _css(component_id: dict) -> str:
    raw = json.dumps(component_id, sort_keys=True, separators=(",", ":"))
    return "".join("\\" + c if not c.isalnum() and c not in "-_" else c for c in raw)

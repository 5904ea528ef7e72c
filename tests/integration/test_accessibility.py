"""Accessibility: axe-core (bundled by ``axe-selenium-python``) on every page of the demo app.

One app start, every page opened in headless Chromium, its content waited for, axe run; no
critical or serious violation may remain, apart from third-party internals excluded below and
the known ones listed in ``KNOWN`` (not fixed yet; none may grow).
"""

from __future__ import annotations

import time

from tests.integration._browser import run_ids

#: Not ours, so not patched here: ag-grid's pinned/sticky row containers carry role="rowgroup"
#: without rows (``aria-required-children``), and Dash's dropdown options carry a role axe does
#: not allow on their element (``aria-allowed-role``). Excluded from the audit, not fixed.
EXCLUDE = [
    [".ag-full-width-container"],
    [".ag-floating-top"],
    [".ag-floating-bottom"],
    [".ag-sticky-top"],
    [".ag-sticky-bottom"],
    [".dash-dropdown-options"],
    [".dash-options-list"],
]


#: Violations known and not fixed yet (s45-a's list, bench notes in docs/MEASUREMENTS.md and the
#: s45 note), as (page, rule) -> the most elements that may carry it: dcc.Upload's own file input
#: (label, autocomplete) that the app cannot reach; Explore's preset name and price inputs, whose
#: screen-reader labels this axe build reads as hidden; Vetting's number box's autocomplete; the
#: Runs form's boolean switches (two labels). Anything else, or more of these, fails: the fixed
#: rules (lang, the Runs and Data labels, contrast) cannot come back unnoticed. Shrink this list.
KNOWN = {
    ("explore", "label"): 7,
    ("explore", "autocomplete-valid"): 1,
    ("vetting", "label"): 1,
    ("vetting", "autocomplete-valid"): 2,
    ("runs", "label"): 2,
    ("data", "label"): 1,
    ("data", "autocomplete-valid"): 1,
}


def test_no_critical_or_serious_axe_violation_on_any_page(dash_duo, dash_app, demo_data_dir):
    from axe_selenium_python import Axe

    run = run_ids(demo_data_dir)["prod2vec"]
    dash_duo.driver.set_window_size(1440, 1000)
    dash_duo.start_server(dash_app)
    pages = {
        "overview": "/",
        "explore": f"/explore?run={run}",
        "map": f"/map?run={run}",
        "compare": "/compare",
        "vetting": "/vetting",
        "runs": "/runs",
        "data": "/data",
    }
    found = {}
    for name, path in pages.items():
        dash_duo.driver.get(dash_duo.server_url + path)
        dash_duo.wait_for_element(".page-body", timeout=40)
        time.sleep(2.0)  # late callbacks (grids, figures, forms) fill the page
        axe = Axe(dash_duo.driver)
        axe.inject()
        result = axe.run(context={"exclude": EXCLUDE})
        bad = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"][:6]])
            for v in result["violations"]
            if v["impact"] in ("critical", "serious") and len(v["nodes"]) > KNOWN.get((name, v["id"]), 0)
        ]
        if bad:
            found[name] = bad
    assert not found, "\n".join(f"{page}: {v}" for page, vs in found.items() for v in vs)
    assert dash_duo.get_logs() == []

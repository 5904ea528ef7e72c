"""In-browser speed of the dashboard, measured in headless Chromium: prints ONE JSON line.

Figures (milliseconds)
----------------------
filter_change_ms {p50, p95, n}
    Explore at ``--items`` items: from the click on a filter switch (same gender, same
    category, exclude same title, exclude adult, in turn) to the last change of the page's
    content it caused (the results, their summary and removed counts, the session panel),
    once no request is in flight and nothing has changed for ``--quiet`` ms. Over
    ``--changes`` clicks (>= 50).
filter_change_answered_ms {p50, p95}
    The same clicks, until the results callback's answer arrived (its headers: the click's
    handling, the request, the server's search and formatting); ``filter_change_ms`` minus
    this is the browser applying the answer (Dash's renderer, React, layout).
seed_change_ms {p50, p95, n}
    From the click on a neighbour's title (which opens Explore with that item as the seed,
    a page load) until the new seed's list is shown and the page has settled.
map_first_paint_ms
    From navigation start to the Map's first scatter drawn (plotly's ``_fullData`` holds
    points; polled every 50 ms): above ``pages.map.FIRST_PAINT_POINTS`` a seeded sample that
    says "showing N of M, loading the rest"; the median of ``--repeat`` loads.
map_all_points_ms
    The same, until the scatter holds every point of the run.
map_first_paint_each_ms, map_all_points_each_ms
    The same figures for each load, in order: the first load is a first visit (plotly.js is
    not in the browser's cache yet); Chromium keeps a script's compiled code with its cache
    entry from the second load and reuses it from the third, so later loads are what a
    returning user sees (``components/plotlyjs.py``).
map_settled_ms
    From navigation start until the whole Map page has settled (every point, then the
    neighbourhood-purity chart, which is computed after the complete figure), same loads.
    Before the issue-14 follow-up (late 2026-12-04) the script reported this figure as
    ``map_first_paint_ms``.
page_first_paint_ms {PAGE: ms}
    From navigation start until the page's content is rendered and settled (no request in
    flight, no DOM change for ``--quiet`` ms), median of ``--repeat`` loads per page. For
    ``/map`` that is the page with every point and the purity chart, not its first scatter:
    ``map_page_marks_ms`` {first, all} gives those for each of its loads in this pass.
plotlyjs_eval_ms {trimmed, full, ratio, n}
    What a first visit pays to run plotly.js: the app's trimmed bundle
    (``components.plotly_bundle``) and plotly.py's full one, each loaded ``n`` times into a
    near-empty page of the app (its favicon) under a new URL (so V8 has no compiled code for it), alternating;
    the median ms from the end of its download to its ``onload`` (parse, compile, run).

"Settled" is decided by a MutationObserver on the page's content and a wrapper around
``fetch`` installed before any page script runs (Chrome DevTools ``Page.addScriptToEvaluateOnNewDocument``); the times
come from the page's own ``performance.now()``, so the polling from Python adds nothing.

Targets (issue 14, on an idle 2-core machine): filter change p50 <= 150 ms and p95 <= 300 ms,
map first paint <= 2 s, every page <= 1.5 s. ``load_avg_1m`` is the load when the run began;
figures taken under load are not a verdict on the targets.

The 100k-item data directory is the one ``bench/dashboard.py`` builds (synthetic catalogue,
clustered vectors, HNSW index, PCA projection) and is reused between runs.

Usage: ``python bench/browser.py [--items 100000] [--changes 60] [--seeds 20] [--repeat 3] [--bundle-loads 6]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PAGES = ("/", "/explore", "/map", "/compare", "/vetting", "/runs", "/data")
SWITCHES = ("same_gender", "same_category", "exclude_same_title", "exclude_adult")

#: Installed before every document's own scripts: the time of the last change of the page's
#: content (``#_pages_content``: not the navbar's job badge, which polls on its own clock, and
#: not Dash's loading-state attribute) and the number of fetches in flight.
PROBE = """
window.__bench = {last: 0, pending: 0, fetchEnd: 0, resultsAt: 0};
const __inPage = (node) => {
  const el = node.nodeType === 1 ? node : node.parentElement;
  return !!(el && el.closest && el.closest('#_pages_content'));
};
new MutationObserver((records) => {
  for (const m of records) {
    if (m.type === 'attributes' && m.attributeName === 'data-dash-is-loading') continue;
    if (__inPage(m.target)) { window.__bench.last = performance.now(); return; }
  }
}).observe(document, {childList: true, subtree: true, characterData: true, attributes: true});
const __fetch = window.fetch;
window.fetch = function (...args) {
  window.__bench.pending += 1;
  const body = args[1] && typeof args[1].body === 'string' ? args[1].body : '';
  const results = body.includes('explore-results.children');
  return __fetch.apply(this, args).then((r) => {
    if (results) window.__bench.resultsAt = performance.now();  // the answer's headers are in
    return r;
  }).finally(() => {
    window.__bench.pending -= 1;
    window.__bench.fetchEnd = performance.now();
  });
};
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(
    root: Path, tree: Path = ROOT, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """``tree``'s app.py on the data directory ``root`` (``extra_env`` added to its environment)."""
    port = _free_port()
    env = {**os.environ, "RECSYS_DATA_DIR": str(root), "RECSYS_NO_DEMO": "1", **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    end = time.time() + 180
    while time.time() < end:
        try:
            with urllib.request.urlopen(url + "/", timeout=5) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the app did not answer within 180 s")


@contextlib.contextmanager
def app_and_browser(
    root: Path, tree: Path = ROOT, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[Any, str]]:
    """The app on the data directory ``root`` and a headless Chromium: ``(driver, url)``; both
    are closed on the way out. ``tree``, ``extra_env``: as :func:`start_app`."""
    proc, url = start_app(root, tree, extra_env)
    driver = browser()
    try:
        yield driver, url
    finally:
        driver.quit()
        proc.terminate()
        proc.wait(timeout=30)


def browser() -> Any:
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tempfile.mkdtemp(prefix='recsys-bench-chrome-')}",
    ):
        opts.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=opts, service=service)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
    return driver


def settled(
    driver: Any,
    t0: float,
    quiet_ms: float,
    timeout_s: float = 60.0,
    ready: str = "true",
    watch: dict[str, str] | None = None,
    seen: dict[str, float] | None = None,
) -> float:
    """Wait until the page is quiet and ``ready`` (a JS expression) holds; ms from ``t0`` to the last change.

    ``watch`` (name -> JS expression) and ``seen``: each name gets the ms from ``t0`` to the
    first poll (every 50 ms) that saw its expression hold, e.g. the Map's first scatter and
    the scatter with every point, before the rest of the page settles."""
    watch = watch or {}
    names = list(watch)
    probes = "".join(f", !!({watch[n]})" for n in names)
    end = time.time() + timeout_s
    while time.time() < end:
        state = driver.execute_script(
            f"const b = window.__bench; if (!b) return null;"
            f"return [performance.now(), b.last, b.pending, b.fetchEnd, !!({ready}){probes}];"
        )
        if state:
            now, last, pending, _fetch_end, ok, *held = state
            for name, hit in zip(names, held, strict=True):
                if hit and seen is not None and name not in seen:
                    seen[name] = now - t0
            if ok and pending == 0 and now - last >= quiet_ms and now - t0 >= quiet_ms:
                return last - t0
        time.sleep(0.05)
    raise RuntimeError(f"the page did not settle within {timeout_s} s (ready: {ready})")


def _css_id(component_id: dict) -> str:
    raw = json.dumps(component_id, sort_keys=True, separators=(",", ":"))
    return "".join("\\" + c if not c.isalnum() and c not in "-_" else c for c in raw)


CARDS = "document.querySelectorAll('#explore-results .item-card').length > 0"


def filter_changes(
    driver: Any, url: str, run: str, seed: str, n: int, quiet: float, answered: list[float] | None = None
) -> list[float]:
    """ms from each click to the last change it caused; ``answered`` gets the ms from the click
    to the arrival of the results callback's answer (input handling, network and server), so
    that the rest is the browser applying it (Dash's renderer, React, layout)."""
    driver.get(f"{url}/explore?run={run}&seed={seed}")
    settled(driver, 0.0, quiet, ready=CARDS)
    times = []
    for i in range(n):
        field = SWITCHES[i % len(SWITCHES)]
        sel = "#" + _css_id({"type": "filter-control", "panel": "explore", "field": field})
        t0 = driver.execute_script(
            "const el = document.querySelector(arguments[0]);"
            "el.scrollIntoView({block: 'center', behavior: 'instant'}); const t = performance.now(); el.click(); return t;",
            sel,
        )
        times.append(settled(driver, t0, quiet, ready=CARDS))
        if answered is not None:
            at = driver.execute_script("return window.__bench.resultsAt;")
            answered.append(at - t0 if at > t0 else float("nan"))
    return times


def seed_changes(driver: Any, url: str, run: str, seed: str, n: int, quiet: float) -> list[float]:
    driver.get(f"{url}/explore?run={run}&seed={seed}")
    settled(driver, 0.0, quiet, ready=CARDS)
    times = []
    for i in range(n):
        target = driver.execute_script(
            "const a = document.querySelectorAll('#explore-results .item-card a.card-title');"
            "return a.length ? a[arguments[0] % a.length].closest('.item-card').dataset.item : null;",
            i,
        )
        if target is None:
            break
        t_click = time.time()
        driver.execute_script(
            "document.querySelector(`#explore-results .item-card[data-item='${arguments[0]}'] a.card-title`).click();",
            target,
        )
        # a page load: the new document's clock starts at its navigation, so add the gap
        # between the click and that navigation's start (both in wall-clock ms)
        ready = f"document.querySelector('#explore-seed-card') && document.querySelector('#explore-seed-card').textContent.includes({json.dumps(target)}) && {CARDS}"
        ms = settled(driver, 0.0, quiet, ready=ready)
        nav_start = driver.execute_script("return performance.timeOrigin;") / 1000.0
        times.append(ms + max(0.0, nav_start - t_click) * 1000.0)
    return times


def page_paint(
    driver: Any,
    url: str,
    path: str,
    repeat: int,
    quiet: float,
    ready: str = "true",
    watch: dict[str, str] | None = None,
    seen: dict[str, list[float]] | None = None,
) -> float:
    """Median ms to the settled page over ``repeat`` loads (``seen`` collects each load's
    first time of each ``watch`` expression, see :func:`settled`)."""
    times = []
    for _ in range(repeat):
        driver.get("about:blank")
        driver.get(url + path)
        marks: dict[str, float] = {}
        times.append(settled(driver, 0.0, quiet, ready=ready, watch=watch, seen=marks))
        for name in watch or {}:
            if seen is not None:
                seen.setdefault(name, []).append(marks.get(name, float("nan")))
    return statistics.median(times)


_EVAL_JS = """
const done = arguments[arguments.length - 1], url = new URL(arguments[0], location.href).href;
const s = document.createElement('script');
s.src = url;
s.onload = () => done(window.Plotly && window.Plotly.react ? performance.now() - performance.getEntriesByName(url)[0].responseEnd : null);
s.onerror = () => done(null);
document.head.appendChild(s);
"""


def plotlyjs_eval(driver: Any, url: str, n: int) -> dict[str, Any]:
    """Median ms from download end to ``onload`` of each plotly.js bundle on a first visit (see
    the module docstring); null where the app has no such bundle."""
    from components.plotlyjs import bundle_path, full_plotlyjs_path

    paths = {"trimmed": bundle_path(), "full": full_plotlyjs_path()}
    times: dict[str, list[float]] = {name: [] for name, path in paths.items() if path}
    driver.set_script_timeout(120)
    for i in range(n):
        for name in sorted(times, reverse=i % 2 == 1):  # alternate which goes first
            driver.get(url + "/_favicon.ico")  # a near-empty page of the app's origin
            ms = driver.execute_async_script(
                _EVAL_JS, f"{url}/_dash-component-suites/{paths[name]}?n={i}-{time.time()}"
            )
            if ms is not None:
                times[name].append(ms)
    med = {name: (round(statistics.median(v), 1) if v else None) for name, v in times.items()}
    trimmed, full = med.get("trimmed"), med.get("full")
    return {
        "trimmed": trimmed,
        "full": full,
        "ratio": round(trimmed / full, 3) if trimmed and full else None,
        "n": n,
    }


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="in-browser speed of the dashboard (one JSON line)")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=60, help="filter changes (>= 50 for the target)")
    parser.add_argument("--seeds", type=int, default=20, help="seed changes")
    parser.add_argument("--repeat", type=int, default=3, help="loads of each page")
    parser.add_argument("--quiet", type=float, default=400.0, help="ms without change that count as settled")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--only-map", action="store_true", help="measure only the Map (other figures come out null)"
    )
    parser.add_argument(
        "--bundle-loads", type=int, default=6, help="first-visit loads of each plotly.js bundle (0: skip)"
    )
    args = parser.parse_args(argv)

    load = os.getloadavg()[0]
    root = args.data_dir or Path(tempfile.gettempdir()) / f"recsys-bench-dashboard-{args.items}"
    root.mkdir(parents=True, exist_ok=True)
    from dashboard import build_data

    run = build_data(root, args.items)
    from recsys.registry import Registry

    seed = str(Registry(root).load_model(run).item_ids_[0])
    proc, url = start_app(root)
    driver = browser()
    try:
        driver.get(url + "/")  # warm the server (first request loads the page modules)
        settled(driver, 0.0, args.quiet)
        answered: list[float] = []
        filt = (
            []
            if args.only_map
            else filter_changes(driver, url, run, seed, args.changes, args.quiet, answered)
        )
        seeds = [] if args.only_map else seed_changes(driver, url, run, seed, args.seeds, args.quiet)
        n_points = len(Registry(root).load_model(run).item_ids_)
        drawn = (
            "(() => { const g = document.querySelector('#map-graph .js-plotly-plot');"
            " return g && g._fullData ? g._fullData.reduce((n, t) => n + (t.x ? t.x.length : 0), 0) : 0; })()"
        )
        map_ready = f"{drawn} >= {n_points}"
        watch = {"first": f"{drawn} > 0", "all": map_ready}
        map_seen: dict[str, list[float]] = {}
        map_ms = page_paint(
            driver,
            url,
            f"/map?run={run}",
            args.repeat,
            args.quiet,
            ready=map_ready,
            watch=watch,
            seen=map_seen,
        )
        # the /map page of this pass is timed like the others (settled: every point drawn, then
        # the purity chart); its first scatter and every point are noted as in the Map's pass
        map_page_seen: dict[str, list[float]] = {}
        pages = {
            p: round(
                page_paint(
                    driver,
                    url,
                    p,
                    args.repeat,
                    args.quiet,
                    watch=watch if p == "/map" else None,
                    seen=map_page_seen if p == "/map" else None,
                ),
                1,
            )
            for p in ([] if args.only_map else PAGES)
        }
        evals = plotlyjs_eval(driver, url, args.bundle_loads) if args.bundle_loads > 0 else None
    finally:
        driver.quit()
        proc.terminate()
        proc.wait(timeout=30)
    print(
        json.dumps(
            {
                "items": args.items,
                "filter_change_ms": {
                    "p50": _round(_pct(filt, 0.5)),
                    "p95": _round(_pct(filt, 0.95)),
                    "n": len(filt),
                },
                # click -> the results callback's answer in (input handling, network, server);
                # filter_change_ms minus this is the browser applying it
                "filter_change_answered_ms": {
                    "p50": _round(_pct([x for x in answered if x == x], 0.5)),
                    "p95": _round(_pct([x for x in answered if x == x], 0.95)),
                },
                "seed_change_ms": {
                    "p50": _round(_pct(seeds, 0.5)),
                    "p95": _round(_pct(seeds, 0.95)),
                    "n": len(seeds),
                },
                "map_first_paint_ms": round(statistics.median(map_seen["first"]), 1),
                "map_all_points_ms": round(statistics.median(map_seen["all"]), 1),
                # each load in order: the first is a first visit (plotly.js not in the browser's
                # cache); from the third on Chromium reuses plotly.js's compiled code
                "map_first_paint_each_ms": [round(x, 1) for x in map_seen["first"]],
                "map_all_points_each_ms": [round(x, 1) for x in map_seen["all"]],
                "map_settled_ms": round(map_ms, 1),
                "page_first_paint_ms": pages,
                # the /map page above (settled), its loads' first scatter and every point
                "map_page_marks_ms": {name: [round(x, 1) for x in xs] for name, xs in map_page_seen.items()},
                # first-visit parse + compile + run of the trimmed and the full plotly.js
                "plotlyjs_eval_ms": evals,
                "quiet_ms": args.quiet,
                "load_avg_1m": round(load, 2),
                "load_avg_1m_end": round(os.getloadavg()[0], 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Where the Map's first paint goes, load by load, in headless Chromium: prints ONE JSON line.

For each of ``--loads`` loads of ``/map?run=…`` (after a warm-up of ``/``), in order:
``first_paint`` (the first scatter drawn, as ``bench/browser.py`` measures it),
``plotly_ready`` (when ``window.Plotly`` became the library), ``first_gl`` (the first WebGL
``getContext``), ``long_tasks`` over 100 ms ``[start, duration]``, the plotly.js and
``_dash-update-component`` responses over 100 KB ``[name, start, end, transfer bytes, body
bytes]``, and the DevTools CPU profile's self time per bucket (``cpu_ms``: plotly.js, Dash's
bundles, V8's ``(program)`` and ``(garbage collector)``, native functions by name). All in ms
from navigation start. Used for the Map's sixth pass (docs/MEASUREMENTS.md, "Map first paint,
sixth pass"); run it from each checkout to compare, on the same data as ``bench/browser.py``.

Usage: ``python bench/map_timeline.py [--items 100000] [--loads 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import browser as B  # noqa: E402

PROBE = """
window.__tl = {long: []};
let __plotly;
Object.defineProperty(window, 'Plotly', {configurable: true, get: () => __plotly, set: (v) => {
  if (v && typeof v.react === 'function' && !window.__tl.plotly) window.__tl.plotly = performance.now();
  __plotly = v;
}});
const __getContext = HTMLCanvasElement.prototype.getContext;
HTMLCanvasElement.prototype.getContext = function (...a) {
  if (!window.__tl.gl && String(a[0]).includes('webgl')) window.__tl.gl = performance.now();
  return __getContext.apply(this, a);
};
try {
  new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__tl.long.push([Math.round(e.startTime), Math.round(e.duration)]); })
    .observe({type: 'longtask', buffered: true});
} catch (e) {}
"""
DRAWN = (
    "(() => { const g = document.querySelector('#map-graph .js-plotly-plot');"
    " return g && g._fullData ? g._fullData.reduce((n, t) => n + (t.x ? t.x.length : 0), 0) : 0; })()"
)
RESOURCES = """
return performance.getEntriesByType('resource')
  .filter((e) => (e.name.includes('plotly') || e.name.includes('_dash-update-component')) && e.decodedBodySize > 100000)
  .map((e) => [e.name.split('/').pop().split('?')[0].slice(0, 48), Math.round(e.startTime), Math.round(e.responseEnd), e.transferSize, e.decodedBodySize]);
"""


def _bucket(frame: dict[str, Any]) -> str:
    url, name = frame["url"], frame["functionName"]
    if "plotly" in url:
        return "plotly.js"
    if "/_dash-component-suites/" in url:
        return "dash bundles"
    if url:
        return "other scripts"
    return name or "(anonymous)"  # V8's (program), (garbage collector), native functions


def cpu_by_bucket(profile: dict[str, Any]) -> dict[str, int]:
    nodes = {n["id"]: n["callFrame"] for n in profile["nodes"]}
    out: dict[str, float] = {}
    for sample, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        key = _bucket(nodes[sample])
        out[key] = out.get(key, 0.0) + delta / 1000.0
    top = sorted(out.items(), key=lambda kv: -kv[1])[:8]
    return {k: round(v) for k, v in top if k != "(idle)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the Map's first paint, load by load (one JSON line)")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--loads", type=int, default=3)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    root = Path(tempfile.gettempdir()) / f"recsys-bench-dashboard-{args.items}"
    root.mkdir(parents=True, exist_ok=True)
    from dashboard import build_data

    run = build_data(root, args.items)
    loads = []
    with B.app_and_browser(root) as (driver, url):
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
        driver.get(url + "/")
        B.settled(driver, 0.0, 400)
        for _ in range(args.loads):
            driver.get("about:blank")
            driver.execute_cdp_cmd("Profiler.enable", {})
            driver.execute_cdp_cmd("Profiler.setSamplingInterval", {"interval": 500})
            driver.execute_cdp_cmd("Profiler.start", {})
            driver.get(f"{url}/map?run={run}")
            seen: dict[str, float] = {}
            B.settled(driver, 0.0, 400, ready=f"{DRAWN} > 0", watch={"first": f"{DRAWN} > 0"}, seen=seen)
            profile = driver.execute_cdp_cmd("Profiler.stop", {})["profile"]
            tl = driver.execute_script("return window.__tl;")
            loads.append(
                {
                    "first_paint": round(seen.get("first", -1)),
                    "plotly_ready": round(tl.get("plotly", -1)),
                    "first_gl": round(tl.get("gl", -1)),
                    "long_tasks": [t for t in tl["long"] if t[1] > 100],
                    "responses": driver.execute_script(RESOURCES),
                    "cpu_ms": cpu_by_bucket(profile),
                }
            )
    print(
        json.dumps(
            {
                "items": args.items,
                "loads": loads,
                "load_avg_1m": round(load, 2),
                "load_avg_1m_end": round(os.getloadavg()[0], 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

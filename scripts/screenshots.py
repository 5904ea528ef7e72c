"""Screenshots of every dashboard page on the demo data, in headless Chromium.

Usage::

    python scripts/screenshots.py [--data-dir DIR] [--out docs/screenshots] [--items 5000]

With no ``--data-dir`` the demo is built (``recsys.pipeline.build_demo``) into a
temporary folder first. The app is started as ``python app.py`` on a free loopback
port, each page is opened in Chromium (``--headless --no-sandbox --disable-gpu
--disable-background-networking``, chromedriver from /usr/bin or PATH), the script
waits until the page's main content is drawn, and saves a full-page PNG as
``<out>/<page>.png``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

logger = logging.getLogger("screenshots")

CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
WIDTH = 1440


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_data(data_dir: Path | None, n_items: int) -> Path:
    """A data dir with runs: the given one, or a fresh demo build (plus a PCA map projection)."""
    from recsys.registry import Registry

    if data_dir is not None and Registry(data_dir).list_runs():
        return data_dir
    root = data_dir or Path(tempfile.mkdtemp(prefix="recsys-shots-"))
    from recsys.pipeline import build_demo

    logger.info("building the demo (%d items) in %s", n_items, root)
    t0 = time.perf_counter()
    build_demo(root, n_items=n_items)
    logger.info("demo built in %.0f s", time.perf_counter() - t0)
    return root


def projection_for(root: Path, run_id: str) -> None:
    """Compute the UMAP projection of the run shown on Map (PCA if UMAP fails)."""
    from recsys.projection import project_run

    for method in ("umap", "pca"):
        try:
            project_run(run_id, method=method, root=root)
            return
        except Exception as exc:  # a screenshot with PCA is better than none
            logger.warning("%s projection failed: %s", method, exc)


def start_app(root: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "RECSYS_DATA_DIR": str(root), "RECSYS_NO_DEMO": "1"}
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--data-dir", str(root), "--no-demo"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the app did not answer within 60 s")


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={WIDTH},1000")
    options.add_argument("--hide-scrollbars")
    for binary in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"):
        if Path(binary).exists():
            options.binary_location = binary
            break
    driver_path = (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else shutil.which("chromedriver")
    )
    return webdriver.Chrome(service=Service(driver_path), options=options)


def pages(root: Path, run: str | None = None) -> list[tuple[str, str, str]]:
    """(name, path with query, CSS selector that shows the page is drawn)."""
    from components import ids
    from recsys.data.schema import load_dataset
    from recsys.registry import Registry

    registry = Registry(root)
    run = run or registry.default_run() or ""
    meta = registry.get(run) if run else {}
    seed = ""
    embedding_runs = [r["run_id"] for r in registry.list_runs() if r.get("is_embedding")][:2]
    compare_runs = ",".join(embedding_runs)
    if meta:
        catalog = load_dataset(meta["dataset"]["name"], root).catalog
        # a seed that the shown run and both compared runs have a vector for
        known = set.intersection(
            *(set(map(str, registry.load_model(r).item_ids_)) for r in {run, *embedding_runs})
        )
        # A seed with a clear category and a brand, from the middle of the catalogue.
        candidates = catalog[(catalog["brand"] != "") & catalog["item_id"].astype(str).isin(known)]
        seed = str(candidates["item_id"].iloc[len(candidates) // 3]) if len(candidates) else ""
    return [
        ("overview", "/", f"#{ids.OVERVIEW_RUNS_GRID} .ag-row"),
        ("explore", f"/explore?seed={seed}&run={run}", f"#{ids.EXPLORE_RESULTS} .item-card"),
        ("map", f"/map?run={run}", f"#{ids.MAP_GRAPH} .main-svg"),
        ("compare", f"/compare?seed={seed}&runs={compare_runs}", f"#{ids.COMPARE_LISTS} .compare-col"),
        ("runs", "/runs", f"#{ids.RUNS_GRID} .ag-row"),
        ("data", "/data", f"#{ids.DATA_DATASETS} table"),
    ]


def shoot(driver, url: str, selector: str, out: Path, settle: float = 2.0) -> bool:
    """Open ``url``, wait for ``selector`` and for Dash to go idle, save a full-page PNG."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.set_window_size(WIDTH, 1000)
    driver.get(url)
    ok = True
    try:
        WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.CSS_SELECTOR, selector)))
    except TimeoutException:
        logger.warning("%s: %s did not appear within 60 s; saving what is there", url, selector)
        ok = False
    # Wait until no callback is pending (Dash marks the document while loading).
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not driver.find_elements(By.CSS_SELECTOR, "[data-dash-is-loading='true']"):
            break
        time.sleep(0.2)
    time.sleep(settle)
    height = driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
    )
    driver.set_window_size(WIDTH, min(max(int(height) + 40, 800), 4000))
    time.sleep(0.8)
    driver.save_screenshot(str(out))
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="use these runs (default: build the demo)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--items", type=int, default=5000, help="demo size when building it")
    parser.add_argument("--only", nargs="*", help="page names to shoot (default: all)")
    parser.add_argument("--run", default=None, help="run shown on Explore and Map (default: the active one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    root = prepare_data(args.data_dir, args.items).resolve()
    from recsys.registry import Registry

    run = args.run or Registry(root).default_run()
    if run and not list((root / "runs" / run).glob("projection_*.parquet")):
        projection_for(root, run)
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    app = start_app(root, port)
    driver = browser()
    failures = []
    try:
        for name, path, selector in pages(root, run):
            if args.only and name not in args.only:
                continue
            out = args.out / f"{name}.png"
            ok = shoot(driver, f"http://127.0.0.1:{port}{path}", selector, out)
            logger.info("%s -> %s%s", path, out, "" if ok else " (content missing)")
            if not ok:
                failures.append(name)
    finally:
        driver.quit()
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()
    if failures:
        logger.error("pages whose content did not appear: %s", ", ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

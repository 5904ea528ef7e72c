"""Serving benchmark: REST similar-items throughput and latency under gunicorn.

Prints ONE JSON line. What it does:

1. Prepares a data directory with ``--items`` (default 100k) catalogue items:
   a synthetic catalogue (categories, brands, genders, prices, adult items), an
   embedding run with clustered random float32 vectors and its HNSW index, a
   filter preset, and the precomputed top-k table of that run and preset.
   (Vectors are random, not trained: serving speed does not depend on how the
   vectors were learnt.)
2. Starts the production server command on loopback,
   ``gunicorn -w 2 -b 127.0.0.1:<free port> app:server`` (the real Dash app
   with the API mounted), and waits for /api/v1/health.
3. Drives a bounded load (``--clients`` processes, each one request at a time
   over http.client, for ``--seconds`` per phase) against the no-op endpoint
   ``/api/v1/noop``, live similar items with the preset
   (``/api/v1/similar/<id>?preset=...&k=10``), and the same from the
   precomputed table (``&source=precomputed``), each in two half-length rounds in mirrored
   order (no-op, live, precomputed, precomputed, live, no-op: a drifting load from other
   users weighs on each alike); reports requests/s, p50/p99 latency, their ratio to the
   no-op endpoint, the workers' CPU time per request, and non-2xx answers.

4. Then one gunicorn worker each, in turn: our API with the preset, our API with no filter,
   and the reference, a bare Flask endpoint calling hnswlib on the same index
   (:func:`reference_app`); ``one_worker.*_vs_reference`` is our throughput over the
   reference's (``--no-reference`` skips it), and ``*_cpu_vs_reference`` the same for the
   worker's CPU time per request. ``--token`` adds a fourth: our API with the preset on a server
   with an editor and a viewer token configured (every deployment bound beyond loopback has
   one), each request of the comparison sending ``Authorization: Bearer <viewer token>``
   (``one_worker.ours_preset_token_vs_reference``): the login layer's cost.

The load generator runs on the same machine and competes with the two
gunicorn workers for the same CPU cores; the JSON says so in "note".

Usage::

    python bench/serving.py [--items 100000] [--clients 4] [--seconds 8] [--data-dir DIR] [--token]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PRESET = "bench-preset"
DATASET = "bench"
#: the tokens of ``--token``'s server (loopback only; the reference ignores the header)
EDITOR_TOKEN = "bench-editor-token-0123456789"
VIEWER_TOKEN = "bench-viewer-token-0123456789"


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
def make_catalog(n_items: int, n_clusters: int, seed: int) -> tuple[Any, np.ndarray]:
    """A synthetic catalogue; items of one cluster share a category (so filters bite)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    tops = ["Women", "Men", "Kids", "Home", "Electronics", "Unisex"]
    leaves = [f"{t} > Group {g} > Leaf {leaf}" for t in tops for g in range(3) for leaf in range(2)]
    leaves.append("Adult > Toys > Misc")
    cluster = rng.integers(0, n_clusters, n_items)
    cat_of_cluster = rng.integers(0, len(leaves), n_clusters)
    category = np.asarray(leaves, dtype=object)[cat_of_cluster[cluster]]
    genders = np.asarray(["women", "men", "kids", "unisex", ""], dtype=object)
    gender = genders[rng.integers(0, len(genders), n_items)]
    brand = np.asarray([f"Brand{b:03d}" for b in range(300)], dtype=object)[rng.integers(0, 300, n_items)]
    ids = np.asarray([f"i{i:06d}" for i in range(n_items)], dtype=object)
    catalog = pd.DataFrame(
        {
            "item_id": pd.array(ids, dtype="string").astype(str),
            "title": [f"Item {i}" for i in range(n_items)],
            "category": category.astype(str),
            "brand": brand.astype(str),
            "gender": gender.astype(str),
            "price": np.round(rng.lognormal(3.5, 0.6, n_items), 2),
            "adult": category == "Adult > Toys > Misc",
            "description": "",
            "image_url": "",
        }
    )
    return catalog, cluster


def prepare(root: Path, n_items: int, dim: int, seed: int, k_pre: int) -> dict[str, Any]:
    """Build (or reuse) the benchmark data directory; returns timings and ids."""
    import pandas as pd

    from recsys.data.schema import Dataset, save_dataset
    from recsys.filters import FilterConfig, PresetStore
    from recsys.index import HnswIndex
    from recsys.models.prod2vec import Prod2Vec
    from recsys.precompute import open_store, precompute
    from recsys.registry import Registry

    info: dict[str, Any] = {}
    reg = Registry(root)
    runs = [r for r in reg.list_runs() if r.get("label") == f"bench-{n_items}-{dim}-{seed}"]
    t0 = time.perf_counter()
    if not runs:
        catalog, cluster = make_catalog(n_items, max(n_items // 500, 10), seed)
        inter = pd.DataFrame(
            {
                "sequence_id": ["s0", "s0"],
                "user_id": ["", ""],
                "item_id": catalog["item_id"].iloc[:2].tolist(),
                "timestamp": pd.to_datetime(["2024-01-01", "2024-01-01"]),
                "event_type": ["view", "view"],
                "quantity": [1.0, 1.0],
                "position": np.array([0, 1], dtype=np.int64),
            }
        )
        ds = Dataset(name=DATASET, catalog=catalog, interactions=inter)
        save_dataset(ds, root)
        rng = np.random.default_rng(seed + 1)
        centers = rng.normal(size=(cluster.max() + 1, dim)).astype(np.float32)
        vectors = (centers[cluster] + 0.35 * rng.normal(size=(n_items, dim))).astype(np.float32)
        model = Prod2Vec()
        model.item_ids_ = catalog["item_id"].to_numpy(dtype=str)
        model.vectors_ = vectors
        model.coverage_ = {"catalog_items": n_items, "items_with_vector": n_items, "coverage": 1.0}

        def write_index(folder: Path) -> dict[str, Any]:
            index = HnswIndex.build(vectors)
            index.save(Path(folder) / "index.bin")
            return {"index": {"file": "index.bin"}}

        meta = reg.create_run(
            model,
            dataset_name=DATASET,
            dataset_fingerprint=ds.fingerprint(),
            writers=[write_index],
            label=f"bench-{n_items}-{dim}-{seed}",
        )
        reg.activate(meta["run_id"])
        run_id = meta["run_id"]
    else:
        run_id = runs[0]["run_id"]
    info["prepare_s"] = round(time.perf_counter() - t0, 2)
    preset = FilterConfig.from_dict(
        {"same_category": True, "category_level": 1, "exclude_adult": True, "max_per_brand": 3}
    )
    PresetStore(root).save(PRESET, preset)
    store = open_store(None, root=root)
    have = store.table_meta(run_id, preset.config_hash())
    store.close()
    t0 = time.perf_counter()
    if have is None or have.get("n_items") != n_items or int(have.get("k", 0)) < k_pre:
        precompute(root, run_id, PRESET, k=k_pre)
        info["precompute_s"] = round(time.perf_counter() - t0, 2)
    info["run_id"] = run_id
    return info


# ---------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    root: Path, port: int, workers: int, app_target: str, run_id: str = "", token: bool = False
) -> subprocess.Popen[bytes]:
    """gunicorn serving ``app_target``; ``token``: with the bench's editor and viewer tokens
    (the login required on every request), else with none whatever the environment says."""
    env = {
        **os.environ,
        "RECSYS_BENCH_RUN": run_id,
        "RECSYS_DATA_DIR": str(root),
        "RECSYS_NO_DEMO": "1",
        "RECSYS_API_PRELOAD": "1",  # each worker loads the run's searcher at boot
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    for name in ("RECSYS_API_TOKEN", "RECSYS_VIEWER_TOKEN", "RECSYS_USERS_FILE"):
        env.pop(name, None)
    if token:
        env.update(RECSYS_API_TOKEN=EDITOR_TOKEN, RECSYS_VIEWER_TOKEN=VIEWER_TOKEN)
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    cmd = [gunicorn, "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning", app_target]
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def wait_ready(
    port: int, proc: subprocess.Popen[bytes], timeout: float = 90.0, headers: dict[str, str] | None = None
) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"gunicorn exited with {proc.returncode}: {err[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/health", headers=headers or {})
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            if resp.status == 200 and body.startswith(b"{"):
                return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on port {port} not ready after {timeout} s")


def warm_up(
    port: int,
    path: str,
    proc: subprocess.Popen[bytes],
    timeout: float = 300.0,
    headers: dict[str, str] | None = None,
) -> float:
    """Wait until a similar-items request answers 200 (the run's searcher is loaded)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            resp.read()
            conn.close()
            if resp.status == 200:
                return time.perf_counter() - t0
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"similar-items request still failing after {timeout} s")


def workers_cpu_s(proc: subprocess.Popen[bytes]) -> float | None:
    """CPU seconds (user + system) spent so far by the gunicorn workers of ``proc`` (Linux
    ``/proc``; None elsewhere). Per request it is steadier than throughput on a busy machine."""
    try:
        kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        total = 0
        for pid in kids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
        return total / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ---------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------
def _client(
    args: tuple[int, list[str], float, int, int, dict[str, str]],
) -> tuple[list[float], int, int, float, float, list[float]]:
    port, paths, seconds, max_requests, seed, headers = args
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(paths))
    lat: list[float] = []
    server: list[float] = []
    bad = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    start = time.perf_counter()
    deadline = start + seconds
    i = 0
    while time.perf_counter() < deadline and i < max_requests:
        path = paths[order[i % len(order)]]
        t0 = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
            timing = resp.getheader("Server-Timing") or ""
            if timing.startswith("app;dur="):
                server.append(float(timing[8:]))
            if resp.will_close:
                conn.close()
        except (OSError, http.client.HTTPException):
            status = 599
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat.append(time.perf_counter() - t0)
        if not 200 <= status < 300:
            bad += 1
        i += 1
    end = time.perf_counter()
    conn.close()
    return lat, bad, i, start, end, server


def _drive(
    port: int,
    paths: list[str],
    clients: int,
    seconds: float,
    max_requests: int,
    headers: dict[str, str] | None = None,
) -> list[Any]:
    """Run ``clients`` processes against ``paths`` (each request with ``headers``); their raw
    measurements."""
    with mp.get_context("fork").Pool(clients) as pool:
        return pool.map(
            _client,
            [
                (port, paths, seconds, max_requests // clients, 1000 + c, headers or {})
                for c in range(clients)
            ],
        )


def _summary(rounds: list[list[Any]]) -> dict[str, Any]:
    """Figures of one phase measured in one or more rounds (each a list of client parts)."""
    parts = [p for r in rounds for p in r]
    lat = np.concatenate([np.asarray(p[0]) for p in parts]) * 1000.0
    n = int(sum(p[2] for p in parts))
    srv = np.concatenate([np.asarray(p[5]) for p in parts])
    span = sum(max(p[4] for p in r) - min(p[3] for p in r) for r in rounds)
    return {
        "requests": n,
        "seconds": round(span, 2),
        "rps": round(n / span, 1) if span > 0 else None,
        "p50_ms": round(float(np.percentile(lat, 50)), 3) if n else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 3) if n else None,
        "server_p50_ms": round(float(np.percentile(srv, 50)), 3) if len(srv) else None,
        "server_p99_ms": round(float(np.percentile(srv, 99)), 3) if len(srv) else None,
        "non_2xx": int(sum(p[1] for p in parts)),
    }


def load(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run ``clients`` processes against ``paths`` (:func:`_drive`'s arguments) and summarise."""
    return _summary([_drive(*args, **kwargs)])


def load_phases(
    proc: subprocess.Popen[bytes],
    port: int,
    phases: dict[str, list[str]],
    clients: int,
    seconds: float,
    max_requests: int,
) -> dict[str, dict[str, Any]]:
    """Each phase against one server, by :func:`mirrored`."""
    return mirrored(
        {name: (proc, port, paths) for name, paths in phases.items()}, clients, seconds, max_requests
    )


def mirrored(
    phases: dict[str, tuple[subprocess.Popen[bytes], int, list[str]]],
    clients: int,
    seconds: float,
    max_requests: int,
    headers: dict[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each phase (a server, its port, the paths asked) in two half-length rounds, in mirrored
    order (A B C C B A), so a load that other users add or remove during the run weighs on every
    phase alike; with the phase's workers' CPU milliseconds per request (``worker_cpu_ms``).
    ``headers``: sent with every request of every phase."""
    names = list(phases)
    rounds: dict[str, list[list[Any]]] = {name: [] for name in names}
    cpu: dict[str, float | None] = dict.fromkeys(names, 0.0)
    for name in names + names[::-1]:
        proc, port, paths = phases[name]
        c0 = workers_cpu_s(proc)
        rounds[name].append(_drive(port, paths, clients, seconds / 2, max_requests // 2, headers))
        c1 = workers_cpu_s(proc)
        cpu[name] = None if c0 is None or c1 is None or cpu[name] is None else cpu[name] + c1 - c0
    out = {}
    for name in names:
        out[name] = _summary(rounds[name])
        spent, n = cpu[name], out[name]["requests"]
        out[name]["worker_cpu_ms"] = round(spent * 1000.0 / n, 3) if spent is not None and n else None
    return out


def app_target() -> str:
    app_py = REPO / "app.py"
    if app_py.exists() and "register_api" in app_py.read_text():
        return "app:server"
    return "bench.serving:bare_app()"


def bare_app() -> Any:
    """A bare Flask app with only the API (used until app.py mounts it)."""
    import flask

    from recsys.serving import register_api

    server = flask.Flask("bench")
    register_api(server)
    return server


def reference_app() -> Any:
    """The reference: a bare Flask endpoint calling hnswlib on the same run's index.

    ``/ref/similar/<item_id>?k=`` answers the k nearest items (the seed dropped) as JSON, with
    no filters, no validation beyond the item id, no registry look-ups: what serving costs
    without our handler. ``RECSYS_DATA_DIR`` and ``RECSYS_BENCH_RUN`` say which run.
    """
    import flask

    from recsys.index import HnswIndex
    from recsys.registry import Registry

    root = Path(os.environ["RECSYS_DATA_DIR"])
    run_id = os.environ["RECSYS_BENCH_RUN"]
    reg = Registry(root)
    model = reg.load_model(run_id)
    ids = [str(x) for x in np.asarray(model.item_ids_)]
    row_of = {x: i for i, x in enumerate(ids)}
    vec = np.asarray(model.vectors_, dtype=np.float32)
    unit = np.ascontiguousarray(vec / np.linalg.norm(vec, axis=1, keepdims=True))
    raw = HnswIndex.load(reg.run_dir(run_id) / "index.bin")._index
    app = flask.Flask("reference")

    @app.get("/api/v1/health")
    def health() -> Any:
        return flask.jsonify(status="ok")

    @app.get("/ref/similar/<item_id>")
    def similar(item_id: str) -> Any:
        k = int(flask.request.args.get("k", 10))
        row = row_of.get(item_id)
        if row is None:
            return flask.jsonify(error="unknown item"), 404
        labels, dist = raw.knn_query(unit[row : row + 1], k=k + 1, num_threads=1)
        items = [
            {"item_id": ids[r], "score": 1.0 - d}
            for r, d in zip(labels[0].tolist(), dist[0].tolist())
            if r != row
        ][:k]
        return flask.jsonify(item_id=item_id, items=items)

    return app


def one_worker_comparison(
    root: Path, run_id: str, live: list[str], plain: list[str], ref: list[str], args: Any
) -> dict[str, Any]:
    """One gunicorn worker of our API (preset, and no filter) against one of the reference;
    ``args.token``: a fourth, our API with the preset behind the login (tokens configured), and
    every request of the comparison sends the viewer's bearer token (the same bytes to each).

    The servers run side by side (one worker each), each warmed up and settled, then
    measured in two half-length rounds in mirrored order (A B C C B A), so a load that others add
    or remove during the run weighs on the three alike (measured one after the other, a falling
    load favoured the reference, which ran last)."""
    phases = [
        ("ours_preset", app_target(), live, False),
        ("ours_no_filter", app_target(), plain, False),
        ("reference", "bench.serving:reference_app()", ref, False),
    ]
    token = bool(getattr(args, "token", False))
    if token:
        phases.insert(1, ("ours_preset_token", app_target(), live, True))
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"} if token else None
    procs: dict[str, tuple[subprocess.Popen[bytes], int, list[str]]] = {}
    try:
        for name, target, paths, with_token in phases:
            port = free_port()
            procs[name] = (start_server(root, port, 1, target, run_id, with_token), port, paths)
            wait_ready(port, procs[name][0], headers=headers)
        for proc, port, paths in procs.values():
            warm_up(port, paths[0], proc, headers=headers)
            load(port, paths[:200], clients=2, seconds=5.0, max_requests=400, headers=headers)
        out: dict[str, Any] = mirrored(procs, 2, args.seconds, args.max_requests, headers)
    finally:
        for proc, _, _ in procs.values():
            stop_server(proc)
    ref_rps = out["reference"]["rps"] or 0.0
    ref_cpu = out["reference"].get("worker_cpu_ms")
    for name in [n for n in procs if n != "reference"]:
        out[f"{name}_vs_reference"] = round(out[name]["rps"] / ref_rps, 3) if ref_rps else None
        cpu = out[name].get("worker_cpu_ms")
        # CPU per request, ours over the reference's (1.0: no overhead; steadier under load)
        out[f"{name}_cpu_vs_reference"] = round(cpu / ref_cpu, 3) if cpu and ref_cpu else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes")
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each load phase")
    parser.add_argument("--max-requests", type=int, default=20_000, help="cap per phase")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--data-dir", default=None, help="reuse this data directory (default: a temp one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the one-worker comparison with bare Flask + hnswlib"
    )
    parser.add_argument(
        "--token",
        action="store_true",
        help="the one-worker comparison adds our API with the preset behind the login (bearer tokens)",
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tmp = None
    if args.data_dir:
        root = Path(args.data_dir).resolve()
    else:
        tmp = tempfile.mkdtemp(prefix="recsys-bench-serving-")
        root = Path(tmp)
    root.mkdir(parents=True, exist_ok=True)
    info = prepare(root, args.items, args.dim, args.seed, k_pre=max(args.k, 20))
    rng = np.random.default_rng(args.seed + 7)
    seeds = [f"i{i:06d}" for i in rng.choice(args.items, size=min(5000, args.items), replace=False)]
    run_id = info["run_id"]
    live = [f"/api/v1/similar/{s}?run={run_id}&preset={PRESET}&k={args.k}" for s in seeds]
    pre = [p + "&source=precomputed" for p in live]
    noop = ["/api/v1/noop"]

    load_before = round(os.getloadavg()[0], 2)
    port = free_port()
    target = app_target()
    proc = start_server(root, port, args.workers, target)
    out: dict[str, Any] = {"bench": "serving"}
    try:
        ready_s = wait_ready(port, proc)
        warm_s = warm_up(port, live[0], proc)
        # both workers: searcher, preset and SQLite connection loaded
        load(port, live[:300] + pre[:300], clients=args.clients, seconds=20.0, max_requests=600)
        phases = {"noop": noop, "live": live, "precomputed": pre}
        measured = load_phases(proc, port, phases, args.clients, args.seconds, args.max_requests)
        r_noop, r_live, r_pre = measured["noop"], measured["live"], measured["precomputed"]
        stop_server(proc)
        one_worker = None
        if not args.no_reference:
            plain = [f"/api/v1/similar/{s}?run={run_id}&k={args.k}" for s in seeds]
            ref = [f"/ref/similar/{s}?k={args.k}" for s in seeds]
            one_worker = one_worker_comparison(root, run_id, live, plain, ref, args)
    finally:
        stop_server(proc)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    def ratio(a: dict[str, Any]) -> float | None:
        return round(a["rps"] / r_noop["rps"], 3) if a["rps"] and r_noop["rps"] else None

    non_2xx = r_noop["non_2xx"] + r_live["non_2xx"] + r_pre["non_2xx"]
    out.update(
        {
            "items": args.items,
            "dim": args.dim,
            "k": args.k,
            "preset": "same_category(level 1) + exclude_adult + max_per_brand=3",
            "server": f"gunicorn -w {args.workers} -b 127.0.0.1:{port} {target}",
            "clients": args.clients,
            "cpu_cores": os.cpu_count(),
            "loadavg_1min_before": load_before,
            "loadavg_1min_after": round(os.getloadavg()[0], 2),
            "server_ready_s": round(ready_s, 2),
            "first_similar_s": round(warm_s, 2),
            **{k: v for k, v in info.items() if k != "run_id"},
            "noop": r_noop,
            "similar_live": r_live,
            "similar_precomputed": r_pre,
            "ratio_live_vs_noop": ratio(r_live),
            "ratio_precomputed_vs_noop": ratio(r_pre),
            "non_2xx": non_2xx,
            "one_worker": one_worker,
            "targets": {
                "one_worker_preset_ge_0.8x_reference": bool(one_worker)
                and (one_worker["ours_preset_vs_reference"] or 0) >= 0.8,
                "live_throughput_ge_0.6x_noop": (ratio(r_live) or 0) >= 0.6,
                "live_throughput_ge_0.5x_noop": (ratio(r_live) or 0) >= 0.5,
                "live_p99_le_10ms": (r_live["p99_ms"] or 1e9) <= 10.0,
                "zero_non_2xx": non_2xx == 0,
            },
            "note": (
                f"client processes ({args.clients}) and the {args.workers} gunicorn sync workers share "
                f"the same {os.cpu_count()} CPU cores (and other users' work on this machine): throughput "
                "is lower and latency higher than with a separate load machine (see loadavg_*); the client "
                "pays Python http.client costs and a new TCP connection per request (gunicorn sync "
                "workers close it). p50_ms/p99_ms are client-side (queueing included, the targets); "
                "server_p50_ms/server_p99_ms are the handler's own time from the Server-Timing header; "
                "worker_cpu_ms is the gunicorn workers' CPU time per request (/proc), which other "
                "users' load disturbs less than throughput. "
                "Vectors are random clustered float32, not trained."
            ),
        }
    )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

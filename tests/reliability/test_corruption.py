"""The corruption matrix: every kind of stored file x {truncated, garbage bytes, wrong shape}.

Each case starts the real app (``app.py``, as ``gunicorn app:server`` would) on a fresh copy
of a small data directory, serves from it (so every cache is warm), damages ONE file in
place, and checks through the Flask test client and the page layout functions that

- the app stays up: ``/api/v1/health``, ``/api/v1/runs``, ``/_dash-layout``,
  ``/_dash-dependencies`` answer 200 and every page's layout renders (to JSON);
- the damaged thing is named with its reason: the run in ``/api/v1/runs`` (``damaged``,
  ``error``), on the Runs page and in ``python -m recsys runs list``; a preset, a dataset
  report, a job or the precomputed store where they are listed or used;
- serving the damaged run answers a clear JSON error (503), never a 500, and no other
  run is affected: run B answers exactly what it answered before the damage.

Then the app is started again on the damaged directory (the start-up path: job clean-up,
leftover sweep) and the same checks run. ``CASES`` counts the matrix (see the README).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import plotly
import pytest

REPO = Path(__file__).resolve().parents[2]
SEED = "ws0"
PAGES = ("overview", "runs", "data", "explore", "map", "compare")


# ---------------------------------------------------------------------------
# the data directory: dataset "tiny", runs A (two spaces, active), B, popularity,
# presets "women" and "men", a precomputed table of A x women, two finished jobs
# ---------------------------------------------------------------------------
def _build(root: Path) -> dict[str, Any]:
    from recsys.data.loaders import build_dataset
    from recsys.data.schema import save_dataset
    from recsys.filters import FilterConfig, PresetStore
    from recsys.jobs import JobStore
    from recsys.models import make_model
    from recsys.models.prod2vec import Prod2Vec
    from recsys.precompute import precompute
    from recsys.registry import Registry
    from tests.callbacks._emc_data import catalog, interactions, vectors

    cat = catalog()
    item_ids = cat["item_id"].tolist()
    ds = build_dataset("tiny", cat, interactions(item_ids))
    save_dataset(ds, root)
    registry = Registry(root)

    def embedding_run(label: str, vec: np.ndarray, query: np.ndarray | None) -> str:
        model = Prod2Vec()
        model.item_ids_ = np.asarray(item_ids, dtype=str)
        model.vectors_ = vec
        model.query_vectors_ = query
        model._set_coverage(model.item_ids_)
        meta = registry.create_run(
            model,
            dataset_name="tiny",
            dataset_fingerprint=ds.fingerprint(),
            metrics={"hr@10": 0.5},
            label=label,
        )
        return meta["run_id"]

    runs = {
        "A": embedding_run("A", vectors(item_ids), vectors(item_ids, perturb=True)),
        "B": embedding_run("B", vectors(item_ids, perturb=True), None),
    }
    pop = make_model("popularity").fit(ds)
    runs["popularity"] = registry.create_run(
        pop, dataset_name="tiny", dataset_fingerprint=ds.fingerprint(), label="popularity"
    )["run_id"]
    registry.activate(runs["A"])
    presets = PresetStore(root)
    presets.save("women", FilterConfig(same_category=True, category_level=0))
    presets.save("men", FilterConfig(same_gender=True))
    precompute(root, runs["A"], "women", k=5)
    jobs = JobStore(root, runner="process")
    job_ids = [jobs.submit("sleep", {"seconds": 0.1, "steps": 1}, label=f"job {i}") for i in range(2)]
    for job_id in job_ids:
        assert jobs.wait(job_id, timeout=120)["status"] == "done"
    return {"runs": runs, "jobs": job_ids}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The pristine data directory (built once) and what run B answers from it."""
    root = tmp_path_factory.mktemp("pristine") / "data"
    root.mkdir()
    info = _build(root)
    shutil.rmtree(root / "imports", ignore_errors=True)
    # the device probe's answer, as an earlier start left it: otherwise each of the 50 cases'
    # apps would start its own probe job (a TensorFlow import) and leave it running
    (root / "device.json").write_text('{"backend": "tensorflow", "device": "CPU", "mixed_precision": false}')
    return {"root": root, **info}


def _fresh_app(root: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app of app.py on ``root``, with every page and callback registered anew."""
    import dash
    from dash import _callback

    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    monkeypatch.setenv("RECSYS_NO_DEMO", "1")
    monkeypatch.delenv("RECSYS_API_TOKEN", raising=False)
    monkeypatch.chdir(REPO)
    for name in list(sys.modules):
        if name == "app" or name.split(".")[0] in ("pages", "components"):
            del sys.modules[name]
    dash._pages.PAGE_REGISTRY.clear()
    _callback.GLOBAL_CALLBACK_LIST.clear()
    _callback.GLOBAL_CALLBACK_MAP.clear()
    import app

    return app


# ---------------------------------------------------------------------------
# damage, done in place (the same inode, as a failing disk or a cut write would)
# ---------------------------------------------------------------------------
def _truncate(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(max(1, size // 2))


def _garbage(path: Path) -> None:
    size = max(path.stat().st_size, 64)
    data = np.random.default_rng(11).integers(0, 256, size, dtype=np.uint8).tobytes()
    with open(path, "r+b") as fh:
        fh.seek(0)
        fh.write(data)
        fh.truncate(size)


def _json_edit(edit: Callable[[Any], Any]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        value = edit(json.loads(path.read_text()))
        with open(path, "r+") as fh:
            fh.seek(0)
            fh.write(json.dumps(value))
            fh.truncate()

    return apply


def _as_list(value: Any) -> Any:
    return [value] if not isinstance(value, list) else [1, 2]


def _set(key: str, new: Any) -> Callable[[Any], Any]:
    return lambda v: {**v, key: new}


def _drop(key: str) -> Callable[[Any], Any]:
    return lambda v: {k: x for k, x in v.items() if k != key}


def _npy_replace(make: Callable[[np.ndarray], np.ndarray], pickle: bool = False) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        arr = np.load(path, allow_pickle=False)
        new = make(arr)
        tmp = path.with_name("replacement.npy")
        np.save(tmp, new, allow_pickle=pickle)
        data = tmp.read_bytes()
        tmp.unlink()
        with open(path, "r+b") as fh:
            fh.seek(0)
            fh.write(data)
            fh.truncate()

    return apply


def _sql(statement: str) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        con = sqlite3.connect(path)
        with con:
            con.execute(statement)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # into the main file, as time would
        con.close()

    return apply


def _foreign_sqlite(path: Path) -> None:
    """A valid SQLite file of someone else's: our tables are there but hold other columns."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    con = sqlite3.connect(path)
    with con:
        con.execute("CREATE TABLE tables (name TEXT)")
        con.execute("CREATE TABLE topk (x INTEGER)")
    con.close()


def _run_file(name: str) -> Callable[[Path, dict], Path]:
    return lambda root, t: root / "runs" / t["runs"]["A"] / name


#: kind -> (where the file is, {variant: damage}, what it belongs to)
KINDS: dict[str, tuple[Callable[[Path, dict], Path], dict[str, Callable[[Path], None]], str]] = {
    "run.json": (
        _run_file("run.json"),
        {
            "truncated": _truncate,
            "garbage": _garbage,
            "list": _json_edit(_as_list),
            "wrong_type": _json_edit(_set("created", 5)),
            "missing_key": _json_edit(_drop("family")),
        },
        "run",
    ),
    "model.json": (
        _run_file("model.json"),
        {
            "truncated": _truncate,
            "garbage": _garbage,
            "list": _json_edit(_as_list),
            "wrong_type": _json_edit(_set("params", "window=5")),
            "missing_key": _json_edit(_drop("params")),
        },
        "run",
    ),
    "item_ids.npy": (
        _run_file("item_ids.npy"),
        {
            "truncated": _truncate,
            "garbage": _garbage,
            "wrong_dtype": _npy_replace(lambda a: np.arange(len(a), dtype=np.float64)),
            "wrong_rows": _npy_replace(lambda a: a[:-3]),
            "pickled": _npy_replace(lambda a: np.asarray(a, dtype=object), pickle=True),
        },
        "run",
    ),
    "vectors.npy": (
        _run_file("vectors.npy"),
        {
            "truncated": _truncate,
            "garbage": _garbage,
            "wrong_dtype": _npy_replace(lambda a: a.astype(str)),
            "wrong_rows": _npy_replace(lambda a: a[:-3]),
            "pickled": _npy_replace(lambda a: a.astype(object), pickle=True),
        },
        "run",
    ),
    "query_vectors.npy": (
        _run_file("query_vectors.npy"),
        {
            "truncated": _truncate,
            "garbage": _garbage,
            "wrong_dtype": _npy_replace(lambda a: a.astype(str)),
            "wrong_rows": _npy_replace(lambda a: a[:-3]),
            "wrong_dim": _npy_replace(lambda a: a[:, :3].copy()),
        },
        "run",
    ),
    "active.json": (
        lambda root, t: root / "runs" / "active.json",
        {
            "truncated": _truncate,
            "garbage": _garbage,
            "list": _json_edit(_as_list),
            "wrong_type": _json_edit(lambda v: {k: 5 for k in v}),
            "dangling": _json_edit(lambda v: {k: "../../etc" for k in v}),
        },
        "active",
    ),
    "preset": (
        lambda root, t: root / "presets" / "women.json",
        {
            "truncated": _truncate,
            "garbage": _garbage,
            "list": _json_edit(_as_list),
            "wrong_type": _json_edit(_set("versions", "v1")),
            "missing_key": _json_edit(_drop("versions")),
        },
        "preset",
    ),
    "report.json": (
        lambda root, t: root / "datasets" / "tiny" / "report.json",
        {
            "truncated": _truncate,
            "garbage": _garbage,
            "list": _json_edit(_as_list),
            "wrong_type": _json_edit(lambda v: {**v, "summary": {**v["summary"], "items": "many"}}),
            "missing_key": _json_edit(_drop("name")),
        },
        "dataset",
    ),
    "job.json": (
        lambda root, t: root / "jobs" / t["jobs"][0] / "job.json",
        {
            "truncated": _truncate,
            "garbage": _garbage,
            "list": _json_edit(_as_list),
            "wrong_type": _json_edit(_set("status", 5)),
            "missing_key": _json_edit(_drop("job_id")),
        },
        "job",
    ),
    "precomputed.sqlite": (
        lambda root, t: root / "precomputed.sqlite",
        {
            "truncated": _truncate,
            "garbage": _garbage,
            "foreign_tables": _foreign_sqlite,
            "wrong_meta": _sql("UPDATE tables SET meta = '[1, 2]'"),
            "wrong_value": _sql("UPDATE topk SET value = '{\"a\": 1}'"),
        },
        "precomputed",
    ),
}

CASES = [(kind, variant) for kind, (_, variants, _) in KINDS.items() for variant in variants]


# ---------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------
def _items(resp: Any) -> list[str]:
    assert resp.status_code == 200, resp.get_json()
    return [e["item_id"] for e in resp.get_json()["items"]]


def _render(node: Any) -> str:
    """The component tree as the JSON Dash sends (raises if something is not renderable)."""
    return json.dumps(node, cls=plotly.utils.PlotlyJSONEncoder)


def _layouts(runs: dict[str, str]) -> dict[str, str]:
    """Every page's layout, plain and for each run, as rendered JSON text."""
    out = {}
    for name in PAGES:
        layout = sys.modules[f"pages.{name}"].layout
        out[name] = _render(layout())
        for key, run_id in runs.items():
            if name in ("explore", "map"):
                out[f"{name}?run={key}"] = _render(layout(run=run_id))
            if name == "compare":
                out[f"compare?runs={key}"] = _render(layout(runs=f"{run_id},{runs['B']}"))
    out["explore?preset=women"] = _render(sys.modules["pages.explore"].layout(run=runs["B"], preset="women"))
    return out


def _check_app_up(client: Any, runs: dict[str, str]) -> dict[str, Any]:
    health = client.get("/api/v1/health")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    for path in ("/_dash-layout", "/_dash-dependencies", "/api/v1/presets"):
        assert client.get(path).status_code == 200, path
    listing = client.get("/api/v1/runs")
    assert listing.status_code == 200
    return {
        "runs": {r["run_id"]: r for r in listing.get_json()["runs"]},
        "body": listing.get_json(),
        "pages": _layouts(runs),
    }


def _check(
    kind: str,
    variant: str,
    root: Path,
    client: Any,
    t: dict[str, Any],
    reference: dict,
    capsys: pytest.CaptureFixture[str],
    restarted: bool,
) -> None:
    from recsys.__main__ import main

    runs = t["runs"]
    a, b = runs["A"], runs["B"]
    what = KINDS[kind][2]
    seen = _check_app_up(client, runs)
    listed = seen["runs"]

    # no other run is affected: B answers exactly what it answered before the damage
    assert _items(client.get(f"/api/v1/similar/{SEED}?run={b}&k=8")) == reference["B"]
    assert not listed[b]["damaged"] and not listed[runs["popularity"]]["damaged"]

    capsys.readouterr()
    assert main(["--data-dir", str(root), "-q", "runs", "list"]) == 0
    cli = capsys.readouterr()
    b_line = next(line for line in cli.out.splitlines() if line.startswith(b))
    assert "DAMAGED" not in b_line

    if what == "run":
        # the damaged run is named, with the file at fault, everywhere runs are listed
        assert listed[a]["damaged"] is True and kind in listed[a]["error"], listed[a]
        a_line = next(line for line in cli.out.splitlines() if line.startswith(a))
        assert "DAMAGED" in a_line and kind in a_line
        assert a in seen["pages"]["runs"] and kind in seen["pages"]["runs"]
        for view in ("explore?run=A", "map?run=A"):  # its own view says why it shows another run
            assert f"run '{a}' is damaged" in seen["pages"][view], view
        # serving skips it with a clear error, not a 500
        for url in (f"/api/v1/similar/{SEED}?run={a}", f"/api/v1/runs/{a}" if kind == "run.json" else None):
            if url is None:
                continue
            resp = client.get(url)
            assert resp.status_code == 503, (url, resp.status_code, resp.get_json())
            assert (
                a in resp.get_json()["error"]["message"] and "damaged" in resp.get_json()["error"]["message"]
            )
        # and the default run is never the damaged one: serving falls back to another run
        assert seen["body"]["default_run"] != a
        assert client.get(f"/api/v1/similar/{SEED}").status_code == 200
        return
    assert not any(r["damaged"] for r in listed.values()), listed
    assert _items(client.get(f"/api/v1/similar/{SEED}?run={a}&k=8")) == reference["A"]
    if what == "active":
        if variant != "dangling":
            assert any("active.json" in w for w in seen["body"]["warnings"])
            assert "active.json" in seen["pages"]["runs"] and "active.json" in cli.err
        assert seen["body"]["default_run"] in (a, b)
    elif what == "preset":
        resp = client.get(f"/api/v1/similar/{SEED}?run={b}&preset=women")
        assert resp.status_code == 503, resp.get_json()
        assert "preset 'women' is damaged" in resp.get_json()["error"]["message"]
        assert _items(client.get(f"/api/v1/similar/{SEED}?run={b}&preset=men&k=8")) == reference["B_men"]
        assert (
            "women" in seen["pages"]["explore?preset=women"]
            and "damaged" in seen["pages"]["explore?preset=women"]
        )
        names = [p["name"] for p in client.get("/api/v1/presets").get_json()["presets"]]
        assert names == ["men"]
    elif what == "dataset":
        for page in ("data", "overview"):
            assert "tiny" in seen["pages"][page] and "damaged" in seen["pages"][page], page
        capsys.readouterr()
        assert main(["--data-dir", str(root), "datasets"]) == 0
        out = capsys.readouterr().out
        assert "tiny" in out and "DAMAGED" in out
    elif what == "job":
        poll = sys.modules["components.jobs"].poll_jobs
        data = poll(1, None, None)[0]
        by_id = {j["id"]: j for j in data["jobs"]}
        bad, good = t["jobs"]
        assert by_id[good]["status"] == "done"
        assert by_id[bad]["status"] == "damaged" and "damaged" in by_id[bad]["error"]
    elif what == "precomputed":
        resp = client.get(f"/api/v1/similar/{SEED}?run={a}&preset=women&source=precomputed&k=5")
        if not restarted and resp.status_code == 200:
            # a connection opened before the damage may still read the good pages it holds
            assert _items(resp) == reference["A_pre"]
        else:
            assert resp.status_code == 503, resp.get_json()
            assert "precomputed store" in resp.get_json()["error"]["message"]


@pytest.fixture(scope="module")
def reference(template: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What runs A and B answer on the pristine data (and that the pristine app is up)."""
    root = tmp_path_factory.mktemp("reference") / "data"
    shutil.copytree(template["root"], root)
    with pytest.MonkeyPatch.context() as mp:
        client = _fresh_app(root, mp).server.test_client()
        runs = template["runs"]
        seen = _check_app_up(client, runs)
        assert not any(r["damaged"] for r in seen["runs"].values())
        out = {
            "A": _items(client.get(f"/api/v1/similar/{SEED}?run={runs['A']}&k=8")),
            "B": _items(client.get(f"/api/v1/similar/{SEED}?run={runs['B']}&k=8")),
            "B_men": _items(client.get(f"/api/v1/similar/{SEED}?run={runs['B']}&preset=men&k=8")),
        }
        pre = client.get(f"/api/v1/similar/{SEED}?run={runs['A']}&preset=women&source=precomputed&k=5")
        out["A_pre"] = _items(pre)
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "variant"), CASES, ids=[f"{k}-{v}" for k, v in CASES])
def test_one_damaged_file_names_its_owner_and_takes_nothing_else_down(
    kind: str,
    variant: str,
    template: dict[str, Any],
    reference: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "data"
    shutil.copytree(template["root"], root)
    locate, variants, _ = KINDS[kind]
    target = locate(root, template)
    assert target.exists()

    # damage while the app runs, after every cache was filled from the good file
    client = _fresh_app(root, monkeypatch).server.test_client()
    runs = template["runs"]
    assert _items(client.get(f"/api/v1/similar/{SEED}?run={runs['A']}&k=8")) == reference["A"]
    assert client.get("/api/v1/health").get_json()["default_run"] == runs["A"]  # the active run
    assert _items(client.get(f"/api/v1/similar/{SEED}?k=8")) == reference["A"]
    pre = client.get(f"/api/v1/similar/{SEED}?run={runs['A']}&preset=women&source=precomputed&k=5")
    assert pre.status_code == 200
    sys.modules["components.jobs"].poll_jobs(1, None, None)
    before = target.read_bytes()
    variants[variant](target)
    assert target.read_bytes() != before
    _check(kind, variant, root, client, template, reference, capsys, restarted=False)

    # and the app started on the damaged directory
    client = _fresh_app(root, monkeypatch).server.test_client()
    _check(kind, variant, root, client, template, reference, capsys, restarted=True)


def test_the_matrix_covers_every_stored_kind_three_ways() -> None:
    """Every kind of file named in the issue, each truncated, garbage and of a wrong shape."""
    assert set(KINDS) == {
        "run.json",
        "model.json",
        "item_ids.npy",
        "vectors.npy",
        "query_vectors.npy",
        "active.json",
        "preset",
        "report.json",
        "job.json",
        "precomputed.sqlite",
    }
    for _, variants, _ in KINDS.values():
        assert {"truncated", "garbage"} <= set(variants) and len(variants) >= 4
    assert len(CASES) == 50

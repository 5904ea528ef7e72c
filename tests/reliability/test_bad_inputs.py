"""Bad input, tried the way users and attackers send it: REST parameters and bodies, CLI
parameters, CLI import files, Data-page and Runs-page form values, and preset files.

Every case asserts a clear message (what is wrong, and where: the field, file or
parameter), no traceback, no 5xx, and byte-identical stored data. The case count
is in the README (``len(REST_CASES) + ...``; ``pytest --collect-only -q tests/reliability``).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from tests._stored import tree_digest

# ---------------------------------------------------------------------------
# a small data directory: the demo shop, a popularity and a prod2vec run, a preset
# ---------------------------------------------------------------------------
SEED = "P000001"


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    from recsys.data.schema import save_dataset
    from recsys.data.synthetic import generate_demo
    from recsys.filters import FilterConfig, PresetStore
    from recsys.pipeline import train_run

    root = tmp_path_factory.mktemp("bad-inputs")
    save_dataset(generate_demo(n_items=200, n_sequences=400, seed=0), root)
    train_run("popularity", {}, "demo", root, activate=True)
    meta = train_run(
        "prod2vec", {"vector_size": 8, "epochs": 2, "min_count": 1, "workers": 1}, "demo", root, activate=True
    )
    PresetStore(root).save("same-cat", FilterConfig(same_category=True))
    return root, meta["run_id"]


@pytest.fixture
def unchanged(stored):
    """Asserts, after the test, that no stored byte changed."""
    root, _ = stored
    before = tree_digest(root)
    yield
    assert tree_digest(root) == before


def _clear(message: str, *where: str) -> None:
    assert message and "Traceback" not in message and 'File "' not in message, message
    low = message.lower()
    for w in where:
        assert w.lower() in low, f"{w!r} not named in: {message}"


# ---------------------------------------------------------------------------
# REST
# ---------------------------------------------------------------------------
DEEP = "[" * 3000 + "]" * 3000

#: (method, path, json body or raw string, expected status, words the message must name)
REST_CASES = [
    ("get", f"/similar/{SEED}?k=-1", None, 400, ["'k'", "between 1 and"]),
    ("get", f"/similar/{SEED}?k=0", None, 400, ["'k'"]),
    ("get", f"/similar/{SEED}?k=201", None, 400, ["'k'", "200"]),
    ("get", f"/similar/{SEED}?k=abc", None, 400, ["'k'", "integer"]),
    ("get", f"/similar/{SEED}?k=1.5", None, 400, ["'k'"]),
    ("get", f"/similar/{SEED}?k=1e9", None, 400, ["'k'"]),
    ("get", f"/similar/{SEED}?run=nope", None, 404, ["nope"]),
    ("get", "/similar/NOT-AN-ITEM", None, 404, ["NOT-AN-ITEM"]),
    ("get", "/similar/" + "x" * 10_000, None, 404, ["not"]),
    ("get", f"/similar/{SEED}?source=cache", None, 400, ["'source'"]),
    ("get", f"/similar/{SEED}?filters=%7Bbad", None, 400, ["'filters'", "json"]),
    ("get", f"/similar/{SEED}?filters=%5B%5D", None, 400, ["'filters'", "object"]),
    ("get", f"/similar/{SEED}?filters=" + "%5B" * 3000, None, 400, ["'filters'"]),
    ("get", f'/similar/{SEED}?filters={{"same_category": "maybe"}}', None, 422, ["same_category"]),
    ("get", f'/similar/{SEED}?filters={{"category_level": "abc"}}', None, 422, ["category_level"]),
    ("get", f'/similar/{SEED}?filters={{"category_level": -3}}', None, 422, ["category_level"]),
    ("get", f'/similar/{SEED}?filters={{"no_such_rule": 1}}', None, 422, ["no_such_rule"]),
    ("get", f'/similar/{SEED}?filters={{"min_similarity": "high"}}', None, 422, ["min_similarity"]),
    ("get", f'/similar/{SEED}?filters={{"max_per_brand": -1}}', None, 422, ["max_per_brand"]),
    ("get", f"/similar/{SEED}?preset=nope", None, 404, ["nope"]),
    ("get", f"/similar/{SEED}?preset=../../etc/passwd", None, 400, ["preset"]),
    ("get", f'/similar/{SEED}?preset=same-cat&filters={{"same_gender": true}}', None, 400, ["either"]),
    ("get", f"/similar/{SEED}?source=precomputed&preset=same-cat", None, 404, ["precompute"]),
    ("post", "/similar", "{not json", 400, ["json"]),
    ("post", "/similar", "[1, 2]", 400, ["object"]),
    ("post", "/similar", {}, 400, ["'item_id'"]),
    ("post", "/similar", {"item_id": 5}, 400, ["'item_id'"]),
    ("post", "/similar", {"item_id": SEED, "colour": "red"}, 400, ["colour"]),
    ("post", "/similar", {"item_id": SEED, "k": True}, 400, ["'k'"]),
    ("post", "/similar", {"item_id": SEED, "k": "ten"}, 400, ["'k'"]),
    ("post", "/similar", {"item_id": SEED, "filters": [1]}, 400, ["'filters'"]),
    ("post", "/similar", DEEP, 400, ["nested"]),
    ("post", "/similar", "\udcff", 400, ["json"]),
    ("post", "/similar", '{"item_id": "' + "a" * 70_000 + '"}', 413, ["exceeds"]),
    ("post", "/recommend", {}, 400, ["'recent_item_ids'"]),
    ("post", "/recommend", {"recent_item_ids": "P000001"}, 400, ["'recent_item_ids'", "list"]),
    ("post", "/recommend", {"recent_item_ids": []}, 400, ["'recent_item_ids'"]),
    ("post", "/recommend", {"recent_item_ids": [1, 2]}, 400, ["'recent_item_ids'", "strings"]),
    ("post", "/recommend", {"recent_item_ids": [SEED] * 101}, 400, ["at most 100"]),
    ("post", "/recommend", {"recent_item_ids": [SEED], "k": -1}, 400, ["'k'"]),
    ("post", "/recommend", {"recent_item_ids": [SEED], "user": "u1"}, 400, ["user"]),
    ("post", "/recommend", DEEP, 400, ["nested"]),
    ("put", "/presets/good-name", "[]", 400, ["object"]),
    ("put", "/presets/good-name", {"config": 5}, 400, ["'config'"]),
    ("put", "/presets/good-name", {"config": {"same_category": "maybe"}}, 422, ["same_category"]),
    ("put", "/presets/good-name", {"config": {"category_level": "abc"}}, 422, ["category_level"]),
    ("put", "/presets/good-name", {"config": {"unknown_rule": True}}, 422, ["unknown_rule"]),
    ("put", "/presets/bad%20name%21", {"config": {}}, 400, ["name"]),
    ("put", "/presets/" + "n" * 10_000, {"config": {}}, 400, ["name"]),
    ("put", "/presets/good-name", DEEP, 400, ["nested"]),
    ("delete", "/presets/nope", None, 404, ["nope"]),
    ("delete", "/runs/nope", None, 404, ["nope"]),
    ("get", "/runs/nope", None, 404, ["nope"]),
    ("get", "/runs/" + "r" * 300, None, 404, ["not a valid run id"]),
    ("delete", "/runs/" + "r" * 300, None, 404, ["not a valid run id"]),
    ("get", f"/similar/{SEED}?run=" + "r" * 300, None, 404, ["not a valid run id"]),
    ("post", "/recommend", {"recent_item_ids": [SEED], "run": "r" * 300}, 404, ["not a valid run id"]),
    ("put", "/presets/mine%0A", {"config": {}}, 400, ["preset name", "invalid"]),
    ("get", "/presets/mine%0A", None, 400, ["preset name", "invalid"]),
    ("get", "/presets/nope", None, 404, ["nope"]),
    ("post", "/train", {}, 400, ["'family'"]),
    ("post", "/train", {"family": "deep_magic"}, 400, ["'family'", "prod2vec"]),
    ("post", "/train", {"family": "prod2vec", "params": [1]}, 400, ["'params'"]),
    ("post", "/train", {"family": "prod2vec", "params": {"windw": 3}}, 400, ["windw", "allowed"]),
    ("post", "/train", {"family": "prod2vec", "params": {"window": -1}}, 400, ["window"]),
    ("post", "/train", {"family": "prod2vec", "params": {"epochs": "many"}}, 400, ["epochs"]),
    ("post", "/train", {"family": "popularity", "dataset": "nope"}, 404, ["nope"]),
    ("post", "/train", {"family": "popularity", "label": 5}, 400, ["'label'"]),
    ("post", "/train", {"family": "popularity", "priority": "high"}, 400, ["priority"]),
    ("post", "/train", DEEP, 400, ["nested"]),
    ("post", "/tune", {}, 400, ["'family'"]),
    ("post", "/tune", {"family": "cooccurrence"}, 400, ["'family'", "prod2vec"]),
    ("post", "/tune", {"family": "prod2vec", "budget": "forever"}, 400, ["budget"]),
    ("post", "/tune", {"family": "prod2vec", "trials": -2}, 400, ["'trials'"]),
    ("post", "/tune", {"family": "prod2vec", "sample": 0}, 400, ["'sample'"]),
    ("post", "/tune", {"family": "prod2vec", "params": {"windw": 3}}, 400, ["windw", "allowed"]),
    ("post", "/tune", {"family": "prod2vec", "priority": "high"}, 400, ["priority"]),
    ("post", "/tune", DEEP, 400, ["nested"]),
    ("get", "/no/such/endpoint", None, 404, ["no endpoint"]),
    ("patch", "/similar", None, 405, ["not allowed"]),
]


@pytest.fixture(scope="module")
def api(stored):
    import flask

    from recsys.serving import register_api

    root, _ = stored
    app = flask.Flask("bad-inputs")
    register_api(app, root=root)
    return app.test_client()


@pytest.mark.parametrize(("method", "path", "body", "status", "words"), REST_CASES)
def test_rest_bad_input_gets_a_clear_4xx(api, unchanged, method, path, body, status, words):
    kwargs = {}
    if isinstance(body, str):
        kwargs = {"data": body.encode("utf-8", "surrogateescape"), "content_type": "application/json"}
    elif body is not None:
        kwargs = {"json": body}
    resp = getattr(api, method)(f"/api/v1{path}", **kwargs)
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:300])
    err = resp.get_json()["error"]
    _clear(err["message"], *words)


# ---------------------------------------------------------------------------
# CLI parameters
# ---------------------------------------------------------------------------
CLI_CASES = [
    (["train", "deep_magic"], ["deep_magic", "prod2vec"]),
    (["train", "prod2vec", "--param", "window=-1"], ["window"]),
    (["train", "prod2vec", "--param", "window=abc"], ["window"]),
    (["train", "prod2vec", "--param", "windw=3"], ["windw"]),
    (["train", "prod2vec", "--param", "window"], ["window"]),
    (["train", "popularity", "--dataset", "nope"], ["nope"]),
    (["train", "popularity", "--k", "0"], ["--k"]),
    (["runs", "show", "nope"], ["nope"]),
    (["runs", "delete", "nope"], ["nope"]),
    (["runs", "activate", "nope"], ["nope"]),
    (["runs", "show"], ["run"]),
    (["evaluate", "nope"], ["nope"]),
    (["evaluate", "RUN", "--k", "-3"], ["--k"]),
    (["precompute", "--run", "nope", "--preset", "same-cat"], ["nope"]),
    (["precompute", "--run", "RUN", "--preset", "nope"], ["nope"]),
    (["precompute", "--run", "RUN", "--preset", "../x"], ["preset"]),
    (["import", "csv", "/definitely/not/here.csv"], ["not"]),
    (["import", "bogus_source", "x.csv"], ["bogus_source"]),
    (["import", "csv", "FILE", "--errors", "maybe"], ["--errors"]),
    (["demo", "--items", "5"], ["--items"]),
]


def _cli(args: list[str], root: Path, capsys) -> tuple[int, str]:
    from recsys.__main__ import main

    try:
        code = main(["--data-dir", str(root), "-q", *args])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    err = capsys.readouterr().err
    return int(code or 0), err


@pytest.mark.parametrize(("args", "words"), CLI_CASES)
def test_cli_bad_parameter_gets_a_clear_message(stored, unchanged, capsys, tmp_path, args, words):
    root, run_id = stored
    (tmp_path / "f.csv").write_text("session_id,item_id\ns1,a\ns1,b\n")
    args = [run_id if a == "RUN" else str(tmp_path / "f.csv") if a == "FILE" else a for a in args]
    code, err = _cli(args, root, capsys)
    assert code == 2, err
    _clear(err, *words)


# ---------------------------------------------------------------------------
# CLI import files
# ---------------------------------------------------------------------------
GOOD_HEADER = "session_id,item_id,price\n"
IMPORT_FILES = {
    "empty.csv": b"",
    "header_only.csv": GOOD_HEADER.encode(),
    "garbage.csv": bytes(range(256)) * 20,
    "not_gzip.csv.gz": b"this is not gzip at all",
    "truncated.csv.gz": __import__("gzip").compress((GOOD_HEADER + "s1,a,1\n" * 500).encode())[:60],
    "not_parquet.parquet": b"PAR1 but not really",
    "latin1.csv": (GOOD_HEADER + "s1,caf\xe9,1\n").encode("latin-1"),
    "negative_price.csv": (GOOD_HEADER + "s1,a,-3\ns1,b,2\n").encode(),
    "text_price.csv": (GOOD_HEADER + "s1,a,cheap\ns1,b,2\n").encode(),
    "no_item_column.csv": b"session_id,price\ns1,1\ns1,2\n",
    "empty_ids.csv": (GOOD_HEADER + ",,1\n,,2\n").encode(),
    "ragged.csv": (GOOD_HEADER + 's1,a,1\ns1,"b,2\n').encode(),
    "only_blank_lines.csv": b"\n\n\n",
    "a_folder": None,
}


@pytest.mark.parametrize("name", sorted(IMPORT_FILES))
def test_cli_import_of_a_malformed_file_names_it_and_stores_nothing(
    stored, unchanged, capsys, tmp_path, name
):
    root, _ = stored
    path = tmp_path / name
    if IMPORT_FILES[name] is None:
        path.mkdir()
    else:
        path.write_bytes(IMPORT_FILES[name])
    code, err = _cli(
        ["import", "csv", str(path), "--name", "shop", "--map", "session_id=sequence_id", "item_id=item_id"],
        root,
        capsys,
    )
    assert code == 2, err
    _clear(err, "error:")
    assert name.split(".")[0] in err or "column" in err.lower() or "row" in err.lower(), err


# ---------------------------------------------------------------------------
# Data page and Runs page form values (what a user can type)
# ---------------------------------------------------------------------------
@pytest.fixture
def pages(stored, monkeypatch, tmp_path):
    from tests.callbacks._pages import page

    root, _ = stored
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    monkeypatch.setenv("RECSYS_IMPORT_DIR", str(tmp_path / "imports"))
    return page("data"), page("runs"), page("explore")


def _alert_text(component) -> str:
    from tests.callbacks._pages import text_of

    return text_of(component)


PATHS = {
    "blank": ("   ", ["type the path"]),
    "too long": ("/" + "a" * 10_000, ["10,001 characters"]),
    "outside": ("/etc/passwd", ["import folder"]),
    "climbing out": ("../../../../etc/passwd", ["import folder"]),
    "nul": ("a\x00b.csv", ["nul"]),
    "missing inside": ("nope.csv", ["no such file"]),
    "the folder itself": (".", ["folder"]),
    "fifo": ("pipe.csv", ["not a regular file"]),
}


@pytest.mark.parametrize("case", sorted(PATHS))
def test_data_page_path_box_refuses_what_it_may_not_read(pages, unchanged, tmp_path, case):
    data_page, _, _ = pages
    (tmp_path / "imports").mkdir(exist_ok=True)
    os.mkfifo(tmp_path / "imports" / "pipe.csv")  # opening it would block: it must be refused from stat
    typed, words = PATHS[case]
    _, alert, _ = data_page.inspect_file(1, typed, "csv")
    _clear(_alert_text(alert), *words)
    alert, job = data_page.start_import(1, "csv", typed, "shop", [], [])
    assert job is None or job == data_page.no_update if hasattr(data_page, "no_update") else True
    _clear(_alert_text(alert))


FORM_CASES = [
    ("prod2vec", {"window": "abc"}, ["window"]),
    ("prod2vec", {"window": "2.5"}, ["window"]),
    ("prod2vec", {"epochs": ""}, ["epochs"]),
    ("prod2vec", {"alpha": "fast"}, ["alpha"]),
]


@pytest.mark.parametrize(("family", "values", "words"), FORM_CASES)
def test_runs_form_refuses_bad_parameter_values(pages, unchanged, family, values, words):
    _, runs_page, _ = pages
    names = list(values)
    alert = runs_page.start_training(
        1, family, "demo", None, list(values.values()), [{"name": n} for n in names]
    )
    _clear(_alert_text(alert), *words)


def test_explore_k_typed_out_of_range_gets_a_message(pages, stored, unchanged):
    _, _, explore = pages
    _, run_id = stored
    for bad in (-1, "abc", 10_000):
        out = explore.explore_results(run_id, SEED, bad, {})
        _clear(_alert_text(out["message"]), "'k'")


# ---------------------------------------------------------------------------
# preset files (upload on Explore)
# ---------------------------------------------------------------------------
def _upload(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return "data:application/octet-stream;base64," + base64.b64encode(raw).decode()


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi")
)

PRESET_FILES = [
    ("p.json", "{not json", ["p.json"]),
    ("p.json", "[1, 2, 3]", ["p.json"]),
    ("p.json", json.dumps({"name": "x", "filters": {"same_category": "maybe"}}), ["same_category"]),
    ("p.json", json.dumps({"name": "x", "filters": {"category_level": "abc"}}), ["category_level"]),
    ("p.json", json.dumps({"name": "x", "filters": {"no_such_rule": 1}}), ["no_such_rule"]),
    ("p.json", json.dumps({"name": "../../etc/x", "filters": {}}), ["name"]),
    ("p.json", json.dumps({"name": "x" * 500, "filters": {}}), ["name"]),
    ("p.json", json.dumps({"name": "x", "filters": {"price_band": "cheap"}}), ["p.json"]),
    ("p.json", "[" * 3000 + "]" * 3000, ["p.json"]),
    ("p.yaml", "name: x\nconfig: [unclosed", ["p.yaml"]),
    ("p.yaml", "!!python/object/apply:os.system ['true']", ["p.yaml"]),
    ("p.yaml", LAUGHS, ["p.yaml"]),
    ("p.yaml", "", ["p.yaml"]),
    ("p.json", b"\xff\xfe\x00binary", ["utf-8"]),
    ("p.json", "x" * 300_000, ["too large"]),
]


@pytest.mark.parametrize(("filename", "text", "words"), PRESET_FILES)
def test_preset_upload_of_a_bad_file_names_what_is_wrong(pages, stored, unchanged, filename, text, words):
    _, _, explore = pages
    root, _ = stored
    from components.presets import PRESET_UPLOAD

    out = explore.preset_action_impl(
        {"type": PRESET_UPLOAD, "panel": "explore"}, None, _upload(text), filename, None, {}, root=root
    )
    _clear(_alert_text(out["message"]), *words)

"""What a training job's card says while it runs: every phase names itself, and the bar never
goes back. Training prod2vec on Online Retail from the Runs page, the card read "evaluating:
2749/2749 seeds" for nine minutes while the model was fitted again for the validation score."""

from __future__ import annotations

from recsys.pipeline import train_run
from tests._serving_data import make_serving_data


def test_the_validation_fit_reports_itself_and_the_bar_only_moves_on(tmp_path):
    make_serving_data(tmp_path)
    heard: list[tuple[int, str]] = []
    train_run(
        "cooccurrence",
        dataset_name="tiny",
        root=tmp_path,
        validate=True,
        progress=lambda done, total, message="": heard.append((int(1000 * done / total), message)),
    )
    messages = [m for _, m in heard]
    validation = [i for i, m in enumerate(messages) if m.startswith("validation score")]
    assert validation, messages
    evaluating = [i for i, m in enumerate(messages) if m.startswith("evaluating")]
    saving = [i for i, m in enumerate(messages) if m.startswith("building index and saving")]
    assert max(evaluating) < min(validation) < max(validation) < min(saving)
    # the recent-views scoring after the evaluation names itself (Taobao: minutes at "6144/6151 seeds")
    recent = [i for i, m in enumerate(messages) if m.startswith("evaluating: recent views")]
    assert len(recent) == 2 and max(evaluating) == max(recent) < min(validation), messages
    assert any("fitting" in messages[i] for i in validation) and any(
        "scoring" in messages[i] for i in validation
    )
    # each phase named once (s37-u: "evaluating: evaluating: 1024/2562 seeds")
    assert not [
        m for m in messages if m.startswith(("evaluating: evaluating", "training cooccurrence: cooccurrence"))
    ]
    bar = [b for b, _ in heard]
    assert bar == sorted(bar), heard

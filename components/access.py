"""Which Dash callbacks change server state: the one declared list the login's role check reads.

Every server-side callback is named here once, as ``module.function``, either in
:data:`READ_CALLBACKS` or in :data:`WRITE_CALLBACKS`. A write needs the editor
role once a login is configured (``recsys.auth``); a viewer gets a 403. A
callback missing from both lists is treated as a write (fail closed), and
``tests/integration/test_auth.py`` fails until it is classified.

A callback that writes only for some of its inputs (Explore's preset callback
loads on a dropdown change but saves, deletes and uploads on buttons) lists the
component ids, or pattern-id ``type`` values, of the inputs that make it a write.
Buttons of write callbacks carry the ``editor-only`` CSS class, which the shell
hides for viewers.
"""

from __future__ import annotations

import json
from typing import Any

from components.presets import PRESET_DELETE, PRESET_SAVE, PRESET_UPLOAD

#: Callbacks that only read (or only change the browser's own state).
READ_CALLBACKS: frozenset[str] = frozenset(
    {
        "dash.dash.Dash.enable_pages.<locals>.router_sync.<locals>.update",  # Dash's page router
        "components.filter_panel.add_banned_pair",
        "components.image_features.show_image_status",  # counts the local images; writes nothing
        "components.jobs.poll_jobs",
        "components.vetting_panels.run_checks_panel",  # computes the checks; writes nothing
        "components.vetting_panels.update_precision",
        "components.vectors_io.download_export",  # builds the zip in a temporary folder only
        "components.tuning.show_tuning_job",
        "components.vectors_io.refresh_export_runs",
        "components.vectors_io.show_mlflow_link",
        "components.vectors_io.show_vectors_import",
        "pages.compare.follow_pair",  # "Find" waits for two different runs; no data
        "pages.compare.follow_runs",  # the seed and the disagreement pair follow the runs; no data
        "pages.compare.limit_runs",
        "pages.compare.load_preset",
        "pages.compare.update_disagreement",
        "pages.compare.update_lists",
        "pages.compare.update_per_category",
        "pages.compare.update_seed_options",
        "pages.compare.update_session_options",
        "pages.compare.update_vetted",
        "pages.data.inspect_file",
        "pages.data.preview_import",  # a dry run: stores nothing
        "pages.data.show_import",
        "pages.data.source_hint",
        "pages.explore.describe_run",  # the Variant line: what the run shown is
        "pages.explore.download",
        "pages.explore.edit_session",
        "pages.explore.follow_run_dataset",
        "pages.explore.open_other_dataset",  # a run of another dataset: the page reopens on it
        "pages.explore.reseed_for_run",  # the seed box follows a run switch; changes no data
        "pages.explore.run_impact",
        "pages.explore.similarity_range",
        "pages.explore.update_results",
        "pages.explore.update_seed_card",
        "pages.explore.update_seed_options",
        "pages.explore.update_session",
        "pages.map.complete_map",
        "pages.map.draw_map",
        "pages.map.follow_umap",  # whether "Compute UMAP" is offered; no data
        "pages.map.highlight",
        "pages.map.list_selection",
        "pages.map.open_in_explore",
        "pages.map.show_tooltip",
        "pages.map.update_purity",
        "pages.overview.track_demo_build",
        "pages.overview.update_content",
        "pages.overview.update_jobs",
        "pages.runs.ask_delete",
        "pages.runs.enable_actions",
        "pages.runs.family_for_dataset",  # the form's family for the chosen dataset; changes no data
        "pages.runs.poll_device",  # probes the accelerator; changes no data
        "pages.runs.refresh_runs",
        "pages.runs.show_evaluation_note",  # the line under "Evaluation"; changes no data
        "pages.runs.show_jobs",
        "pages.runs.show_params",
        "pages.runs.show_tuning",
        "pages.vetting.export_judgments",
        "pages.vetting.load_queue",
        "pages.vetting.open_proposal",  # shows the proposed rules; confirm_rule saves
        "pages.vetting.show_progress",
        "pages.vetting.show_seed",
        "pages.vetting.update_modes",
        "pages.vetting.update_queues",
        "pages.vetting.update_runs",
    }
)

#: Callbacks that change server state -> None (always) or the inputs that make them write.
WRITE_CALLBACKS: dict[str, frozenset[str] | None] = {
    "components.image_features.start_image_training": None,
    "components.jobs.cancel_job": None,
    "components.tuning.start_tuning": None,
    "components.vectors_io.start_vectors_import": None,
    "pages.data.receive_upload": None,
    "pages.data.start_import": None,
    "pages.explore.preset_action": frozenset({PRESET_SAVE, PRESET_DELETE, PRESET_UPLOAD}),
    "pages.map.submit_umap": None,
    "pages.runs.confirm_delete": None,
    "pages.runs.run_action": None,
    "pages.runs.start_training": None,
    "pages.vetting.build_queue": None,
    "pages.vetting.confirm_rule": None,
    "pages.vetting.import_judgments": None,
    "pages.vetting.store_judgments": None,
}


def callback_name(func: Any) -> str:
    """``module.function`` of a callback (Dash keeps the user's function as ``__wrapped__``)."""
    inner = getattr(func, "__wrapped__", func)
    return f"{getattr(inner, '__module__', '?')}.{getattr(inner, '__qualname__', '?')}"


def _trigger_key(prop_id: str) -> str:
    """``'{"type":"preset-save","panel":"explore"}.n_clicks'`` -> ``preset-save``; ``'a.b'`` -> ``a``."""
    ident = prop_id.rsplit(".", 1)[0]
    if ident.startswith("{"):
        try:
            parsed = json.loads(ident)
        except ValueError:
            return ident
        if isinstance(parsed, dict):
            return str(parsed.get("type", ident))
    return ident


def is_write(name: str, changed_prop_ids: Any = ()) -> bool:
    """Whether the callback ``name`` changes server state when these inputs fired.

    Unknown callbacks count as writes (fail closed).
    """
    if name in READ_CALLBACKS:
        return False
    if name not in WRITE_CALLBACKS:
        return True
    triggers = WRITE_CALLBACKS[name]
    if triggers is None:
        return True
    changed = changed_prop_ids if isinstance(changed_prop_ids, list) else []
    return any(isinstance(p, str) and _trigger_key(p) in triggers for p in changed)


def dash_request_is_write(app: Any, body: Any) -> bool:
    """Whether a ``/_dash-update-component`` request body asks for a write.

    A body that names no known callback counts as a write: it cannot do
    anything useful for a viewer, and failing closed keeps it harmless.
    """
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        return True
    entry = app.callback_map.get(body["output"])
    if entry is None:
        return True
    return is_write(callback_name(entry.get("callback")), body.get("changedPropIds"))

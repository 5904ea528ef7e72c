"""The Runs page's "Image embeddings" card: train the content model with image features.

For a dataset whose catalogue points at files of its images folder
(``<data dir>/datasets/<name>/images``, see :mod:`recsys.images`), the card says how many
catalogue items have a local image, and an editor starts a ``train`` job of family
``content`` with ``image_features=True`` (:func:`recsys.jobs.kinds.submit_train`): the
keras.applications backbone (:mod:`recsys.models.image`) reads the images with the weights
file :func:`recsys.models.image.weights_file` names. Nothing is downloaded, so without that
file the card says why it cannot start and which file it needs (and how to make it).
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update

from components.common import list_datasets
from components.jobs import job_store
from components.layout import error_alert, info_alert, section
from recsys.config import data_dir
from recsys.errors import RecsysError
from recsys.models.image import BACKBONES

IMG_DATASET = "runs-img-dataset"
IMG_BACKBONE = "runs-img-backbone"
IMG_STATUS = "runs-img-status"
IMG_SUBMIT = "runs-img-submit"
IMG_MESSAGE = "runs-img-message"

#: keras.applications backbones offered (the extractor's; importing them loads no Keras)
BACKBONE_CHOICES = tuple(BACKBONES)


def _default_dataset(names: list[str], root: Any) -> str | None:
    """The first dataset with an images folder (else the first dataset)."""
    from recsys.images import images_dir

    for name in names:
        try:
            if images_dir(name, root).is_dir():
                return name
        except RecsysError:
            continue
    return names[0] if names else None


def image_features_section(root: Any = None) -> Any:
    """The card (its status is filled by :func:`show_image_status`)."""
    try:
        names = list_datasets(root or data_dir())
    except (OSError, RecsysError):
        names = []
    return section(
        "Image embeddings",
        [
            dbc.Row(
                [
                    dbc.Col(
                        dcc.Dropdown(
                            id=IMG_DATASET,
                            options=[{"label": n, "value": n} for n in names],
                            value=_default_dataset(names, root),
                            placeholder="no dataset yet",
                            clearable=False,
                        ),
                        md=5,
                    ),
                    dbc.Col(
                        dcc.Dropdown(
                            id=IMG_BACKBONE,
                            options=[{"label": b, "value": b} for b in BACKBONE_CHOICES],
                            value=BACKBONE_CHOICES[0],
                            clearable=False,
                        ),
                        md=4,
                    ),
                    dbc.Col(
                        dbc.Button(
                            "Train with images",
                            id=IMG_SUBMIT,
                            color="primary",
                            className="w-100 editor-only",
                            disabled=True,
                            title="train the content model with image features of the local images",
                        ),
                        md=3,
                    ),
                ],
                className="g-2 mb-2",
            ),
            html.Div(id=IMG_STATUS, className="small"),
            html.Div(id=IMG_MESSAGE, className="mt-2"),
        ],
    )


def image_status(dataset: str | None, backbone: str | None, root: Any = None) -> tuple[Any, bool]:
    """(what the card says, whether the button is disabled) for a dataset and backbone."""
    from recsys.images import local_image_summary
    from recsys.models.image import weights_file

    if not dataset:
        return html.Div("Import a dataset first (Data page).", className="text-muted"), True
    if backbone not in BACKBONE_CHOICES:
        backbone = BACKBONE_CHOICES[0]
    try:
        summary = local_image_summary(dataset, root)
    except (OSError, RecsysError) as exc:
        return error_alert(exc, f"Cannot read dataset {dataset}", dismissable=False), True
    n, k = summary["items"], summary["with_image"]
    lines: list[Any] = [
        html.Div(
            [html.Strong(f"{k:,} of {n:,}"), f" catalogue items have a local image in {summary['folder']}"],
            **{"data-count": str(k)},
        )
    ]
    if summary["local_paths"] > k:
        lines.append(
            html.Div(
                f"{summary['local_paths'] - k:,} local image path(s) name no image file there "
                f"(e.g. {', '.join(summary['missing_examples'][:3])}): those items train as having no image.",
                className="text-warning",
            )
        )
    if k == 0:
        lines.append(
            html.Div(
                "No local images: put the files in that folder, with each item's image_url the path "
                "relative to it (e.g. shoes/123.jpg). http(s) images are shown in the cards but not read "
                "for training (nothing is downloaded).",
                className="text-muted",
            )
        )
        return html.Div(lines), True
    weights = weights_file(backbone, root)
    if not weights.is_file():
        lines.append(
            dbc.Alert(
                [
                    html.Strong("No weights file for the image feature extractor. "),
                    f"{backbone} needs its ImageNet weights to give meaningful image features, and nothing "
                    "is downloaded here. Put the weights of the backbone without its top at ",
                    html.Code(str(weights), className="img-weights-path"),
                    ", e.g. saved on a machine with internet access by ",
                    html.Code(
                        f'keras.applications.{backbone}(include_top=False, weights="imagenet", '
                        f'pooling="avg").save_weights("{weights.name}")'
                    ),
                    ".",
                ],
                color="warning",
                className="small mt-2 mb-0",
            )
        )
        return html.Div(lines), True
    lines.append(html.Div(["Weights: ", html.Code(str(weights))], className="text-muted"))
    return html.Div(lines), False


def image_training_params(backbone: str, root: Any = None) -> dict[str, Any]:
    """The content model's parameters of an image-embedding run."""
    from recsys.models.image import weights_file

    return {
        "image_features": True,
        "image_backbone": backbone,
        "image_weights_path": str(weights_file(backbone, root)),
    }


# -- callbacks -----------------------------------------------------------------------
@callback(
    Output(IMG_STATUS, "children"),
    Output(IMG_SUBMIT, "disabled"),
    Input(IMG_DATASET, "value"),
    Input(IMG_BACKBONE, "value"),
)
def show_image_status(dataset: str | None, backbone: str | None) -> tuple[Any, bool]:
    """How many items have a local image, and whether the weights file is there (read only)."""
    return image_status(dataset, backbone)


@callback(
    Output(IMG_MESSAGE, "children"),
    Input(IMG_SUBMIT, "n_clicks"),
    State(IMG_DATASET, "value"),
    State(IMG_BACKBONE, "value"),
    prevent_initial_call=True,
)
def start_image_training(n_clicks: int | None, dataset: str | None, backbone: str | None) -> Any:
    """Submit a ``train`` job of family ``content`` with image features (changes server state)."""
    from recsys.jobs.kinds import submit_train

    if not n_clicks:
        return no_update
    _status, disabled = image_status(dataset, backbone)
    if (
        disabled or not dataset or backbone not in BACKBONE_CHOICES
    ):  # the button was enabled for another choice
        return error_alert(
            "Pick a dataset with local images and a backbone whose weights file is there.", "Nothing started"
        )
    try:
        job_id = submit_train(
            job_store(),
            "content",
            dataset,
            image_training_params(backbone),
            label=f"content + images ({backbone})",
            job_label=f"Train content with {backbone} image features on {dataset}",
        )
    except RecsysError as exc:
        return error_alert(exc, "Could not start the training job")
    return info_alert(
        [
            html.Strong("Training started. "),
            f"content with {backbone} image features on {dataset} (job {job_id}).",
        ]
    )

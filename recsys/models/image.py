"""Image features from a keras.applications backbone (optional input of the content model).

Nothing is downloaded: the backbone is built with ``weights=None`` (random
weights: features still separate very different images, but carry no
ImageNet semantics) or loaded from a local weights file (``weights_path``,
e.g. a ``.weights.h5`` / ``.h5`` file saved from the same architecture with
``include_top=False``).

Only local files are read: catalogue rows whose ``image_url`` is a path to an
existing file. Missing, remote (``http...``) or unreadable images get a zero
feature row and are listed in ``failed_`` / ``failed_rows_``; they never stop
the extraction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import ModelFitError
from recsys.models import _keras_utils as ku
from recsys.models.params import Param, check_params

logger = logging.getLogger(__name__)

#: Backbones known to work at small input sizes, with their keras.applications constructor.
BACKBONES = {
    "MobileNetV3Small": "MobileNetV3Small",
    "MobileNetV3Large": "MobileNetV3Large",
    "MobileNetV2": "MobileNetV2",
    "EfficientNetB0": "EfficientNetB0",
    "ResNet50": "ResNet50",
}

#: the extractor's parameters (the content model passes backbone and image size through)
PARAMS: dict[str, Param] = {
    "backbone": Param("MobileNetV3Small", "choice", choices=tuple(BACKBONES)),
    "image_size": Param(96, "int", low=32),
    "batch_size": Param(32, "int", low=1),
}


#: Where the Runs page looks for a backbone's weights: ``<data dir>/weights/<backbone>.weights.h5``.
WEIGHTS_FOLDER = "weights"


def weights_file(backbone: str, root: str | None = None) -> Path:
    """The local weights file the Runs page uses for ``backbone`` (it may not exist):
    ``<data dir>/weights/<backbone>.weights.h5``, the backbone without its top, as
    ``keras.applications.<backbone>(include_top=False, weights="imagenet", pooling="avg")
    .save_weights(...)`` writes it on a machine that can download (nothing is downloaded here)."""
    from recsys.config import data_dir

    if backbone not in BACKBONES:
        raise ModelFitError(f"unknown image backbone {backbone!r}; one of {', '.join(BACKBONES)}")
    return data_dir(root) / WEIGHTS_FOLDER / f"{backbone}.weights.h5"


class ImageFeatureExtractor:
    """Pooled convolutional features of local image files.

    Parameters
    ----------
    backbone : str
        One of :data:`BACKBONES` (a ``keras.applications`` model name).
    weights_path : str, optional
        Local weights file for the backbone without its top; None builds it
        with random weights (``weights=None``). Never downloads.
    image_size : int
        Images are resized to ``image_size x image_size`` RGB (>= 32).
    batch_size : int
        Images per forward pass.
    normalize : bool
        L2-normalise each feature row (recommended with random weights, whose
        raw activations are tiny); zero rows of failed images stay zero.

    Attributes
    ----------
    failed_ : list of (str, str)
        ``(path, reason)`` of the images that could not be read in the last
        :meth:`extract` call.
    failed_rows_ : list of (int, str, str)
        The same with the row index in the input list.
    """

    def __init__(
        self,
        backbone: str = "MobileNetV3Small",
        weights_path: str | None = None,
        image_size: int = 96,
        batch_size: int = 32,
        normalize: bool = True,
    ) -> None:
        self.backbone = backbone
        self.weights_path = weights_path
        self.image_size = image_size
        self.batch_size = batch_size
        self.normalize = normalize
        self.failed_: list[tuple[str, str]] = []
        self.failed_rows_: list[tuple[int, str, str]] = []
        self._model: Any = None

    def _validate(self) -> None:
        name = type(self).__name__
        values = {"backbone": self.backbone, "image_size": self.image_size, "batch_size": self.batch_size}
        check_params(name, {k: PARAMS[k] for k in values}, values)
        if self.weights_path is not None and not Path(str(self.weights_path)).is_file():
            raise ModelFitError(
                f"{name}: parameter 'weights_path' points to {self.weights_path}, which is not a file; "
                "give a local weights file or None for random weights (nothing is downloaded)"
            )

    def model(self) -> Any:
        """The backbone (built on first use), input (size, size, 3) floats in [0, 255]."""
        if self._model is None:
            self._validate()
            keras = ku.import_keras()
            ctor = getattr(keras.applications, BACKBONES[self.backbone])
            kwargs: dict[str, Any] = {
                "include_top": False,
                "weights": None,
                "input_shape": (self.image_size, self.image_size, 3),
                "pooling": "avg",
            }
            model = ctor(**kwargs)
            if self.weights_path is not None:
                try:
                    model.load_weights(str(self.weights_path))
                except Exception as exc:
                    raise ModelFitError(
                        f"{type(self).__name__}: could not load the weights file {self.weights_path} "
                        f"(parameter 'weights_path') into {self.backbone} without top: {exc}"
                    ) from exc
            self._model = model
            self._preprocess = getattr(
                getattr(keras.applications, _module_of(self.backbone)), "preprocess_input", None
            )
        return self._model

    @property
    def dim(self) -> int:
        """Feature size of the backbone."""
        return int(self.model().output_shape[-1])

    def _read(self, path: str) -> np.ndarray:
        keras = ku.import_keras()
        img = keras.utils.load_img(path, color_mode="rgb", target_size=(self.image_size, self.image_size))
        return np.asarray(keras.utils.img_to_array(img), dtype=np.float32)

    def extract(self, paths: Sequence[str]) -> np.ndarray:
        """Features of the images at ``paths`` (local files).

        Parameters
        ----------
        paths : sequence of str
            One path per item ("" or a URL counts as missing).

        Returns
        -------
        numpy.ndarray of float32, shape (len(paths), dim)
            Zero rows for images that could not be read (see ``failed_``).
        """
        model = self.model()
        self.failed_, self.failed_rows_ = [], []
        out = np.zeros((len(paths), self.dim), dtype=np.float32)
        batch: list[np.ndarray] = []
        rows: list[int] = []

        def flush() -> None:
            if not batch:
                return
            x = np.stack(batch)
            if self._preprocess is not None:
                x = self._preprocess(x)
            out[rows] = np.asarray(model.predict(x, verbose=0), dtype=np.float32)
            batch.clear()
            rows.clear()

        for i, raw in enumerate(paths):
            path = str(raw or "")
            reason = None
            if not path:
                reason = "no image path"
            elif path.startswith(("http://", "https://")):
                reason = "remote URL (only local files are read)"
            elif not Path(path).is_file():
                reason = "file not found"
            if reason is None:
                try:
                    batch.append(self._read(path))
                    rows.append(i)
                except Exception as exc:  # PIL raises several types for bad files
                    reason = f"unreadable: {type(exc).__name__}: {exc}"
            if reason is not None:
                self.failed_.append((path, reason))
                self.failed_rows_.append((i, path, reason))
            if len(batch) >= self.batch_size:
                flush()
        flush()
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = np.where(norms > 0, out / np.maximum(norms, 1e-30), 0.0).astype(np.float32)
        if self.failed_:
            logger.info(
                "image features: %d of %d images missing or unreadable (first: %s)",
                len(self.failed_),
                len(paths),
                self.failed_[0],
            )
        return out


def _module_of(backbone: str) -> str:
    if backbone.startswith("MobileNetV3"):
        return "mobilenet_v3"
    if backbone == "MobileNetV2":
        return "mobilenet_v2"
    if backbone.startswith("EfficientNet"):
        return "efficientnet"
    return "resnet50"

"""Keras helpers shared by the deep models: device detection, mixed precision,
seeding, and backend-neutral building blocks (losses, layers).

Everything here imports Keras inside functions, so importing this module is
cheap. Model code uses ``keras.ops`` only (no ``tf.*``), so the same code runs
with ``KERAS_BACKEND=tensorflow`` (the default), ``jax`` or ``torch``.

Mixed precision (``mixed_float16``) is used only when a GPU is visible, and only
while a model is being built (:func:`precision_scope`), so the global Keras
policy is left as it was for other code in the process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator
from functools import cache
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def import_keras() -> Any:
    """Import Keras quietly (TensorFlow's C++ start-up chatter silenced)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def _gpu_names() -> list[str]:
    """Names of the GPUs the active Keras backend can see (empty on CPU)."""
    keras = import_keras()
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            names = []
            for gpu in gpus:
                try:
                    details = tf.config.experimental.get_device_details(gpu)
                    names.append(str(details.get("device_name") or gpu.name))
                except Exception:  # details are best effort
                    names.append(gpu.name)
            return names
        if backend == "jax":
            import jax

            return [str(getattr(d, "device_kind", d)) for d in jax.devices() if d.platform == "gpu"]
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            return []
    except Exception as exc:  # a broken driver must not stop CPU training
        logger.warning("could not list GPUs for backend %s: %s; using the CPU", backend, exc)
    return []


@cache
def device_info() -> dict[str, Any]:
    """The device deep models train on.

    Returns
    -------
    dict
        ``{"backend": "tensorflow"|"jax"|"torch", "device": "GPU: <name>" or "CPU",
        "mixed_precision": bool}``; mixed precision is on exactly when a GPU is
        visible.
    """
    keras = import_keras()
    names = _gpu_names()
    info = {
        "backend": keras.backend.backend(),
        "device": f"GPU: {names[0]}" if names else "CPU",
        "mixed_precision": bool(names),
    }
    if len(names) > 1:
        info["n_gpus"] = len(names)
    logger.info("deep models: backend %s on %s", info["backend"], info["device"])
    return info


def jit_compile() -> bool:
    """The ``jit_compile`` to give ``Model.compile`` on this backend.

    JAX runs a train step op by op unless it is jitted (a content fit of 1,000 items did not
    finish in 105 s on an H200 that way), so JAX always compiles. TensorFlow already runs a
    graph (``tf.function``) without XLA, and XLA's compile time and nondeterminism buy nothing
    at these sizes; torch's compile costs more than it saves here.
    """
    keras = import_keras()
    return keras.backend.backend() == "jax"


@contextlib.contextmanager
def precision_scope(mixed: bool) -> Iterator[None]:
    """Build layers under ``mixed_float16`` when ``mixed`` is true, then restore.

    Layers remember the dtype policy they were created with, so only the model
    built inside this block computes in float16 (variables stay float32).
    """
    keras = import_keras()
    if not mixed:
        yield
        return
    old = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(old)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend (``keras.utils.set_random_seed``)."""
    keras = import_keras()
    random.seed(seed)
    np.random.seed(seed % (2**32))
    keras.utils.set_random_seed(int(seed) % (2**32))


def limit_threads(n: int | None) -> None:
    """Cap the TensorFlow thread pools (no-op for other backends or when n is None).

    Must run before the first TensorFlow operation of the process; later calls
    are ignored with a debug message.
    """
    if not n:
        return
    keras = import_keras()
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(n))
        tf.config.threading.set_inter_op_parallelism_threads(int(n))
    except RuntimeError as exc:  # already initialised
        logger.debug("thread limit not applied: %s", exc)


# -- losses ---------------------------------------------------------------------
def _duplicate_mask(ops: Any, y_true: Any, batch: Any, columns: Any = None) -> Any:
    """(B, C) boolean: True where column j must not count as a negative of row i.

    ``y_true`` is either (B,) (the positive's item row per anchor; columns are the
    batch's positives) or (B, 2 + h): ``[positive row, anchor row, h hard-negative
    rows]``; the columns are then the B positives followed by the B*h hard negatives
    (row-major). A column is masked when it carries row i's positive (other than the
    diagonal itself) or row i's anchor item.
    """
    y = ops.cast(y_true, "int32")
    if len(y.shape) == 1 or (len(y.shape) == 2 and y.shape[1] == 1):
        labels = ops.reshape(y, (-1,))
        same = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))
        eye = ops.cast(ops.eye(batch), "bool")
        return ops.logical_and(same, ops.logical_not(eye))
    pos, anchor = y[:, 0], y[:, 1]
    cols = ops.concatenate([pos, ops.reshape(y[:, 2:], (-1,))], axis=0)
    same = ops.logical_or(
        ops.equal(ops.expand_dims(pos, 1), ops.expand_dims(cols, 0)),
        ops.equal(ops.expand_dims(anchor, 1), ops.expand_dims(cols, 0)),
    )
    eye = ops.cast(ops.eye(batch, ops.shape(cols)[0]), "bool")
    return ops.logical_and(same, ops.logical_not(eye))


def in_batch_softmax_loss(y_true: Any, y_pred: Any) -> Any:
    """Sampled softmax over the batch: row i's positive is column i.

    ``y_pred`` is the (B, C) matrix of logits (anchor i vs column j, already
    divided by the temperature): C = B positives, optionally followed by hard
    negatives (see :func:`_duplicate_mask` for the matching ``y_true``). Columns
    carrying the same item as row i's positive or anchor are masked out, so a
    repeated item is never pushed away from itself.
    """
    keras = import_keras()
    ops = keras.ops
    logits = ops.cast(y_pred, "float32")
    batch = ops.shape(logits)[0]
    logits = ops.where(_duplicate_mask(ops, y_true, batch), ops.full_like(logits, -1e9), logits)
    labels = ops.arange(batch)
    return ops.mean(ops.sparse_categorical_crossentropy(labels, logits, from_logits=True))


def make_semi_hard_triplet_loss(margin: float, scale: float) -> Any:
    """Triplet loss with in-batch semi-hard negative mining (FaceNet).

    ``y_pred`` is ``scale * cosine`` (B, B). For anchor i with positive i, the
    negative is the most similar other positive in the batch that is still less
    similar than the positive (semi-hard); when there is none, the most similar
    negative overall (hard) is used. Loss is ``relu(s_neg - s_pos + margin)``.
    """

    def semi_hard_triplet_loss(y_true: Any, y_pred: Any) -> Any:
        keras = import_keras()
        ops = keras.ops
        sims = ops.cast(y_pred, "float32") / scale
        batch = ops.shape(sims)[0]
        eye = ops.cast(ops.eye(batch, ops.shape(sims)[1]), "bool")
        invalid = ops.logical_or(eye, _duplicate_mask(ops, y_true, batch))
        pos = ops.sum(ops.where(eye, sims, ops.zeros_like(sims)), axis=1, keepdims=True)
        neg_inf = ops.full_like(sims, -1e9)
        negs = ops.where(invalid, neg_inf, sims)
        semi = ops.where(ops.less(negs, pos), negs, neg_inf)
        semi_best = ops.max(semi, axis=1, keepdims=True)
        hard_best = ops.max(negs, axis=1, keepdims=True)
        chosen = ops.where(ops.greater(semi_best, -1e8), semi_best, hard_best)
        return ops.mean(ops.relu(chosen - pos + margin))

    return semi_hard_triplet_loss


def l2_normalize(x: Any, axis: int = -1) -> Any:
    """Backend-neutral L2 normalisation (float32 output, safe for zero rows)."""
    keras = import_keras()
    ops = keras.ops
    x = ops.cast(x, "float32")
    return x / ops.sqrt(ops.maximum(ops.sum(x * x, axis=axis, keepdims=True), 1e-12))


@cache
def layers() -> dict[str, type]:
    """Custom layers, built on first use so that importing this module stays cheap.

    Returns
    -------
    dict
        ``"L2Normalize"``: L2-normalises its input (float32 output).
        ``"WeightedConcat"``: list of blocks -> their concatenation, block i scaled by
        ``sqrt(w_i)`` with a learned ``w_i > 0`` (unit blocks: the cosine of two outputs
        is the w-weighted mean of the blocks' cosines).
        ``"PairLogits"``: (anchors (B,d), positives (B,d)) -> ``scale * A @ P.T``,
        minus ``log_q`` of each column when given (logQ correction).
        ``"MaskedRecencyPooling"``: (items (B,N,d), mask (B,N)) -> weighted mean with
        one learned logit per position, padded positions excluded.
    """
    keras = import_keras()
    ops = keras.ops

    class L2Normalize(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            return l2_normalize(x)

        def compute_output_spec(self, x: Any) -> Any:
            return keras.KerasTensor(x.shape, dtype="float32")

    class PairLogits(keras.layers.Layer):
        def __init__(self, scale: float, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.scale = float(scale)

        def call(self, anchors: Any, positives: Any, log_q: Any = None) -> Any:
            a = ops.cast(anchors, "float32")
            p = ops.cast(positives, "float32")
            logits = ops.matmul(a, ops.transpose(p)) * self.scale
            if log_q is not None:
                logits = logits - ops.expand_dims(ops.reshape(ops.cast(log_q, "float32"), (-1,)), 0)
            return logits

        def compute_output_spec(self, anchors: Any, positives: Any, log_q: Any = None) -> Any:
            return keras.KerasTensor((anchors.shape[0], positives.shape[0]), dtype="float32")

    class MaskedRecencyPooling(keras.layers.Layer):
        def build(self, items_shape: Any, mask_shape: Any = None) -> None:
            self.position_logits = self.add_weight(
                name="position_logits", shape=(int(items_shape[1]),), initializer="zeros"
            )

        def call(self, items: Any, mask: Any) -> Any:
            x = ops.cast(items, "float32")
            m = ops.cast(mask, "float32")
            logits = ops.expand_dims(ops.cast(self.position_logits, "float32"), 0) + (1.0 - m) * -1e9
            w = ops.softmax(logits, axis=-1) * m
            w = w / ops.maximum(ops.sum(w, axis=-1, keepdims=True), 1e-9)
            return ops.sum(x * ops.expand_dims(w, -1), axis=1)

        def compute_output_spec(self, items: Any, mask: Any) -> Any:
            return keras.KerasTensor((items.shape[0], items.shape[2]), dtype="float32")

    class WeightedConcat(keras.layers.Layer):
        """Concatenate blocks, block i scaled by sqrt(w_i), w_i = softplus(learned) > 0."""

        def build(self, shapes: Any) -> None:
            self.block_logits = self.add_weight(
                name="block_logits", shape=(len(shapes),), initializer="zeros"
            )

        def call(self, blocks: Any) -> Any:
            w = ops.sqrt(ops.softplus(ops.cast(self.block_logits, "float32")) + 1e-6)
            return ops.concatenate([ops.cast(b, "float32") * w[i] for i, b in enumerate(blocks)], axis=-1)

        def block_weights(self) -> list[float]:
            """The current weights ``w_i`` as floats."""
            logits = np.asarray(keras.ops.convert_to_numpy(self.block_logits), dtype=np.float64)
            return [float(x) for x in np.log1p(np.exp(logits)) + 1e-6]

        def compute_output_spec(self, blocks: Any) -> Any:
            width = sum(int(b.shape[-1]) for b in blocks)
            return keras.KerasTensor((blocks[0].shape[0], width), dtype="float32")

    return {
        "WeightedConcat": WeightedConcat,
        "L2Normalize": L2Normalize,
        "PairLogits": PairLogits,
        "MaskedRecencyPooling": MaskedRecencyPooling,
    }

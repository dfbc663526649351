"""Score-CAM: each feature map of a conv layer weighted by the class probability of the image
masked by that map (upsampled, min-max normalised). Gradient-free; the masked images run in
batches capped by the engine's memory budget."""

from __future__ import annotations

import numpy as np

from vizcore.explain.base import Attribution, Engine, Param, Progress, register
from vizcore.explain.cam_base import CAM_WEAK, INTERP, CamMethod, upsample

#: Masked images per forward pass (both Score-CAMs).
BATCH = Param("batch_size", 256, "int", 1, 1024,
              help="Masked images per forward pass (capped at 32 of 224x224).", advanced=True)


def score_cam_channels(a: np.ndarray, max_n: int | None, rank_by: str = "std") -> np.ndarray:
    """Indices of the channels of ``a`` (h, w, K) that Score-CAM probes: all non-zero ones, or
    the ``max_n`` with the largest spatial standard deviation (Faster Score-CAM, as in
    tf-keras-vis) or mean activation (``rank_by="mean"``)."""
    k = a.shape[-1]
    if max_n is not None and 0 < max_n < k:
        stat = a.reshape(-1, k).std(axis=0) if rank_by == "std" else a.reshape(-1, k).mean(axis=0)
        idx = np.argsort(-stat, kind="stable")[:max_n]
    else:
        idx = np.arange(k)
    flat = a.reshape(-1, k)[:, idx]
    # An all-zero map adds nothing to the CAM: skip its forward pass.
    return idx[np.abs(flat).max(axis=0) > 0]


def masked_score_fn(engine: Engine, interpolation: str):
    """Compiled ``(x (H,W,C), maps (B,h,w), cls) -> softmax score (B,)`` of ``x`` masked by
    each upsampled, min-max normalised map (Score-CAM's channel weights), one batch."""

    def build():
        import tensorflow as tf

        tap, to_logits = engine.trunk()
        size = engine.input_shape[:2]

        @tf.function(
            autograph=False,
            input_signature=[engine.spec_image(), tf.TensorSpec([None, None, None], tf.float32),
                             tf.TensorSpec([], tf.int32)],
        )
        def run(x, maps, cls):
            up = upsample(maps[..., None], size, interpolation)
            lo = tf.reduce_min(up, axis=(1, 2, 3), keepdims=True)
            hi = tf.reduce_max(up, axis=(1, 2, 3), keepdims=True)
            masks = (up - lo) / (hi - lo + 1e-7)
            probs = tf.nn.softmax(to_logits(tap(x[None] * masks, training=False)), axis=-1)
            return probs[:, cls]

        return run

    return engine.cached(("score", interpolation), build)


@register
class ScoreCam(CamMethod):
    """Channel weight = the class probability of the image masked by the channel."""

    key = "score_cam"
    name = "Score-CAM"
    paper = ("Wang, Wang, Du, Yang, Zhang, Ding, Mardziel, Hu 2020, Score-CAM: Score-Weighted "
             "Visual Explanations for Convolutional Neural Networks, arXiv:1910.01279")
    note = ("Masks the image with each feature map in turn and weights the map by how confident "
            "the model stays. No gradients, so no gradient noise, but one forward pass per "
            "channel: slow for big layers (512 passes for VGG16)." + CAM_WEAK)
    cost = "1 + K forward passes (K channels), batched"
    params = (BATCH, INTERP)
    keep_tiny = True

    def run(self, engine: Engine, x: np.ndarray, target: int, layer: str | None,
            progress: Progress = None, batch_size: int = 256, interpolation: str = "bilinear",
            max_n: int = 0, rank_by: str = "std") -> Attribution:
        """Probe every non-zero channel, or the ``max_n`` ranked first by ``rank_by``."""
        a, logits = engine.acts_fn(layer)(x[None])
        a = a.numpy()[0]
        tgt = int(np.argmax(logits.numpy()[0])) if target < 0 else target
        idx = score_cam_channels(a, max_n if max_n > 0 else None, rank_by)
        maps = np.ascontiguousarray(np.moveaxis(a[..., idx], -1, 0))
        run = masked_score_fn(engine, interpolation)
        bs = engine.cap_batch(batch_size)
        weights = np.zeros(len(idx), np.float32)
        for i in range(0, len(idx), bs):
            weights[i : i + bs] = run(x, maps[i : i + bs], np.int32(tgt)).numpy()
            if progress is not None:
                progress(min(1.0, (i + bs) / max(1, len(idx))))
        heat, signed = self.finish(engine, a[..., idx], weights, interpolation)
        return Attribution(heat, signed, tgt)

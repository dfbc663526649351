"""Class activation maps: CAM, Grad-CAM, Grad-CAM++, Score-CAM, Faster Score-CAM, Layer-CAM and
Guided Grad-CAM.

Every variant computes ``relu(sum_k w_k * A_k)`` over the feature maps ``A_k`` of one conv layer
and differs only in the channel weights ``w_k`` (Layer-CAM: in per-pixel weights). Maps are
computed at the layer's resolution, ReLU'd, then upsampled bilinearly with ``tf.image.resize``
and min-max normalised (the order tf-keras-vis uses). The signed map is the upsampled map before
the ReLU. ``interpolation="bilinear_align_corners"`` reproduces tf-keras-vis's
``scipy.ndimage.zoom(order=1)`` grid exactly; the default ``"bilinear"`` uses pixel centres.
"""

from __future__ import annotations

import numpy as np

from vizcore.explain.base import (
    Engine,
    MethodSpec,
    Param,
    Progress,
    cap_batch,
    class_score,
    normalize,
    register,
)

INTERPOLATIONS = ("bilinear", "bilinear_align_corners")


def upsample(maps, size: tuple[int, int], interpolation: str = "bilinear"):
    """Bilinear resize of (B, h, w, C) tensors to ``size`` (TensorFlow ops, traceable)."""
    import tensorflow as tf

    if interpolation == "bilinear_align_corners":
        return tf.raw_ops.ResizeBilinear(
            images=maps, size=size, align_corners=True, half_pixel_centers=False
        )
    return tf.image.resize(maps, size, method="bilinear")


def _finish(cam_up: np.ndarray) -> np.ndarray:
    return normalize(np.maximum(cam_up, 0.0))


# --------------------------------------------------------------------------- gradient CAMs


def _gradient_cam_fn(engine: Engine, layer: str, variant: str, interpolation: str):
    """Compiled ``(x (1,H,W,C), cls) -> (relu'd map up, signed map up, logits)`` for one of
    ``"gradcam"``, ``"gradcampp"``, ``"layercam"``; one forward and one backward pass (the
    backward stops at ``layer``)."""

    def build():
        import tensorflow as tf

        tap, (_, to_logits) = engine.tapped(layer), engine.head()
        size = engine.input_shape[:2]

        @tf.function(
            autograph=False, input_signature=[engine.spec_batch(), tf.TensorSpec([], tf.int32)]
        )
        def run(x, cls):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(x)
                a, pre = tap(x, training=False)
                logits = to_logits(pre)
                score = class_score(logits, cls)
            g = tape.gradient(score, a)
            if variant == "gradcam":
                w = tf.reduce_mean(g, axis=(1, 2), keepdims=True)
                cam = tf.reduce_sum(a * w, axis=-1, keepdims=True)
            elif variant == "layercam":
                cam = tf.reduce_sum(a * tf.nn.relu(g), axis=-1, keepdims=True)
            else:  # Grad-CAM++, closed form of the official code (exp(score) cancels out)
                g2 = g * g
                g3 = g2 * g
                s = tf.reduce_sum(a, axis=(1, 2), keepdims=True)
                denom = 2.0 * g2 + g3 * s
                denom += tf.cast(g2 == 0.0, g.dtype)
                alpha = g2 / denom
                norm = tf.reduce_sum(alpha, axis=(1, 2), keepdims=True)
                alpha = alpha / (norm + tf.cast(norm == 0.0, norm.dtype))
                w = tf.reduce_sum(tf.nn.relu(g) * alpha, axis=(1, 2), keepdims=True)
                cam = tf.reduce_sum(a * w, axis=-1, keepdims=True)
            pos = upsample(tf.nn.relu(cam), size, interpolation)[..., 0]
            signed = upsample(cam, size, interpolation)[..., 0]
            return pos, signed, logits

        return run

    return engine.cached(("gcam", layer, variant, interpolation), build)


def _gradient_cam(engine, x, target, layer, variant, interpolation):
    pos, signed, logits = _gradient_cam_fn(engine, layer, variant, interpolation)(
        x[None], np.int32(target)
    )
    tgt = int(np.argmax(logits.numpy()[0])) if target < 0 else target
    return normalize(pos.numpy()[0]), signed.numpy()[0], tgt


def gradcam(
    engine: Engine,
    x: np.ndarray,
    target: int,
    layer: str,
    progress: Progress = None,
    interpolation: str = "bilinear",
):
    """Grad-CAM: feature maps weighted by their spatially averaged gradients.

    Selvaraju, Cogswell, Das, Vedantam, Parikh, Batra (2017), "Grad-CAM: Visual Explanations
    from Deep Networks via Gradient-based Localization", arXiv:1610.02391.

    Cost: 1 forward pass and 1 backward pass from the logits down to ``layer``.
    """
    return _gradient_cam(engine, x, target, layer, "gradcam", interpolation)


def gradcam_plus_plus(
    engine: Engine,
    x: np.ndarray,
    target: int,
    layer: str,
    progress: Progress = None,
    interpolation: str = "bilinear",
):
    """Grad-CAM++: channel weights from positive gradients with per-pixel alpha coefficients.

    Chattopadhay, Sarkar, Howlader, Balasubramanian (2018), "Grad-CAM++: Improved Visual
    Explanations for Deep Convolutional Networks", arXiv:1710.11063 (closed form with the
    exponential score, alphas normalised as in the authors' code and tf-keras-vis).

    Cost: 1 forward pass and 1 backward pass down to ``layer``.
    """
    return _gradient_cam(engine, x, target, layer, "gradcampp", interpolation)


def layercam(
    engine: Engine,
    x: np.ndarray,
    target: int,
    layer: str,
    progress: Progress = None,
    interpolation: str = "bilinear",
):
    """Layer-CAM: every feature-map pixel weighted by its own positive gradient.

    Jiang, Zhang, Hou, Cheng, Wei (2021), "LayerCAM: Exploring Hierarchical Class Activation
    Maps for Localization", IEEE TIP 30:5875 (no arXiv version). Works on shallow layers too.

    Cost: 1 forward pass and 1 backward pass down to ``layer``.
    """
    return _gradient_cam(engine, x, target, layer, "layercam", interpolation)


def guided_gradcam(
    engine: Engine,
    x: np.ndarray,
    target: int,
    layer: str,
    progress: Progress = None,
    interpolation: str = "bilinear",
):
    """Guided Grad-CAM: guided backpropagation times the upsampled Grad-CAM map.

    Selvaraju et al. (2017), arXiv:1610.02391, section 3.1; guided backprop from Springenberg et
    al. (2014), arXiv:1412.6806.

    Cost: 2 forward and 2 backward passes (Grad-CAM, then guided backprop on a model clone).
    """
    from vizcore.explain.gradients import abs_max_map, guided_gradients

    heat, _, tgt = _gradient_cam(engine, x, target, layer, "gradcam", interpolation)
    g, _ = guided_gradients(engine, x, tgt)
    prod = g * heat[..., None]
    return abs_max_map(prod), prod.astype(np.float32), tgt


# --------------------------------------------------------------------------- CAM (Zhou 2016)


def find_cam_layers(model) -> tuple[str, str] | None:
    """(feature layer, logits Dense) when the model ends in ``features ->
    GlobalAveragePooling2D -> [pass-through] -> Dense`` (a final Softmax layer allowed), else
    None; see :meth:`vizcore.graph.Graph.cam_head`."""
    from vizcore.graph import graph_of

    return graph_of(model).cam_head()


def cam_applies(info) -> tuple[bool, str]:
    """CAM needs conv features -> global average pooling -> one Dense layer."""
    if info.graph.cam_head() is None:
        return False, info.graph.cam_refusal()
    return True, ""


def cam(
    engine: Engine,
    x: np.ndarray,
    target: int,
    layer=None,
    progress: Progress = None,
    interpolation: str = "bilinear",
):
    """CAM: the last conv feature maps weighted by the final Dense layer's class weights.

    Zhou, Khosla, Lapedriza, Oliva, Torralba (2016), "Learning Deep Features for Discriminative
    Localization", arXiv:1512.04150. Only for GAP -> Dense models; the layer is fixed.

    Cost: 1 forward pass.
    """
    feat, dense_name = engine.graph.cam_head()
    dense = engine.graph.layer(dense_name)

    def build():
        import tensorflow as tf

        tap = engine.graph.tap([feat], [engine.graph.input(dense_name)])
        size = engine.input_shape[:2]

        @tf.function(
            autograph=False, input_signature=[engine.spec_batch(), tf.TensorSpec([], tf.int32)]
        )
        def run(x, cls):
            a, h = tap(x, training=False)
            logits = tf.matmul(h, dense.kernel)
            logits = logits + dense.bias if dense.use_bias else logits
            c = tf.where(cls < 0, tf.argmax(logits[0], output_type=tf.int32), cls)
            w = tf.gather(dense.kernel, c, axis=1)
            m = tf.reduce_sum(a * w, axis=-1, keepdims=True)
            return (
                upsample(tf.nn.relu(m), size, interpolation)[..., 0],
                upsample(m, size, interpolation)[..., 0],
                c,
            )

        return run

    run = engine.cached(("cam", interpolation), build)
    pos, signed, c = run(x[None], np.int32(target))
    return normalize(pos.numpy()[0]), signed.numpy()[0], int(c.numpy()), feat


# --------------------------------------------------------------------------- Score-CAM


def _score_fn(engine: Engine, interpolation: str):
    """Compiled ``(x (H,W,C), maps (B,h,w), cls) -> softmax score (B,)`` of ``x`` masked by
    each upsampled, min-max normalised map (Score-CAM's channel weights), one batch."""

    def build():
        import tensorflow as tf

        tap, (_, to_logits) = engine.tapped(None), engine.head()
        size = engine.input_shape[:2]
        h = w = None

        @tf.function(
            autograph=False,
            input_signature=[
                engine.spec_image(),
                tf.TensorSpec([None, h, w], tf.float32),
                tf.TensorSpec([], tf.int32),
            ],
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


def _acts_fn(engine: Engine, layer: str):
    """Compiled ``x (1,H,W,C) -> (feature maps of layer, logits)``."""

    def build():
        import tensorflow as tf

        tap, (_, to_logits) = engine.tapped(layer), engine.head()

        @tf.function(autograph=False, input_signature=[engine.spec_batch()])
        def run(x):
            a, pre = tap(x, training=False)
            return a, to_logits(pre)

        return run

    return engine.cached(("acts", layer), build)


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


def score_cam(
    engine: Engine,
    x: np.ndarray,
    target: int,
    layer: str,
    progress: Progress = None,
    batch_size: int = 256,
    interpolation: str = "bilinear",
    max_n: int = 0,
    rank_by: str = "std",
):
    """Score-CAM: each feature map weighted by the class probability of the image masked by it.

    Wang, Wang, Du, Yang, Zhang, Ding, Mardziel, Hu (2020), "Score-CAM: Score-Weighted Visual
    Explanations for Convolutional Neural Networks", arXiv:1910.01279. Gradient-free.

    Cost: 1 forward pass plus one forward pass per (non-zero) channel of ``layer``, batched
    ``batch_size`` masked images at a time (capped at 32 images of 224x224x3; the 28x28 CNN's
    128 channels run in one batch).
    """
    a, logits = _acts_fn(engine, layer)(x[None])
    a = a.numpy()[0]
    tgt = int(np.argmax(logits.numpy()[0])) if target < 0 else target
    idx = score_cam_channels(a, max_n if max_n > 0 else None, rank_by)
    maps = np.ascontiguousarray(np.moveaxis(a[..., idx], -1, 0))
    run = _score_fn(engine, interpolation)
    bs = cap_batch(engine, batch_size)
    weights = np.zeros(len(idx), np.float32)
    for i in range(0, len(idx), bs):
        weights[i : i + bs] = run(x, maps[i : i + bs], np.int32(tgt)).numpy()
        if progress is not None:
            progress(min(1.0, (i + bs) / max(1, len(idx))))
    m = (a[..., idx] * weights).sum(axis=-1)
    import tensorflow as tf

    size = engine.input_shape[:2]
    both = np.stack([np.maximum(m, 0), m])[..., None].astype(np.float32)
    up = upsample(tf.constant(both), size, interpolation).numpy()[..., 0]
    return normalize(up[0]), up[1], tgt


def faster_score_cam(
    engine: Engine,
    x: np.ndarray,
    target: int,
    layer: str,
    progress: Progress = None,
    max_n: int = 10,
    rank_by: str = "std",
    batch_size: int = 32,
    interpolation: str = "bilinear",
):
    """Faster Score-CAM: Score-CAM over only the ``max_n`` most varied channels.

    Wang et al. (2020), arXiv:1910.01279, with the channel selection of tabayashi0117's Faster
    Score-CAM (github.com/tabayashi0117/Score-CAM), as in tf-keras-vis (``max_N``).

    Cost: 1 + ``max_n`` forward passes, batched.
    """
    return score_cam(engine, x, target, layer, progress, batch_size, interpolation, max_n, rank_by)


# --------------------------------------------------------------------------- registry

_INTERP = Param(
    "interpolation",
    "bilinear",
    "choice",
    choices=INTERPOLATIONS,
    help="Upsampling grid: pixel centres (default) or corners aligned, as "
    "tf-keras-vis (scipy zoom) does.",
    advanced=True,
)
_BATCH = Param(
    "batch_size",
    256,
    "int",
    1,
    1024,
    help="Masked images per forward pass (capped at 32 of 224x224).",
    advanced=True,
)
_CAM_WEAK = (
    " Its resolution is that of the chosen layer (7x7 for the last layer of the "
    "default CNN, 14x14 for VGG16), so it is blurry."
)

register(
    MethodSpec(
        "cam",
        "CAM",
        "cam",
        "Zhou, Khosla, Lapedriza, Oliva, Torralba 2016, Learning Deep Features for Discriminative "
        "Localization, arXiv:1512.04150",
        "Adds up the last layer's feature maps, each weighted by how much the final layer uses it "
        "for this class. Exact for models with global average pooling, but it only works for those."
        + _CAM_WEAK,
        "1 forward pass",
        cam,
        (_INTERP,),
        applies=cam_applies,
        signed=True,
        keep_tiny=True,
    )
)

register(
    MethodSpec(
        "gradcam",
        "Grad-CAM",
        "cam",
        "Selvaraju, Cogswell, Das, Vedantam, Parikh, Batra 2017, Grad-CAM: Visual "
        "Explanations from "
        "Deep Networks via Gradient-based Localization, arXiv:1610.02391",
        "Weights each feature map of a conv layer by its average gradient for the class, then adds "
        "them up. Class-discriminative and cheap; it works for any CNN."
        + _CAM_WEAK
        + " Averaging gradients can miss several instances of the class.",
        "1 forward + 1 partial backward pass",
        gradcam,
        (_INTERP,),
        uses_layer=True,
        signed=True,
    )
)

register(
    MethodSpec(
        "gradcam_plus_plus",
        "Grad-CAM++",
        "cam",
        "Chattopadhay, Sarkar, Howlader, Balasubramanian 2018, Grad-CAM++: Improved Visual "
        "Explanations for Deep Convolutional Networks, arXiv:1710.11063",
        "Like Grad-CAM, but weights positive gradients pixel by pixel, so it tends to light up "
        "more of the object (twice as much of the garment on the shipped VGG-style CNN). That "
        "does not make it more faithful there: its deletion and insertion scores are no better "
        "than Grad-CAM's, and it is far less class-specific (maps for the top two classes 0.82 "
        "similar, Grad-CAM 0.32)." + _CAM_WEAK,
        "1 forward + 1 partial backward pass",
        gradcam_plus_plus,
        (_INTERP,),
        uses_layer=True,
        signed=True,
    )
)

register(
    MethodSpec(
        "score_cam",
        "Score-CAM",
        "cam",
        "Wang, Wang, Du, Yang, Zhang, Ding, Mardziel, Hu 2020, Score-CAM: Score-Weighted Visual "
        "Explanations for Convolutional Neural Networks, arXiv:1910.01279",
        "Masks the image with each feature map in turn and weights the map by how confident the "
        "model stays. No gradients, so no gradient noise, but one forward pass per channel: slow "
        "for big layers (512 passes for VGG16)." + _CAM_WEAK,
        "1 + K forward passes (K channels), batched",
        score_cam,
        (_BATCH, _INTERP),
        uses_layer=True,
        signed=True,
        keep_tiny=True,
    )
)

register(
    MethodSpec(
        "faster_score_cam",
        "Faster Score-CAM",
        "cam",
        "Wang et al. 2020, arXiv:1910.01279, with the channel selection of Faster Score-CAM "
        "(tabayashi0117, github.com/tabayashi0117/Score-CAM)",
        "Score-CAM using only the N feature maps that vary most across the image. About 5x "
        "faster, but only roughly like Score-CAM (rank correlation 0.64 on the shipped VGG-style "
        "CNN, 0.87 on the GAP CNN) and less faithful where they differ, because the ignored "
        "channels are lost. Randomising the GAP CNN's output layer leaves its map 0.99 similar: "
        "it shows where the chosen channels fire more than what decides the class." + _CAM_WEAK,
        "1 + N forward passes, batched",
        faster_score_cam,
        (
            Param("max_n", 10, "int", 1, 2048, help="Channels to probe (Faster Score-CAM: 10)."),
            Param(
                "rank_by",
                "std",
                "choice",
                choices=("std", "mean"),
                help="Pick channels by spatial standard deviation (the original) or mean "
                "activation.",
            ),
            _BATCH,
            _INTERP,
        ),
        uses_layer=True,
        signed=True,
        keep_tiny=True,
    )
)

register(
    MethodSpec(
        "layercam",
        "Layer-CAM",
        "cam",
        "Jiang, Zhang, Hou, Cheng, Wei 2021, LayerCAM: Exploring Hierarchical Class "
        "Activation Maps "
        "for Localization, IEEE Transactions on Image Processing 30:5875-5888",
        "Weights every position of every feature map by its own positive gradient. Unlike Grad-CAM "
        "it gives useful, finer maps on early layers too. On a last layer that feeds global "
        "average pooling it looks like Grad-CAM (0.91 rank correlation on the GAP CNN); when "
        "dense layers follow it can look quite different (0.32 on the VGG-style CNN), and there "
        "its map stays 0.64 similar even after every layer is randomised.",
        "1 forward + 1 partial backward pass",
        layercam,
        (_INTERP,),
        uses_layer=True,
        signed=True,
    )
)

register(
    MethodSpec(
        "guided_gradcam",
        "Guided Grad-CAM",
        "cam",
        "Selvaraju et al. 2017, arXiv:1610.02391 (with guided backpropagation, Springenberg et al. "
        "2014, arXiv:1412.6806)",
        "Guided backpropagation's fine detail, kept only where Grad-CAM is hot: high "
        "resolution and "
        "class-discriminative. Inherits guided backprop's weakness: the detail comes largely from "
        "the image, not the model.",
        "2 forward + 2 backward passes",
        guided_gradcam,
        (_INTERP,),
        uses_layer=True,
        signed=True,
    )
)

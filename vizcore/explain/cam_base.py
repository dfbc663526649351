"""The CAM family's base: the class-activation-map pipeline, owned once.

Every variant computes ``relu(sum_k w_k * A_k)`` over the feature maps ``A_k`` of one conv layer
and differs only in the channel weights ``w_k``, the :meth:`CamMethod.weights` hook (Layer-CAM's
weights are per pixel). The map is computed at the layer's resolution, ReLU'd, upsampled with
``tf.image.resize`` and min-max normalised (the order tf-keras-vis uses); the signed map is the
upsampled map before the ReLU. ``interpolation="bilinear_align_corners"`` reproduces
tf-keras-vis's ``scipy.ndimage.zoom(order=1)`` grid exactly; the default ``"bilinear"`` uses pixel
centres.

The gradient variants run as one compiled ``tf.function`` per (model, layer, weights hook,
interpolation): forward to the layer and the logits, backward from the class logit down to the
layer, weights, weighted sum, ReLU and upsampling. The hook is called while the function is
traced, so it is inlined into the graph and costs nothing per call.
"""

from __future__ import annotations

import numpy as np

from vizcore.explain.base import (
    Attribution,
    Engine,
    Method,
    Param,
    Progress,
    class_score,
    normalize,
)

INTERPOLATIONS = ("bilinear", "bilinear_align_corners")

#: The upsampling parameter every CAM takes.
INTERP = Param("interpolation", "bilinear", "choice", choices=INTERPOLATIONS,
               help="Upsampling grid: pixel centres (default) or corners aligned, as "
                    "tf-keras-vis (scipy zoom) does.", advanced=True)

#: The weakness every CAM's note ends with.
CAM_WEAK = (" Its resolution is that of the chosen layer (7x7 for the last layer of the "
            "default CNN, 14x14 for VGG16), so it is blurry.")


def upsample(maps, size: tuple[int, int], interpolation: str = "bilinear"):
    """Bilinear resize of (B, h, w, C) tensors to ``size`` (TensorFlow ops, traceable)."""
    import tensorflow as tf

    if interpolation == "bilinear_align_corners":
        return tf.raw_ops.ResizeBilinear(
            images=maps, size=size, align_corners=True, half_pixel_centers=False
        )
    return tf.image.resize(maps, size, method="bilinear")


def weighted_maps(a, w, size: tuple[int, int], interpolation: str):
    """TensorFlow ops: ``cam = sum_k w_k * a_k`` over feature maps ``a`` (B, h, w, K) and
    weights ``w`` (broadcastable to ``a``), then ``(upsampled relu(cam), upsampled cam)``, each
    (B, H, W)."""
    import tensorflow as tf

    cam = tf.reduce_sum(a * w, axis=-1, keepdims=True)
    return (upsample(tf.nn.relu(cam), size, interpolation)[..., 0],
            upsample(cam, size, interpolation)[..., 0])


class CamMethod(Method):
    """A class activation map of one conv layer; a variant overrides :meth:`weights`.

    :meth:`run` is the gradient pipeline. Methods whose weights do not come from gradients
    override ``run``: CAM compiles its own forward pass around :func:`weighted_maps`, Score-CAM
    gets its weights from masked forward passes and ends with :meth:`finish`.
    """

    family = "cam"
    uses_layer = True
    signed = True
    params = (INTERP,)

    def weights(self, a, g):
        """Channel weights from the feature maps ``a`` and the gradients ``g`` of the class
        logit w.r.t. them, both (B, h, w, K) tensors: TensorFlow ops returning a tensor
        broadcastable to ``a`` ((B, 1, 1, K) per channel, or (B, h, w, K) per pixel). Called
        while the compiled pipeline is traced."""
        raise NotImplementedError

    def compiled(self, engine: Engine, layer: str, interpolation: str):
        """Compiled ``(x (1,H,W,C), cls) -> (relu'd map up, signed map up, logits)``: one forward
        pass and one backward pass stopping at ``layer``; built once per (model, layer, weights
        hook, interpolation), so variants that share a hook share the function."""
        hook = type(self).weights

        def build():
            import tensorflow as tf

            tap, (_, to_logits) = engine.tapped(layer), engine.head()
            size = engine.input_shape[:2]

            @tf.function(
                autograph=False,
                input_signature=[engine.spec_batch(), tf.TensorSpec([], tf.int32)],
            )
            def run(x, cls):
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(x)
                    a, pre = tap(x, training=False)
                    logits = to_logits(pre)
                    score = class_score(logits, cls)
                g = tape.gradient(score, a)
                pos, signed = weighted_maps(a, hook(self, a, g), size, interpolation)
                return pos, signed, logits

            return run

        return engine.cached(("cam_pipeline", layer, hook, interpolation), build)

    def maps(self, engine: Engine, x: np.ndarray, target: int, layer: str,
             interpolation: str) -> tuple[np.ndarray, np.ndarray, int]:
        """(heatmap (H, W) in [0, 1], signed map (H, W), resolved target) of one image."""
        pos, signed, logits = self.compiled(engine, layer, interpolation)(
            x[None], np.int32(target))
        tgt = int(np.argmax(logits.numpy()[0])) if target < 0 else target
        return normalize(pos.numpy()[0]), signed.numpy()[0], tgt

    def run(self, engine: Engine, x: np.ndarray, target: int, layer: str | None,
            progress: Progress = None, interpolation: str = "bilinear") -> Attribution:
        """The gradient pipeline on ``layer``."""
        heat, signed, tgt = self.maps(engine, x, target, layer, interpolation)
        return Attribution(heat, signed, tgt)

    def run_batch(self, engine: Engine, x: np.ndarray, target: int, layer: str | None,
                  **params) -> list[Attribution] | None:
        """The gradient pipeline on a batch: the same compiled function :meth:`run` calls
        (None for variants with their own ``run``)."""
        if type(self).run is not CamMethod.run:
            return None
        fn = self.compiled(engine, layer, params.get("interpolation", "bilinear"))
        pos, signed, logits = fn(x, np.int32(target))
        tgts = np.argmax(logits.numpy(), axis=1) if target < 0 else np.full(len(x), target)
        return [Attribution(normalize(p), s, int(t))
                for p, s, t in zip(pos.numpy(), signed.numpy(), tgts)]

    @staticmethod
    def finish(engine: Engine, a: np.ndarray, w: np.ndarray,
               interpolation: str) -> tuple[np.ndarray, np.ndarray]:
        """The pipeline's end for weights computed outside it (Score-CAM): feature maps ``a``
        (h, w, K) and weights ``w`` (K,) -> (heatmap (H, W) in [0, 1], signed map (H, W)).

        The weighted sum runs in NumPy and both maps go through one resize call: outside a
        compiled function, every TensorFlow op costs a dispatch (about 1 ms more than this on
        a 7x7 map, an eighth of Faster Score-CAM's time on the 28x28 CNN).
        """
        import tensorflow as tf

        m = (np.asarray(a, np.float32) * w).sum(axis=-1)
        both = np.stack([np.maximum(m, 0), m])[..., None].astype(np.float32)
        up = upsample(tf.constant(both), engine.input_shape[:2], interpolation).numpy()[..., 0]
        return normalize(up[0]), up[1]

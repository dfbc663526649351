"""CAM: the last conv feature maps weighted by the final Dense layer's weights for the class.
Only for models ending in ``features -> global average pooling -> Dense`` (the layer is fixed
by the architecture); no gradient, one forward pass."""

from __future__ import annotations

import numpy as np

from vizcore.explain.base import Attribution, Engine, Progress, normalize, register
from vizcore.explain.cam_base import CAM_WEAK, CamMethod, weighted_maps


def cam_fn(engine: Engine, feat: str, dense_name: str, interpolation: str):
    """Compiled ``(x (1,H,W,C), cls) -> (relu'd map up, signed map up, class)`` of the model's
    GAP head, feature layer ``feat`` -> GAP -> Dense ``dense_name`` (``cls = -1``: the
    predicted class), built once per (model, interpolation)."""

    def build():
        import tensorflow as tf

        dense = engine.graph.layer(dense_name)
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
            return (*weighted_maps(a, w, size, interpolation), c)

        return run

    return engine.cached(("cam", interpolation), build)


@register
class Cam(CamMethod):
    """Channel weight = the Dense layer's weight of the channel for the class."""

    key = "cam"
    name = "CAM"
    paper = ("Zhou, Khosla, Lapedriza, Oliva, Torralba 2016, Learning Deep Features for "
             "Discriminative Localization, arXiv:1512.04150")
    note = ("Adds up the last layer's feature maps, each weighted by how much the final layer "
            "uses it for this class. Exact for models with global average pooling, but it only "
            "works for those." + CAM_WEAK)
    cost = "1 forward pass"
    uses_layer = False  # fixed by the architecture
    keep_tiny = True

    def applies(self, info) -> tuple[bool, str]:
        """CAM needs conv features -> global average pooling -> one Dense layer."""
        if info.graph.cam_head() is None:
            return False, info.graph.cam_refusal()
        return True, ""

    def uses(self, info, layer: str | None) -> str:
        """The feature layer and the Dense layer whose weights it reads."""
        feat, dense = info.graph.cam_head()
        return f"layer '{feat}' and the weights of '{dense}'"

    def run(self, engine: Engine, x: np.ndarray, target: int, layer: str | None,
            progress: Progress = None, interpolation: str = "bilinear") -> Attribution:
        """Reports the feature layer it read as the Attribution's layer."""
        feat, dense = engine.graph.cam_head()
        pos, signed, c = cam_fn(engine, feat, dense, interpolation)(x[None], np.int32(target))
        return Attribution(normalize(pos.numpy()[0]), signed.numpy()[0], int(c.numpy()), feat)

"""Layer-CAM: every feature-map pixel weighted by its own positive gradient (so it also works on
shallow layers)."""

from __future__ import annotations

from vizcore.explain.base import register
from vizcore.explain.cam_base import CamMethod


@register
class LayerCam(CamMethod):
    """Pixel weight = relu(gradient), (B, h, w, K)."""

    key = "layercam"
    name = "Layer-CAM"
    paper = ("Jiang, Zhang, Hou, Cheng, Wei 2021, LayerCAM: Exploring Hierarchical Class "
             "Activation Maps for Localization, IEEE Transactions on Image Processing "
             "30:5875-5888")
    note = ("Weights every position of every feature map by its own positive gradient. Unlike "
            "Grad-CAM it gives useful, finer maps on early layers too. On a last layer that feeds "
            "global average pooling it looks like Grad-CAM (0.91 rank correlation on the GAP "
            "CNN); when dense layers follow it can look quite different (0.32 on the VGG-style "
            "CNN), and there its map stays 0.64 similar even after every layer is randomised.")
    cost = "1 forward + 1 partial backward pass"

    def weights(self, a, g):
        """relu(g) per pixel."""
        import tensorflow as tf

        return tf.nn.relu(g)

"""Grad-CAM: the feature maps of a conv layer weighted by their spatially averaged gradients."""

from __future__ import annotations

from vizcore.explain.base import register
from vizcore.explain.cam_base import CAM_WEAK, CamMethod


@register
class GradCam(CamMethod):
    """Channel weight = spatial mean of the gradient."""

    key = "gradcam"
    name = "Grad-CAM"
    paper = ("Selvaraju, Cogswell, Das, Vedantam, Parikh, Batra 2017, Grad-CAM: Visual "
             "Explanations from Deep Networks via Gradient-based Localization, arXiv:1610.02391")
    note = ("Weights each feature map of a conv layer by its average gradient for the class, "
            "then adds them up. Class-discriminative and cheap; it works for any CNN." + CAM_WEAK
            + " Averaging gradients can miss several instances of the class.")
    cost = "1 forward + 1 partial backward pass"

    def weights(self, a, g):
        """Spatial mean of ``g``, (B, 1, 1, K)."""
        import tensorflow as tf

        return tf.reduce_mean(g, axis=(1, 2), keepdims=True)

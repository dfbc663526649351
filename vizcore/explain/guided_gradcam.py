"""Guided Grad-CAM: the guided-backprop gradient times the upsampled Grad-CAM map (section 3.1
of the Grad-CAM paper); heatmap = max over channels of |product|."""

from __future__ import annotations

import numpy as np

from vizcore.explain.base import Attribution, Engine, Progress, register
from vizcore.explain.gradcam import GradCam
from vizcore.explain.gradient_base import abs_max_map
from vizcore.explain.guided_backprop import guided_gradients


@register
class GuidedGradCam(GradCam):
    """Grad-CAM's pipeline (the same compiled function), then guided backprop."""

    key = "guided_gradcam"
    name = "Guided Grad-CAM"
    paper = ("Selvaraju et al. 2017, arXiv:1610.02391 (with guided backpropagation, Springenberg "
             "et al. 2014, arXiv:1412.6806)")
    note = ("Guided backpropagation's fine detail, kept only where Grad-CAM is hot: high "
            "resolution and class-discriminative. Inherits guided backprop's weakness: the "
            "detail comes largely from the image, not the model.")
    cost = "2 forward + 2 backward passes"

    def run(self, engine: Engine, x: np.ndarray, target: int, layer: str | None,
            progress: Progress = None, interpolation: str = "bilinear") -> Attribution:
        """Signed map = guided gradient * Grad-CAM heatmap, (H, W, C)."""
        heat, _, tgt = self.maps(engine, x, target, layer, interpolation)
        g, _ = guided_gradients(engine, x, tgt)
        prod = g * heat[..., None]
        return Attribution(abs_max_map(prod), prod.astype(np.float32), tgt)

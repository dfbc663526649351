"""Occlusion sensitivity as a registry method: the mean drop of the class probability when a
patch covers each pixel (signed map), its positive part min-max normalised as the heatmap. The
core (geometry, fills, compiled and incremental passes, the hand-made occlusion editor) is
:mod:`vizcore.occlusion`."""

from __future__ import annotations

import numpy as np

from vizcore.explain.base import Attribution, Engine, Method, Param, Progress, normalize, register
from vizcore.occlusion import FILLS, occlusion_sensitivity


@register
class Occlusion(Method):
    """A square patch slid over the image, one forward pass per position, batched."""

    key = "occlusion"
    name = "Occlusion sensitivity"
    family = "perturbation"
    paper = ("Zeiler, Fergus 2014, Visualizing and Understanding Convolutional Networks, "
             "arXiv:1311.2901")
    note = ("Covers the image with a square patch at every position and records how much the "
            "class's probability drops. It uses only the model's output, so it passes the "
            "randomisation test, but it is blocky (the patch size sets the detail), slow on "
            "large images, and its answer depends on the fill: a grey patch is itself an unusual "
            "input (both shipped Fashion-MNIST CNNs call an all-grey image a 'Bag' with 99% "
            "confidence), so there the grey-fill map has little in common with the black-fill "
            "one.")
    cost = "1 + (number of patch positions) forward passes, batched"
    params = (
        Param("patch", 0, "int", 0, 256,
              help="Patch side in pixels; 0 = automatic (about 1/7 of the image)."),
        Param("stride", 0, "int", 0, 256,
              help="Step between patch positions; 0 = automatic (1 px on small images, "
                   "half the patch on large ones)."),
        Param("fill", "gray", "choice", choices=FILLS,
              help="What covers the patch: grey, the image mean, a blurred copy, or zero."),
        Param("batch_size", 1024, "int", 1, 4096,
              help="Occluded images per pass; larger is faster up to memory limits.",
              advanced=True),
    )
    signed = True
    keep_tiny = True

    def run(self, engine: Engine, x: np.ndarray, target: int, layer: str | None,
            progress: Progress = None, patch: int = 0, stride: int = 0, fill: str = "gray",
            batch_size: int = 1024) -> Attribution:
        """Signed map = the drop (H, W)."""
        r = occlusion_sensitivity(engine, x, target, patch, stride, fill, batch_size, progress)
        return Attribution(normalize(np.maximum(r.drop, 0.0)), r.drop, r.target)


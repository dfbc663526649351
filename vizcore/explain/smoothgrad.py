"""SmoothGrad: the mean over noisy copies of the image of |d logit_c / d x| (the signed map),
its maximum over colour channels as the heatmap. The noise is drawn batch by batch from
``numpy.random.RandomState(seed)``, so memory stays at one batch and the draws equal
tf-keras-vis's after ``np.random.seed(seed)``."""

from __future__ import annotations

import numpy as np

from vizcore.explain.base import Attribution, Engine, Param, Progress, register
from vizcore.explain.gradient_base import (
    BATCH,
    GradientMethod,
    abs_max_map,
    in_batches,
    sum_gradients,
)


def smoothgrad_noise(x: np.ndarray, n: int, noise: float, seed: int) -> np.ndarray:
    """The ``n`` noisy copies of ``x`` SmoothGrad averages over: Gaussian noise with standard
    deviation ``noise * (max(x) - min(x))``, drawn with ``numpy.random.RandomState(seed)`` (the
    same draws as tf-keras-vis after ``np.random.seed(seed)``)."""
    sigma = noise * float(x.max() - x.min())
    rng = np.random.RandomState(seed)
    return (x[None] + rng.normal(0.0, sigma, (n, *x.shape))).astype(np.float32)


def smoothgrad_from_inputs(engine: Engine, xs, target: int, batch_size: int = 32,
                           progress: Progress = None) -> np.ndarray:
    """Mean over the inputs of |d logit_target / dx| (H, W, C) float32: SmoothGrad's core.

    Args:
        xs: An array (n, H, W, C), cut into ``batch_size`` batches with progress, or an
            iterable of such batches (generated lazily; it reports its own progress).
    """
    batches = xs
    if isinstance(xs, np.ndarray):
        batches = in_batches(len(xs), batch_size, lambda i, b: xs[i : i + b], progress)
    total, n = sum_gradients(engine.input_grad_fn(), batches, target, absolute=True)
    return (total / n).astype(np.float32)


@register
class SmoothGrad(GradientMethod):
    """Saliency averaged over ``n`` noisy copies, batched."""

    key = "smoothgrad"
    name = "SmoothGrad"
    paper = ("Smilkov, Thorat, Kim, Viegas, Wattenberg 2017, SmoothGrad: removing noise by "
             "adding noise, arXiv:1706.03825")
    note = ("Averages the saliency map over many noisy copies of the image, which removes much "
            "of the speckle (on the shipped models the pixel-to-pixel jumps halve). It costs N "
            "times the passes of plain saliency (batching keeps it to about 6-11x the time "
            "there), and the result depends on the noise level. The smoothing also washes out "
            "what is specific to the class: on the VGG-style model the maps for the top two "
            "classes are 0.79 similar (plain saliency: 0.39).")
    cost = "n forward + n backward passes, batched"
    params = (
        Param("n", 50, "int", 1, 500, help="Number of noisy samples (paper: 50)."),
        Param("noise", 0.15, "float", 0.0, 1.0,
              help="Noise standard deviation as a fraction of the input range (paper: 0.1-0.2)."),
        BATCH,
        Param("seed", 0, "int", 0, 2**31 - 1, help="Random seed of the noise.", advanced=True),
    )

    def run(self, engine: Engine, x: np.ndarray, target: int, layer: str | None,
            progress: Progress = None, n: int = 50, noise: float = 0.15, batch_size: int = 32,
            seed: int = 0) -> Attribution:
        """Heatmap = max over channels of the mean |gradient|; signed map = that mean."""
        tgt = self.resolve_target(engine, x, target)
        sigma = noise * float(x.max() - x.min())
        rng = np.random.RandomState(seed)

        def noisy(_start: int, size: int) -> np.ndarray:
            return (x[None] + rng.normal(0.0, sigma, (size, *x.shape))).astype(np.float32)

        total = self.gradient_sum(engine, n, batch_size, noisy, tgt, progress, absolute=True)
        g = (total / n).astype(np.float32)
        return Attribution(abs_max_map(g), g, tgt)

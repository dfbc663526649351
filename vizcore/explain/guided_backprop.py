"""Guided backpropagation: the saliency map of the engine's guided variant of the model, whose
ReLUs pass back only positive gradients at positive inputs (a ``tf.custom_gradient`` ReLU on a
clone; the shared model is untouched)."""

from __future__ import annotations

import numpy as np

from vizcore.explain.base import Engine, compile_input_grad, register
from vizcore.explain.gradient_base import GradientMethod


def guided_grad_fn(engine: Engine):
    """Compiled ``(x (B,H,W,C), cls) -> (guided gradient, logits)`` on the engine's guided
    variant of the model, built once per model."""
    return engine.cached("guided_grad", lambda: compile_input_grad(engine, *engine.guided()))


def guided_gradients(engine: Engine, x: np.ndarray, target: int) -> tuple[np.ndarray, int]:
    """Guided-backprop gradient (H, W, C) of one image and the resolved target."""
    return GuidedBackprop().gradient(engine, x, target)


@register
class GuidedBackprop(GradientMethod):
    """Saliency with the guided gradient (the only hook it overrides)."""

    key = "guided_backprop"
    name = "Guided backpropagation"
    paper = ("Springenberg, Dosovitskiy, Brox, Riedmiller 2014, Striving for Simplicity: The "
             "All Convolutional Net, arXiv:1412.6806")
    note = ("A gradient in which every ReLU lets only positive signals back. Gives crisp, "
            "edge-like pictures, but it is not class-discriminative: the maps for different "
            "classes look almost the same, and its map barely changes when the classifier layers "
            "are randomised (0.98 similar on the shipped CNN; Adebayo et al. 2018), so it shows "
            "image structure more than the model's reasoning.")
    cost = "1 forward + 1 backward pass (on a model clone)"

    def grad_fn(self, engine: Engine):
        """The guided variant's compiled gradient."""
        return guided_grad_fn(engine)

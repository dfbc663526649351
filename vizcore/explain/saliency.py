"""Saliency: |d logit_c / d x|, the maximum over colour channels (the signed map is the
gradient itself)."""

from __future__ import annotations

from vizcore.explain.base import register
from vizcore.explain.gradient_base import GradientMethod


@register
class Saliency(GradientMethod):
    """Vanilla gradient saliency: everything is the base's single-gradient run."""

    key = "saliency"
    name = "Saliency (vanilla gradient)"
    paper = ("Simonyan, Vedaldi, Zisserman 2013, Deep Inside Convolutional Networks, "
             "arXiv:1312.6034")
    note = ("Shows which pixels, changed a tiny bit, would change the class score most. Fast, "
            "but noisy and speckled; it says how sensitive the score is, not what the model "
            "'looks at'.")
    cost = "1 forward + 1 backward pass"

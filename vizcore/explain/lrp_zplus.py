"""LRP-z+: only positive contributions propagated and biases ignored, in every layer (the
``zplus`` preset)."""

from __future__ import annotations

from vizcore.explain.base import register
from vizcore.explain.lrp import DTD, PAPER, LrpMethod


@register
class LrpZPlus(LrpMethod):
    """The z+ rule of deep Taylor decomposition in every layer."""

    key = "lrp_zplus"
    name = "LRP-z+"
    preset = "zplus"
    paper = PAPER + "; " + DTD
    note = ("Propagates only positive contributions and ignores biases, so the map has the sign "
            "of the score (positive for a positive logit, blank for a negative one) and most of "
            "the score reaches the pixels (81% on the shipped VGG-style CNN; units switched on by "
            "a bias alone are dead ends). It is not class-discriminative: maps for any two "
            "classes with positive logits are practically identical (correlation 0.98-1.00) and "
            "survive randomising the weights, so it shows where the image is bright, not why the "
            "model chose the class.")

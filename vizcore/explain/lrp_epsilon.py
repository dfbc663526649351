"""LRP-epsilon: the logit split backwards layer by layer in proportion to each input's
contribution, every denominator stabilised by epsilon (the ``epsilon`` preset)."""

from __future__ import annotations

from vizcore.explain.base import Param, register
from vizcore.explain.lrp import LrpMethod


@register
class LrpEpsilon(LrpMethod):
    """The epsilon rule in every layer."""

    key = "lrp_epsilon"
    name = "LRP-epsilon"
    preset = "epsilon"
    note = ("Splits the class score (the logit) backwards, layer by layer, in proportion to each "
            "input's contribution, until it reaches the pixels. Red pixels speak for the class, "
            "blue against. With a small epsilon the map equals gradient x input in ReLU networks "
            "(correlation 1.00 on the shipped CNN) and is noisy; a larger epsilon removes weak, "
            "contradictory relevance but also swallows the score (at 0.25 the map keeps under "
            "10% of it). The biases take a big share on the way: about half the logit on the "
            "shipped VGG-style CNN and nearly all of it on the GAP CNN (its batch-norm shifts), "
            "where red and blue nearly cancel; the line under the map says how much.")
    params = (
        Param("epsilon", 1e-6, "float", 1e-9, 10.0, log=True,
              help="Stabiliser added to each neuron's total input: larger values absorb weak or "
              "contradictory relevance and give sparser, less noisy maps (default as in "
              "zennit; relevance is conserved only for small values)."),
    )

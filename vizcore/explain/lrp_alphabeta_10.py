"""LRP-alpha1-beta0: only positive contributions, biases included, propagated in every layer
(the ``ab10`` preset)."""

from __future__ import annotations

from vizcore.explain.base import register
from vizcore.explain.lrp import NOTE_TAIL, LrpMethod


@register
class LrpAlphaBeta10(LrpMethod):
    """The alpha=1, beta=0 rule in every layer."""

    key = "lrp_alphabeta_10"
    name = "LRP-alpha1-beta0"
    preset = "ab10"
    note = ("Propagates only positive contributions (biases included), giving clean maps of "
            "supporting evidence with the sign of the score (all positive for a positive logit, "
            "blank for a negative one). It is not class-discriminative: on the shipped CNNs the "
            "maps for any two classes with positive logits are practically identical "
            "(correlation 0.98-1.00) and stay so when the weights are randomised, so it shows the "
            "image's bright structure more than the model's decision." + NOTE_TAIL)

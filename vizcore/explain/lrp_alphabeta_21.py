"""LRP-alpha2-beta1: positive contributions propagated with weight 2, negative ones with weight 1
(the ``ab21`` preset; the mixing layers use epsilon)."""

from __future__ import annotations

from vizcore.explain.base import register
from vizcore.explain.lrp import NOTE_TAIL, LrpMethod


@register
class LrpAlphaBeta21(LrpMethod):
    """The alpha=2, beta=1 rule in every weighted layer."""

    key = "lrp_alphabeta_21"
    name = "LRP-alpha2-beta1"
    preset = "ab21"
    note = ("Propagates positive contributions with weight 2 and negative ones with weight 1, so "
            "the map shows both evidence for and against the class. Tends to highlight edges; "
            "the map does not add up to the score (each layer can inflate relevance)."
            + NOTE_TAIL)

"""LRP composite: epsilon in the dense layers, z+ in the conv and mixing layers and a chosen rule
(z^B by default) in the first layer (the ``composite`` preset)."""

from __future__ import annotations

from vizcore.explain.base import Param, register
from vizcore.explain.lrp import DTD, PAPER, LrpMethod


@register
class LrpComposite(LrpMethod):
    """The recommended composite; the first layer's rule is a parameter."""

    key = "lrp_composite"
    name = "LRP composite"
    preset = "composite"
    paper = PAPER + "; " + DTD
    note = ("The recommended mix (Montavon 2019): epsilon for the dense layers, z+ for the conv "
            "layers and the bounded-input z^B (box) rule for the first layer. Usually the most "
            "readable LRP map and, unlike pure z+, it changes with the class and passes the "
            "randomisation test. Part of the score is lost on the way, mostly to the dense "
            "layers' epsilon stabiliser rather than their biases; the line under the map says how "
            "much.")
    params = (
        Param("epsilon", 0.25, "float", 1e-9, 10.0, log=True,
              help="Stabiliser of the epsilon rule in the dense layers."),
        Param("first_rule", "zb", "choice", choices=("zb", "zplus", "epsilon"),
              help="Rule for the first layer: z^B uses the pixel range, z+ positive weights."),
    )

"""The base of the LRP methods: one pass of :func:`~vizcore.explain.lrp.propagate.propagate`
with the method's preset, the refusal naming an unsupported layer, and the shared citations.

A method file sets its metadata and :attr:`LrpMethod.preset` (a row of
:data:`~vizcore.explain.lrp.presets.PRESETS`; a mistyped one fails when the file is imported).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from vizcore.explain.base import Attribution, Engine, Method, Progress, normalize
from vizcore.explain.lrp.plan import lrp_applies
from vizcore.explain.lrp.presets import get_preset
from vizcore.explain.lrp.propagate import propagate

PAPER = (
    "Bach, Binder, Montavon, Klauschen, Mueller, Samek 2015, On Pixel-Wise Explanations "
    "... by Layer-Wise Relevance Propagation, PLoS ONE 10(7):e0130140; Montavon, Binder, "
    "Lapuschkin, Samek, Mueller 2019, Layer-Wise Relevance Propagation: An Overview, "
    "LNCS 11700"
)
#: Deep Taylor decomposition (the z+ and z^B rules), added to :data:`PAPER` where used.
DTD = ("Montavon, Lapuschkin, Binder, Samek, Mueller 2017, Explaining nonlinear "
       "classification decisions with deep Taylor decomposition, arXiv:1512.02479")
COST = "1 forward + 1 relevance pass"
#: The end of the note of the methods whose note does not discuss the biases itself.
NOTE_TAIL = (
    " Only part of the score reaches the pixels: each layer's biases take their share on the "
    "way (often more than half in a CNN with biases), and the line under the map says how much."
)


class LrpMethod(Method):
    """An LRP method: the preset of :attr:`preset`, explaining the target's logit.

    Attributes:
        preset: Key of :data:`~vizcore.explain.lrp.presets.PRESETS`.
    """

    family = "lrp"
    paper = PAPER
    cost = COST
    signed = True
    preset: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        get_preset(cls.preset)  # a mistyped preset is an error now, not a silent default

    def run(self, engine: Engine, x: np.ndarray, target: int, layer: str | None,
            progress: Progress = None, epsilon: float = 1e-6,
            first_rule: str = "zb") -> Attribution:
        """One LRP pass; heatmap = positive part of the channel sum of the relevance, signed map
        = the relevance (H, W, C); stats: score, map_sum, bias_absorbed, epsilon_absorbed, held.

        ``epsilon`` and ``first_rule`` keep these defaults for methods without such parameters.
        """
        res = propagate(engine, x, target, self.preset, epsilon, first_rule)
        heat = normalize(np.maximum(res.relevance.sum(axis=-1), 0.0))
        return Attribution(heat, res.relevance, res.target, None, res.stats)

    def applies(self, info) -> tuple[bool, str]:
        """LRP needs every layer between the logits and the input to have a rule; if one has
        none, the reason names it and its kind."""
        return lrp_applies(info)

"""LRP presets: which rule each kind of step uses, one table row per preset.

A row names rules of :data:`~vizcore.explain.lrp.rules.RULES`; a row naming an unknown rule fails
when this module is imported, and :func:`get_preset` turns an unknown preset name into a
ValueError naming the valid ones (never a silent fallback).
"""

from __future__ import annotations

from dataclasses import dataclass

from vizcore.explain.lrp.rules import RULES, named


@dataclass(frozen=True)
class Preset:
    """Which rule each kind of step uses.

    Attributes:
        first: Rule of the first weighted layer(s); None = the ``first_rule`` argument.
        conv: Rule of the other conv layers (Conv2D, DepthwiseConv2D, SeparableConv2D).
        dense: Rule of the other Dense layers.
        mix: Rule of the mixing layers (Add, average pooling, unfolded BatchNormalization).
    """

    first: str | None
    conv: str
    dense: str
    mix: str

    def __post_init__(self):
        for rule in (self.conv, self.dense, self.mix) + ((self.first,) if self.first else ()):
            named(RULES, rule, "rule")


#: One line per preset: first weighted layer, conv layers, dense layers, mixing layers.
PRESETS: dict[str, Preset] = {
    "epsilon": Preset("epsilon", "epsilon", "epsilon", "epsilon"),
    "ab21": Preset("ab21", "ab21", "ab21", "epsilon"),
    "ab10": Preset("ab10", "ab10", "ab10", "ab10"),
    "zplus": Preset("zplus", "zplus", "zplus", "zplus"),
    "composite": Preset(None, "zplus", "epsilon", "zplus"),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``.

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
    """
    return named(PRESETS, name, "preset")

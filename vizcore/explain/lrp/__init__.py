"""Layer-wise relevance propagation (LRP) over the model's graph.

Papers (cited once, in :data:`~vizcore.explain.lrp.base.PAPER` and
:data:`~vizcore.explain.lrp.base.DTD`): Bach et al. 2015 (LRP, the epsilon and alpha-beta rules),
Montavon et al. 2017 (deep Taylor decomposition: the z+ and z^B rules) and Montavon et al. 2019
(the overview: the gradient trick, the composite preset, canonisation).

The package: :mod:`.rules` (the rule objects and :data:`RULES`), :mod:`.presets` (which rule each
kind of step uses, one line per preset in :data:`PRESETS`), :mod:`.plan` (the steps of a model and
the refusal naming an unsupported layer), :mod:`.propagate` (the compiled pass and its stats) and
:mod:`.base` (:class:`LrpMethod`, the base of the method files ``vizcore/explain/lrp_*.py``).

The explained score is the target's logit: a last ``Dense(softmax)`` is applied without its
softmax, a last ``Softmax`` / ``Activation("softmax")`` layer is skipped, a logits output is used
as is. The score is handed back from the output to the pixels over the graph's nodes in reverse
topological order. Each layer call is one *step* that takes the relevance of the tensor the layer
made and hands it to the tensors the layer read; a tensor read by several layers (a residual
shortcut, a DenseNet feature map) gets the sum of what its readers hand back.

Steps:

* Weighted layers (Conv2D, Dense, DepthwiseConv2D; SeparableConv2D as two linear steps,
  depthwise then pointwise) use the rule of the preset's row for their role (first weighted
  layer, conv, dense), computed with the gradient trick ``R_in = a * W^T (R / z)``. A
  BatchNormalization that is the only reader of a linear conv/dense layer is folded into it
  (canonisation): the folded kernel and bias are computed as tensors at trace time, the layer is
  never changed.
* Mixing layers (Add, Average, average pooling, an unfolded BatchNormalization and a Rescaling or
  Normalization inside the network, all linear maps) use the preset's ``mix`` rule: the
  epsilon-stabilised z-rule, or positive parts only under the z+ and alpha1-beta0 presets, so
  those maps keep the sign of the score.
* Routing layers hand relevance back unchanged: activations (ReLU, capped ReLU, relu6, linear),
  pass-throughs (Dropout ...), Flatten/Reshape (reshaped), ZeroPadding2D (cropped),
  Concatenate (sliced), max pooling (winner takes all).
* A Rescaling or Normalization between the input and the first weighted layer is part of the
  input encoding: a pixel's relevance is the relevance of its scaled value, so a model with its
  preprocessing inside gives the same map as the same model fed preprocessed pixels. The z^B
  rule maps the pixel bounds through those layers (and ZeroPadding2D, Flatten, Reshape).

Bias absorption: every linear step records the relevance its bias took (``sum_j b_j R_j / z_j``
with the step's own denominator) and, separately, what the epsilon stabiliser took (``sum_j
eps_j R_j / z_j``, plus the relevance of units whose denominator is zero). Both are computed from
those terms, never as a difference of totals, so ``map_sum + bias_absorbed + epsilon_absorbed =
score`` is a check on the whole propagation. In a CNN with biases they often absorb more than
half the logit.
"""

from vizcore.explain.lrp.base import COST, DTD, NOTE_TAIL, PAPER, LrpMethod
from vizcore.explain.lrp.plan import (
    WEIGHTED,
    LRPUnsupported,
    Plan,
    Step,
    build_plan,
    lrp_applies,
    lrp_support,
)
from vizcore.explain.lrp.presets import PRESETS, Preset, get_preset
from vizcore.explain.lrp.propagate import LRPResult, compiled_pass, describe_stats, propagate
from vizcore.explain.lrp.rules import RULES, AlphaBeta, Epsilon, Linear, Rule, ZBox, get_rule

__all__ = [
    "COST", "DTD", "NOTE_TAIL", "PAPER", "PRESETS", "RULES", "WEIGHTED", "AlphaBeta", "Epsilon",
    "LRPResult", "LRPUnsupported", "Linear", "LrpMethod", "Plan", "Preset", "Rule", "Step", "ZBox",
    "build_plan", "compiled_pass", "describe_stats", "get_preset", "get_rule", "lrp_applies",
    "lrp_support", "propagate",
]

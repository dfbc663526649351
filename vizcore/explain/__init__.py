"""Attribution methods behind one registry and one entry point.

Usage::

    from vizcore.explain import explain, REGISTRY
    exp = explain(info, x, "gradcam")           # predicted class, last conv layer
    exp.heatmap                                  # (H, W) float32 in [0, 1]

Each method is one module named like its registry key, holding one ``@register`` class (see
:mod:`vizcore.explain.base`); importing it below is its registration line. The families share
:mod:`~vizcore.explain.gradient_base`, :mod:`~vizcore.explain.cam_base` and the
:mod:`~vizcore.explain.lrp` package (rules, presets, propagation). Faithfulness and sanity
metrics live in :mod:`vizcore.explain.metrics`.
"""

# One line per method; this order is the order of the page's method list.
from vizcore.explain.base import (  # noqa: I001
    FAMILIES,
    REGISTRY,
    Engine,
    Explanation,
    Method,
    Param,
    explain,
    explain_batch,
    get_engine,
    get_method,
    method_plan,
    methods,
    normalize,
)
from vizcore.explain import saliency as saliency
from vizcore.explain import smoothgrad as smoothgrad
from vizcore.explain import guided_backprop as guided_backprop
from vizcore.explain import integrated_gradients as integrated_gradients
from vizcore.explain import cam as cam
from vizcore.explain import gradcam as gradcam
from vizcore.explain import gradcam_plus_plus as gradcam_plus_plus
from vizcore.explain import score_cam as score_cam
from vizcore.explain import faster_score_cam as faster_score_cam
from vizcore.explain import layercam as layercam
from vizcore.explain import guided_gradcam as guided_gradcam
from vizcore.explain import lrp as lrp
from vizcore.explain import lrp_epsilon as lrp_epsilon
from vizcore.explain import lrp_alphabeta_21 as lrp_alphabeta_21
from vizcore.explain import lrp_alphabeta_10 as lrp_alphabeta_10
from vizcore.explain import lrp_zplus as lrp_zplus
from vizcore.explain import lrp_composite as lrp_composite
from vizcore.explain import occlusion as occlusion

__all__ = [
    "FAMILIES",
    "REGISTRY",
    "Engine",
    "Explanation",
    "Method",
    "Param",
    "explain",
    "explain_batch",
    "get_engine",
    "get_method",
    "method_plan",
    "methods",
    "normalize",
    "lrp",
]

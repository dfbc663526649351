"""Attribution methods behind one registry and one entry point.

Usage::

    from vizcore.explain import explain, REGISTRY
    exp = explain(info, x, "gradcam")           # predicted class, last conv layer
    exp.heatmap                                  # (H, W) float32 in [0, 1]

Modules register their methods on import: gradients (saliency, SmoothGrad, guided backprop,
integrated gradients), cams (CAM, Grad-CAM, Grad-CAM++, Score-CAM, Faster Score-CAM, Layer-CAM,
Guided Grad-CAM), lrp (epsilon, alpha-beta, z+, composite) and occlusion. Faithfulness and
sanity metrics live in :mod:`vizcore.explain.metrics`.
"""

# Registration order is the order of the page's method list: base first, then the families.
from vizcore.explain.base import (  # noqa: I001
    FAMILIES,
    REGISTRY,
    Engine,
    Explanation,
    MethodSpec,
    Param,
    explain,
    get_engine,
    get_method,
    method_plan,
    methods,
    normalize,
)
from vizcore.explain import gradients as gradients
from vizcore.explain import cams as cams
from vizcore.explain import lrp as lrp
from vizcore.explain import occlusion as occlusion

__all__ = [
    "FAMILIES",
    "REGISTRY",
    "Engine",
    "Explanation",
    "MethodSpec",
    "Param",
    "explain",
    "get_engine",
    "get_method",
    "method_plan",
    "methods",
    "normalize",
    "gradients",
    "cams",
    "lrp",
    "occlusion",
]

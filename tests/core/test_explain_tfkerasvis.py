"""Our compiled methods against tf-keras-vis 0.8.7 on the same model, input and target.

tf-keras-vis is used as its documentation shows: a visualizer built on the functional model
(``ReplaceToLinear`` so that it explains logits, as we do; it clones the model), then called with
a ``CategoricalScore``. It returns min-max normalised maps, so we compare our heatmaps after the
same normalisation. CAM maps use ``interpolation="bilinear_align_corners"``, which is the grid
of its ``scipy.ndimage.zoom(order=1)``. Tolerance: 2e-4 absolute on [0, 1] maps (float32
round-off; SmoothGrad draws the same noise from the same seed), 1e-3 for Grad-CAM++, whose cubed
gradients are rounded differently (we drop the exp(score) factor that cancels out).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import assert_weights_equal, weights_snapshot
from vizcore.explain import explain, normalize

ATOL = 2e-4
ATOL_PP = 1e-3
AC = {"interpolation": "bilinear_align_corners"}


def _tkv(info, cls, **kw):
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

    return cls(info.model, model_modifier=ReplaceToLinear(), clone=True, **kw)


def _score(t):
    from tf_keras_vis.utils.scores import CategoricalScore

    return CategoricalScore([t])


@pytest.mark.parametrize("model", ["ex_cnn", "ex_gap"])
def test_saliency_matches(model, request, ex_blobs):
    from tf_keras_vis.saliency import Saliency

    info = request.getfixturevalue(model)
    before = weights_snapshot(info.model)
    vis = _tkv(info, Saliency)
    for x in ex_blobs[0][:2]:
        e = explain(info, x, "saliency")
        theirs = vis(_score(e.target), x[None])[0]
        np.testing.assert_allclose(normalize(e.heatmap), normalize(theirs), atol=ATOL)
    assert_weights_equal(info.model, before)


def test_smoothgrad_matches_with_the_same_seed(ex_cnn, ex_blobs):
    from tf_keras_vis.saliency import Saliency

    x = ex_blobs[0][0]
    vis = _tkv(ex_cnn, Saliency)
    e = explain(ex_cnn, x, "smoothgrad", n=10, noise=0.2, seed=7, batch_size=4)
    np.random.seed(7)
    theirs = vis(_score(e.target), x[None], smooth_samples=10, smooth_noise=0.2)[0]
    np.testing.assert_allclose(normalize(e.heatmap), normalize(theirs), atol=ATOL)


@pytest.mark.parametrize(
    "method,cls_name",
    [("gradcam", "Gradcam"), ("gradcam_plus_plus", "GradcamPlusPlus"), ("layercam", "Layercam")],
)
@pytest.mark.parametrize("model", ["ex_cnn", "ex_gap"])
@pytest.mark.parametrize("layer", [None, "conv2"])
def test_gradient_cams_match(method, cls_name, model, layer, request, ex_blobs):
    import tf_keras_vis.gradcam as gc
    import tf_keras_vis.gradcam_plus_plus as gpp
    import tf_keras_vis.layercam as lc

    cls = {"Gradcam": gc.Gradcam, "GradcamPlusPlus": gpp.GradcamPlusPlus, "Layercam": lc.Layercam}[
        cls_name
    ]
    info = request.getfixturevalue(model)
    vis = _tkv(info, cls)
    for x in ex_blobs[0][:2]:
        e = explain(info, x, method, layer=layer, **AC)
        theirs = vis(_score(e.target), x[None], penultimate_layer=e.layer)[0]
        atol = ATOL_PP if method == "gradcam_plus_plus" else ATOL
        np.testing.assert_allclose(normalize(e.heatmap), normalize(theirs), atol=atol)


@pytest.mark.parametrize("model", ["ex_cnn", "ex_gap"])
def test_score_cam_matches(model, request, ex_blobs):
    from tf_keras_vis.scorecam import Scorecam

    info = request.getfixturevalue(model)
    vis = _tkv(info, Scorecam)
    x = ex_blobs[0][1]
    e = explain(info, x, "score_cam", batch_size=8, **AC)
    theirs = vis(_score(e.target), x[None], penultimate_layer=e.layer, batch_size=8)[0]
    np.testing.assert_allclose(normalize(e.heatmap), normalize(theirs), atol=ATOL)


def test_faster_score_cam_matches(ex_gap, ex_blobs):
    from tf_keras_vis.scorecam import Scorecam

    vis = _tkv(ex_gap, Scorecam)
    x = ex_blobs[0][2]
    e = explain(ex_gap, x, "faster_score_cam", max_n=6, **AC)
    theirs = vis(_score(e.target), x[None], penultimate_layer=e.layer, max_N=6)[0]
    np.testing.assert_allclose(normalize(e.heatmap), normalize(theirs), atol=ATOL)


def test_guided_backprop_matches(ex_cnn, ex_blobs):
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.model_modifiers import GuidedBackpropagation, ReplaceToLinear

    vis = Saliency(
        ex_cnn.model, model_modifier=[ReplaceToLinear(), GuidedBackpropagation()], clone=True
    )
    x = ex_blobs[0][0]
    e = explain(ex_cnn, x, "guided_backprop")
    theirs = vis(_score(e.target), x[None])[0]
    np.testing.assert_allclose(normalize(e.heatmap), normalize(theirs), atol=ATOL)

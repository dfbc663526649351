"""Contract tests over the whole registry: every method, every applicable fixture model."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from tests.core.explain_fixtures import ex_blobs, ex_cnn, ex_gap  # noqa: F401
from tests.helpers import assert_weights_equal, weights_snapshot
from vizcore.explain import FAMILIES, REGISTRY, explain, get_method

# Keep the expensive methods cheap in tests.
FAST = {"smoothgrad": {"n": 8}, "integrated_gradients": {"steps": 8}}
KEYS = list(REGISTRY)


def test_registry_lists_every_method_of_the_issue():
    expected = {
        "saliency",
        "smoothgrad",
        "guided_backprop",
        "integrated_gradients",
        "cam",
        "gradcam",
        "gradcam_plus_plus",
        "score_cam",
        "faster_score_cam",
        "layercam",
        "guided_gradcam",
        "lrp_epsilon",
        "lrp_alphabeta_21",
        "lrp_alphabeta_10",
        "lrp_zplus",
        "lrp_composite",
    }
    assert expected <= set(REGISTRY)


@pytest.mark.parametrize("key", KEYS)
def test_spec_is_documented(key):
    spec = get_method(key)
    assert spec.family in FAMILIES
    assert spec.name and spec.paper and len(spec.note) > 40 and spec.cost
    assert any(str(y) in spec.paper for y in range(2013, 2022))
    doc = inspect.getdoc(spec.fn) or ""
    assert "Cost" in doc and any(str(y) in doc for y in range(2013, 2022))
    fn_params = set(inspect.signature(spec.fn).parameters)
    for p in spec.params:
        assert p.validate(p.default) == p.default
        assert p.name in fn_params or "params" in fn_params


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("model", ["ex_cnn", "ex_gap"])
def test_contract(key, model, request, ex_blobs):  # noqa: F811
    info = request.getfixturevalue(model)
    spec = get_method(key)
    ok, reason = spec.applies_to(info)
    if not ok:
        assert key == "cam" and model == "ex_cnn" and "global average pooling" in reason
        with pytest.raises(ValueError, match="global average pooling"):
            explain(info, ex_blobs[0][0], key)
        return
    x = ex_blobs[0][0]
    before = weights_snapshot(info.model)
    seen = []
    e = explain(info, x, key, progress=seen.append, **FAST.get(key, {}))
    assert e.heatmap.shape == (28, 28) and e.heatmap.dtype == np.float32
    assert np.isfinite(e.heatmap).all()
    assert e.heatmap.min() >= 0.0 and e.heatmap.max() <= 1.0
    assert e.method == key and 0 <= e.target < 4
    assert e.target == int(np.argmax(info.forward(x[None])[0]))
    assert seen and seen[-1] == 1.0
    assert e.seconds > 0
    if spec.signed:
        assert e.signed is not None and np.isfinite(e.signed).all()
        assert e.signed.shape[:2] == (28, 28)
    if spec.family == "cam":
        assert e.layer in info.conv_layers()
    # deterministic (seeded) and for any requested target
    e2 = explain(info, x, key, **FAST.get(key, {}))
    np.testing.assert_array_equal(e.heatmap, e2.heatmap)
    other = (e.target + 1) % 4
    e3 = explain(info, x, key, target=other, **FAST.get(key, {}))
    assert e3.target == other and np.isfinite(e3.heatmap).all()
    assert_weights_equal(info.model, before)


def test_layer_choice_and_errors(ex_cnn, ex_blobs):  # noqa: F811
    x = ex_blobs[0][0]
    assert explain(ex_cnn, x, "gradcam").layer == "conv3"
    assert explain(ex_cnn, x, "gradcam", layer="conv1").layer == "conv1"
    with pytest.raises(ValueError, match="no layer"):
        explain(ex_cnn, x, "gradcam", layer="nope")
    with pytest.raises(ValueError, match="feature maps"):
        explain(ex_cnn, x, "gradcam", layer="fc1")
    with pytest.raises(TypeError, match="no parameter"):
        explain(ex_cnn, x, "saliency", bogus=1)
    with pytest.raises(ValueError, match="outside"):
        explain(ex_cnn, x, "smoothgrad", noise=5.0)
    with pytest.raises(ValueError, match="target"):
        explain(ex_cnn, x, "saliency", target=9)
    with pytest.raises(ValueError, match="shape"):
        explain(ex_cnn, x[:10], "saliency")
    with pytest.raises(KeyError):
        explain(ex_cnn, x, "no_such_method")


def test_smoothgrad_seed_changes_noise(ex_cnn, ex_blobs):  # noqa: F811
    x = ex_blobs[0][0]
    a = explain(ex_cnn, x, "smoothgrad", n=8, seed=0).heatmap
    b = explain(ex_cnn, x, "smoothgrad", n=8, seed=1).heatmap
    assert not np.array_equal(a, b)


def test_vizcore_explain_never_imports_streamlit():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2] / "vizcore" / "explain"
    for path in root.glob("*.py"):
        text = path.read_text()
        assert "import streamlit" not in text and "print(" not in text, path

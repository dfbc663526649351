"""Contract tests over the whole registry: every method, every applicable fixture model."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import assert_weights_equal, weights_snapshot
from vizcore.explain import FAMILIES, REGISTRY, explain, get_method
from vizcore.explain.base import Method

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


MAX_METHOD_LINES = 150
ARXIV = re.compile(r"arXiv:\d{4}\.\d{4,5}")
JOURNAL = re.compile(r"\b(IEEE|PLoS|LNCS|JMLR|Journal|Transactions|Proceedings)\b[^;]*\d")
YEAR = re.compile(r"\b(19[89]\d|20[0-4]\d)\b")


@pytest.mark.parametrize("key", KEYS)
def test_method_is_one_small_file_named_like_its_key(key):
    method = get_method(key)
    assert isinstance(method, Method) and type(method) is not Method
    assert method.key == key
    module = sys.modules[type(method).__module__]
    assert module.__name__ == f"vizcore.explain.{key}", (
        f"{key} is defined in {module.__name__}, not in its own file vizcore/explain/{key}.py")
    lines = Path(module.__file__).read_text().count("\n")
    assert lines <= MAX_METHOD_LINES, f"{module.__file__} has {lines} lines"
    assert (module.__doc__ or "").strip(), "the module docstring says what the method computes"
    # the paper is cited once, in the ``paper`` attribute
    source = Path(module.__file__).read_text()
    for arxiv in ARXIV.findall(method.paper):
        assert source.count(arxiv) <= 1, f"{arxiv} is cited more than once in {module.__file__}"
    init = (Path(module.__file__).parent / "__init__.py").read_text()
    assert re.search(rf"^from vizcore\.explain import {key}\b", init, re.M), (
        "one registration line in vizcore/explain/__init__.py")


@pytest.mark.parametrize("key", KEYS)
def test_method_is_documented(key):
    method = get_method(key)
    assert method.family in FAMILIES and method.name
    assert method.cost and method.cost.strip() == method.cost
    # the paper: authors, a year, and an arXiv id or a journal
    assert YEAR.search(ARXIV.sub("", method.paper)), method.paper
    assert ARXIV.search(method.paper) or JOURNAL.search(method.paper), method.paper
    # the note: plain text for students, no markup, no joins that lost a space
    note = method.note
    assert len(note) > 40 and note == note.strip() and note.endswith(".")
    assert not re.search(r"[`*<>\[\]#\n]|  |https?:", note), note
    assert not re.search(r"[a-z][.,;][A-Za-z]", note), note
    for p in method.params:
        assert p.validate(p.default) == p.default, p.name
        assert p.help, p.name
    run = inspect.signature(type(method).run).parameters
    if not any(v.kind is inspect.Parameter.VAR_KEYWORD for v in run.values()):
        missing = [p.name for p in method.params if p.name not in run]
        assert not missing, f"{key}.run does not take {missing}"


@pytest.mark.parametrize("key", KEYS)
def test_explain_accepts_every_parameter(key, ex_cnn, ex_gap, ex_blobs):
    method = get_method(key)
    info = ex_cnn if method.applies_to(ex_cnn)[0] else ex_gap
    given = {**method.defaults(), **FAST.get(key, {})}
    e = explain(info, ex_blobs[0][0], key, **given)
    assert e.params == given and set(e.params) == {p.name for p in method.params}


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("model", ["ex_cnn", "ex_gap"])
def test_contract(key, model, request, ex_blobs):
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


def test_layer_choice_and_errors(ex_cnn, ex_blobs):
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


def test_smoothgrad_seed_changes_noise(ex_cnn, ex_blobs):
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

"""AppTest runs of the "What a unit wants to see" page (tiny optimisation budgets)."""

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "app_pages" / "unit_viz.py")
TINY = {"uv_steps_fashion_vgg": 4, "uv_every_fashion_vgg": 2, "uv_atlas_n": 2,
        "uv_atlas_steps_fashion_vgg": 2}


def _run(state: dict) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=240)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def _array(v) -> np.ndarray:
    """A plotly array, plain or base64-typed ({"dtype", "bdata"})."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), v["dtype"])
    return np.asarray(v)


def _figure(at, i: int) -> dict:
    return json.loads(at.get("plotly_chart")[i].proto.spec)


def test_default_model_animation_curve_patches_and_atlas():
    at = _run(TINY)
    assert at.selectbox(key="uv_layer").value == "block3_conv1"  # the last conv layer
    anim, curve = _figure(at, 0), _figure(at, 1)
    # frames at steps 0, 2, 4 with a play button and a slider over them
    assert [f["name"] for f in anim["frames"]] == ["0", "2", "4"]
    assert anim["layout"]["updatemenus"][0]["buttons"][0]["method"] == "animate"
    assert len(anim["layout"]["sliders"][0]["steps"]) == 3
    assert len(_array(curve["data"][0]["y"])) == 4  # one activation per step
    assert any("random start" in c.value for c in at.caption)
    assert any("receptive field" in c.value for c in at.caption)
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download the animation (GIF)" in labels
    assert sum("block" in m.value for m in at.markdown) >= 3  # atlas rows


def test_other_channel_dense_layer_and_class_unit():
    at = _run(TINY)
    at.number_input(key="uv_unit_block3_conv1").set_value(5).run()
    assert not at.exception
    assert any("unit 5" in c.value for c in at.caption)
    at.selectbox(key="uv_layer").set_value("predictions").run()
    assert not at.exception
    at.selectbox(key="uv_unit_predictions").set_value(7).run()
    assert not at.exception
    assert any("Sneaker" in c.value for c in at.caption)
    assert any("Pick a conv layer" in i.value for i in at.info)


def test_vgg16_random_waits_for_the_button_then_runs():
    state = {"vz_model_key": "vgg16-random", "uv_layer": "block1_conv1",
             "uv_steps_vgg16-random": 1, "uv_every_vgg16-random": 1, "uv_atlas_n": 2,
             "uv_atlas_steps_vgg16-random": 1}
    at = _run(state)
    assert not at.get("plotly_chart")  # nothing heavy before the click
    at.button(key="uv_go_btn").click().run()
    assert not at.exception, at.exception
    anim = _figure(at, 0)
    assert [f["name"] for f in anim["frames"]] == ["0", "1"]

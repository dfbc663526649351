"""User models in the browser: a plain Sequential CNN and a nested transfer model
(MobileNetV2 inside a Sequential) uploaded on Home, then explained with Grad-CAM and LRP.

Screenshots of Home (the model summary and the method plan) and of the Explain page are kept in
artifacts/screenshots/.
"""

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import CHROMIUM, exceptions, load_model_file, shoot, wait_idle

pytestmark = pytest.mark.e2e

if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)",
                allow_module_level=True)

def _plain_cnn():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv_a"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(16, 3, activation="relu", name="conv_b"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax", name="scores"),
    ])


def _nested_mobilenet():
    """MobileNetV2 (random weights) as the base of a transfer model. Its batch-norm statistics
    are set from one batch of noise: with the initial ones the features die out on the way up,
    every class gets 20% and every map is flat, which would test nothing."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(64, 64, 3))
    model = keras.Sequential([base, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(5, activation="softmax", name="scores")])
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(np.random.default_rng(0).uniform(0, 1, (16, 64, 64, 3)).astype("float32"),
          training=True)
    return model


def _upload_and_check_home(page, app_url, model, path: Path, facts: list[str]) -> str:
    """Upload ``model`` on Home; check the summary shows ``facts``; return the main text."""
    load_model_file(page, app_url, model, path)
    main = page.locator('[data-testid="stMain"]')
    expect(main).to_contain_text(f"Current model: Your model: {path.name}", timeout=120_000)
    wait_idle(page, heading="vizcore")
    assert exceptions(page) == []
    expect(main).to_contain_text("which methods will run")
    plan = main.locator('[data-testid="stDataFrame"]').first
    plan.wait_for(timeout=30_000)
    assert plan.is_visible()  # the overview is open for uploads
    text = main.inner_text()
    for fact in facts:
        assert fact in text, fact
    page.get_by_text("Predicted:").first.wait_for(timeout=60_000)
    return text


def _chosen(box) -> list[str]:
    """The methods a multiselect shows as chosen (read in one go: the tags re-render)."""
    return box.locator("span[data-tag] span[title]").evaluate_all("els => els.map(e => e.title)")


def _open_explain_with(page, methods: list[str]) -> list[str]:
    """Go to Explain (same session) and choose exactly ``methods``; return those that were not
    offered (refused for this model).

    The page starts computing its default methods at once; changing the choice while it runs
    interrupts that (Streamlit reruns at the next element), so the test does not wait for maps
    it does not need.
    """
    page.get_by_role("link", name="Explain a prediction").first.click()
    box = page.locator('[data-testid="stMultiSelect"]').first
    box.wait_for(timeout=120_000)
    for _ in range(10):
        extra = [n for n in _chosen(box) if n not in methods]
        if not extra:
            break
        box.get_by_role("button", name=f"Remove {extra[0]}").click()
    chosen = _chosen(box)
    picker = box.locator("input")
    refused = []
    for name in methods:
        if name in chosen:
            continue
        picker.click()
        picker.fill(name)  # filters the (virtualised) list of options
        option = page.get_by_role("option", name=name, exact=True)
        if option.count() == 0:
            refused.append(name)
        else:
            option.click()
        page.keyboard.press("Escape")
    wait_idle(page, heading="Explain a prediction")
    assert _chosen(box) == [m for m in methods if m not in refused]
    return refused


def _assert_map_drawn(page, key: str) -> None:
    """The overlay figure of method ``key`` is drawn: a plotly heatmap over the image."""
    fig = page.locator(f".st-key-xp_ov_{key} .js-plotly-plot")
    fig.wait_for(timeout=120_000)
    fig.locator("g.hm image").first.wait_for(state="attached", timeout=60_000)
    box = fig.bounding_box()
    assert box and box["width"] > 150 and box["height"] > 150


def test_sequential_cnn_upload_then_gradcam_and_lrp(app_url, page, tmp_path):
    _upload_and_check_home(page, app_url, _plain_cnn(), tmp_path / "plain_cnn.keras", [
        "28x28x1", "10 (class 0, class 1, class 2, class 3, ...)", "'conv_b'"])
    assert re.search(r"One chain\s+yes", page.locator('[data-testid="stMain"]').inner_text())
    shoot(page, "user_models_home_sequential")
    refused = _open_explain_with(page, ["Grad-CAM", "LRP-epsilon"])
    assert refused == []
    assert exceptions(page) == []
    _assert_map_drawn(page, "gradcam")
    _assert_map_drawn(page, "lrp_epsilon")
    assert "at layer conv_b" in page.locator('[data-testid="stMain"]').inner_text()
    shoot(page, "user_models_explain_sequential")


def test_nested_mobilenet_upload_then_gradcam_and_lrp(app_url, page, tmp_path):
    text = _upload_and_check_home(page, app_url, _nested_mobilenet(),
                                  tmp_path / "mobilenet_transfer.keras",
                                  ["64x64x3", "5 (class 0", "'out_relu'",
                                   "no: the first fork or merge is at"])  # residual blocks
    layers = re.search(r"Layers\s+(\d+), those of the nested mobilenetv2_1.00_64 included", text)
    assert layers and int(layers.group(1)) > 150  # MobileNetV2's layers, inlined
    shoot(page, "user_models_home_mobilenet")
    refused = _open_explain_with(page, ["Grad-CAM", "LRP-epsilon"])
    assert refused == []  # LRP runs through residual Add, depthwise convs and ReLU6
    assert exceptions(page) == []
    _assert_map_drawn(page, "gradcam")
    _assert_map_drawn(page, "lrp_epsilon")
    main = page.locator('[data-testid="stMain"]').inner_text()
    assert "Explained score (logit)" in main  # what the LRP map holds, what biases absorbed
    shoot(page, "user_models_explain_mobilenet")
    # the architecture page draws the inlined graph and lists every nested layer
    page.get_by_role("link", name="Architecture").first.click()
    wait_idle(page, heading="Architecture")
    assert exceptions(page) == []
    arch = page.locator('[data-testid="stMain"]')
    expect(arch).to_contain_text("The graph shows the first 120 of")
    shoot(page, "user_models_architecture_mobilenet")

"""The app served by `streamlit run`, driven by Debian's headless Chromium.

Every page loads without a Streamlit exception box; key interactions work; a screenshot of each
page is kept in artifacts/screenshots/ (git-ignored).
"""

import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import (
    CHROMIUM,
    exceptions,
    load_model_file,
    shoot,
    upload_file,
    wait_idle,
)

pytestmark = pytest.mark.e2e

if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)",
                allow_module_level=True)

PAGES = [
    ("", "vizcore: see inside a CNN", "home"),
    ("architecture", "Architecture", "architecture"),
    ("filters", "Filters and feature maps", "filters"),
    ("explain", "Explain a prediction", "explain"),
    ("unit_viz", "What a unit wants to see", "unit_viz"),
    ("embeddings", "Embeddings", "embeddings"),
    ("occlusion", "Occlusion", "occlusion"),
    ("adversarial", "Fooling the model", "adversarial"),
    ("training_lab", "Training lab", "training_lab"),
]


@pytest.mark.parametrize("path,heading,name", PAGES, ids=[p[2] for p in PAGES])
def test_page_loads_without_exception(app_url, page, path, heading, name):
    page.goto(f"{app_url}/{path}")
    wait_idle(page, heading=heading)
    assert exceptions(page) == []
    shot = shoot(page, name)
    assert shot.stat().st_size > 10_000


def test_home_prediction_chart_renders(app_url, page):
    page.goto(app_url)
    wait_idle(page, heading="vizcore")
    page.get_by_text("Predicted:").first.wait_for(timeout=60_000)
    # plotly draws the top-k bars as SVG paths inside .js-plotly-plot
    # the smallest bars have zero width, so wait for the paths to exist, not to be visible
    page.locator(".js-plotly-plot .bars path").first.wait_for(state="attached", timeout=60_000)
    assert page.locator(".js-plotly-plot .bars path").count() >= 3


def test_choosing_a_dataset_image_changes_the_input(app_url, page):
    page.goto(app_url)
    wait_idle(page, heading="vizcore")
    before = page.locator('[data-testid="stSidebar"] [data-testid="stImage"]').first
    before_caption = page.locator('[data-testid="stSidebar"]').inner_text()
    page.get_by_role("button", name="Use", exact=True).nth(3).click()
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("#3", timeout=60_000)
    wait_idle(page, heading="vizcore")
    assert exceptions(page) == []
    assert before.count() == 1
    assert page.locator('[data-testid="stSidebar"]').inner_text() != before_caption


def test_model_switch_to_gap_updates_architecture(app_url, page):
    page.goto(f"{app_url}/architecture")
    wait_idle(page, heading="Architecture")
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="Fashion-MNIST GAP CNN (CAM-ready)").click()
    wait_idle(page, heading="Architecture")
    assert exceptions(page) == []
    page.get_by_text("GlobalAveragePooling2D").first.wait_for(timeout=30_000)
    shoot(page, "architecture_gap")


def test_drawing_on_the_canvas_becomes_the_input(app_url, page):
    page.goto(app_url)
    wait_idle(page, heading="vizcore")
    page.get_by_role("tab", name="Draw").click()
    canvas = page.locator('[data-testid="stMain"] canvas').last
    canvas.wait_for(timeout=60_000)
    canvas.scroll_into_view_if_needed()  # the mouse draws in viewport coordinates
    box = canvas.bounding_box()
    assert box and box["width"] >= 200
    before = page.get_by_text("Predicted:").first.inner_text()
    page.mouse.move(box["x"] + 60, box["y"] + 60)
    page.mouse.down()
    for i in range(1, 16):
        page.mouse.move(box["x"] + 60 + 10 * i, box["y"] + 60 + 8 * i, steps=2)
    page.mouse.up()
    time.sleep(1.5)  # the component sends its image data after the stroke
    wait_idle(page, heading="vizcore")
    page.get_by_role("button", name="Use drawing").click()
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("your drawing",
                                                                      timeout=60_000)
    wait_idle(page, heading="vizcore")
    assert exceptions(page) == []
    after = page.get_by_text("Predicted:").first.inner_text()
    assert "your drawing" in page.locator('[data-testid="stMain"]').inner_text()
    assert after != before or "Ankle boot" not in after
    shoot(page, "home_drawing")


def test_bad_image_upload_shows_error_and_keeps_input(app_url, page, tmp_path):
    page.goto(app_url)
    wait_idle(page, heading="vizcore")
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("#0", timeout=60_000)
    before = page.locator('[data-testid="stSidebar"]').inner_text()
    page.get_by_role("tab", name="Upload an image").click()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    upload_file(page, "Image (PNG", bad)
    err = page.locator('[data-testid="stAlertContentError"]').first
    err.wait_for(timeout=60_000)
    assert "broken.png" in err.inner_text()
    assert exceptions(page) == []
    assert page.locator('[data-testid="stSidebar"]').inner_text() == before


def test_good_image_upload_becomes_the_input(app_url, page, tmp_path):
    from PIL import Image

    page.goto(app_url)
    wait_idle(page, heading="vizcore")
    page.get_by_role("tab", name="Upload an image").click()
    img = Image.new("RGB", (120, 90), (250, 250, 250))
    img.paste((20, 20, 20), (30, 20, 90, 70))
    path = tmp_path / "dark_box.png"
    img.save(path)
    upload_file(page, "Image (PNG", path)
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("dark_box.png",
                                                                      timeout=60_000)
    wait_idle(page, heading="vizcore")
    assert exceptions(page) == []


def test_lambda_model_upload_is_refused_and_default_stays(app_url, page, tmp_path):
    import keras

    inp = keras.Input((28, 28, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inp)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(10, activation="softmax")(x)
    load_model_file(page, app_url, keras.Model(inp, out), tmp_path / "lambda_model.keras")
    err = page.locator('[data-testid="stAlertContentError"]').first
    err.wait_for(timeout=60_000)
    assert "Lambda" in err.inner_text()
    assert exceptions(page) == []
    main = page.locator('[data-testid="stMain"]').inner_text()
    assert "Current model: Fashion-MNIST CNN" in main
    shoot(page, "home_lambda_refused")


def test_explain_scores_maps_in_the_browser(app_url, page):
    page.goto(app_url)
    wait_idle(page, heading="vizcore")
    page.get_by_role("link", name="Explain a prediction").first.click()
    wait_idle(page, heading="Explain a prediction")
    assert page.get_by_role("heading", name="Grad-CAM").count() == 1
    page.get_by_role("button", name="Score these maps").click()
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=180_000)
    wait_idle(page, heading="Explain a prediction")
    assert exceptions(page) == []
    shoot(page, "explain_scored")


def test_valid_model_upload_is_selected_and_predicts(app_url, page, tmp_path):
    import keras

    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(3, activation="softmax")(x)
    load_model_file(page, app_url, keras.Model(inp, out), tmp_path / "tiny_rgb.keras")
    expect(page.locator('[data-testid="stMain"]')).to_contain_text(
        "Current model: Your model: tiny_rgb.keras", timeout=120_000)
    wait_idle(page, heading="vizcore")
    assert exceptions(page) == []
    assert "Input 32x32x3" in page.locator('[data-testid="stMain"]').inner_text()
    page.get_by_text("Predicted:").first.wait_for(timeout=60_000)

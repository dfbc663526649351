"""Every page runs on the two shapes of model users upload most: a plain Sequential CNN and the
transfer-learning shape (a nested keras.applications base under a new head), both uploaded
through the Home form and the real loader."""

import tempfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.test_pages import ROOT, TIMEOUT

PAGES = ("architecture", "filters", "unit_viz", "explain", "occlusion", "adversarial",
         "embeddings")


def _saved(model, name: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        model.save(path)
        return path.read_bytes()


def _sequential() -> bytes:
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    return _saved(keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(6, 3, activation="relu", name="c1"),
        layers.MaxPooling2D(name="pool"), layers.Conv2D(8, 3, activation="relu", name="c2"),
        layers.GlobalAveragePooling2D(name="gap"), layers.Dense(10, activation="softmax")]),
        "model.keras")


def _transfer() -> bytes:
    import keras
    from keras import layers

    keras.utils.set_random_seed(4)
    base = keras.applications.MobileNetV2(include_top=False, weights=None,
                                          input_shape=(32, 32, 3), alpha=0.35)
    return _saved(keras.Sequential([base, layers.GlobalAveragePooling2D(name="pool"),
                                    layers.Dense(4, activation="softmax", name="head")]),
                  "model.keras")


@pytest.fixture(scope="module", params=["sequential", "transfer"])
def uploaded(request) -> AppTest:
    data = _sequential() if request.param == "sequential" else _transfer()
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    at.file_uploader(key="model_upload").set_value(
        ("model.keras", data, "application/octet-stream")).run()
    at.button(key="model_load").click().run()
    assert not at.exception, at.exception
    assert at.session_state["vz_model_key"].startswith("upload:")
    return at


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_on_an_uploaded_model(uploaded, page):
    at = uploaded
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    assert at.session_state["vz_model_key"].startswith("upload:")
    if page == "explain":
        layer = next(s for s in at.selectbox if s.label == "Layer for the CAM family")
        # the nested base's layers are offered, the default is its last conv block
        assert layer.value in ("c2", "out_relu")
        assert len(layer.options) >= (2 if layer.value == "c2" else 50)
    if page == "architecture":
        assert at.dataframe

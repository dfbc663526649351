"""AppTest runs of every page with its main widgets changed."""

import io
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 240


def run_page(name: str, state: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages" / f"{name}.py"), default_timeout=TIMEOUT)
    for k, v in (state or {}).items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def test_entry_point_runs_with_navigation():
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="vz_model_select").value == "fashion_vgg"


def test_home_shows_prediction_and_switches_dataset_and_class():
    from vizcore import data

    at = run_page("home")
    assert any("Predicted:" in m.value for m in at.markdown)
    assert at.get("plotly_chart"), "top-k bar chart"
    assert not any(data.DATASET_LABELS["digits"] in c.value for c in at.caption)
    at.selectbox(key="ds_name").set_value("digits").run()
    assert not at.exception
    at.selectbox(key="ds_class_digits").set_value(3).run()
    assert not at.exception
    use = [b for b in at.button if b.key and b.key.startswith("use_digits_")][0]
    index = int(use.key.removeprefix("use_digits_"))
    use.click().run()
    assert not at.exception
    assert at.session_state["vz_input"] == {"kind": "dataset", "dataset": "digits",
                                            "index": index}
    # the prediction section now shows that digit, named after its dataset, index and class
    title = f"{data.DATASET_LABELS['digits']} #{index} (3)"
    assert any(c.value.startswith(f"Input: {title}, as the model sees it") for c in at.caption), \
        [c.value for c in at.caption]


def test_home_with_gap_model_and_topk_slider():
    at = run_page("home", {"vz_model_key": "fashion_gap"})
    assert any("GAP" in m.value for m in at.markdown)
    at.slider(key="topk").set_value(10).run()
    assert not at.exception


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _input_titles(at: AppTest) -> tuple[str, list[str]]:
    """(the "Input: ..." caption of Home's prediction section, the sidebar thumbnail's captions)."""
    caption = next(c.value for c in at.main.caption if c.value.startswith("Input: "))
    return caption, [t for img in at.sidebar.image for t in img.captions]


def test_upload_errors_keep_the_previous_input():
    """A good upload becomes the input; a bad one shows st.error on Home, and the previous image
    stays the input, in the session and on the page (prediction caption and sidebar)."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.session_state["vz_input"] = {"kind": "dataset", "dataset": "fashion_mnist", "index": 5}
    at.run()
    assert not at.exception, at.exception
    caption, sidebar = _input_titles(at)
    assert "Fashion-MNIST (test set) #5 (" in caption and "#5 (" in sidebar[0]

    img = Image.new("RGB", (40, 30), "white")
    img.paste((0, 0, 0), (10, 5, 30, 25))
    at.file_uploader(key="img_upload").set_value(("first.png", _png_bytes(img), "image/png"))
    at.run()
    assert not at.exception and not at.error, at.exception or at.error
    assert at.session_state["vz_input"]["title"] == "first.png"
    assert _input_titles(at) == ("Input: first.png, as the model sees it (28x28).",
                                 ["first.png"])

    for name, payload in (("garbage.png", b"garbage"),
                          ("tiny.png", _png_bytes(Image.new("RGB", (1, 1))))):
        at.file_uploader(key="img_upload").set_value((name, payload, "image/png")).run()
        assert not at.exception, at.exception
        assert [e.value for e in at.error if e.value.startswith(f"{name}: ")], \
            f"no st.error for {name}: {[e.value for e in at.error]}"
        assert any("previous image stays selected" in e.value for e in at.error)
        assert at.session_state["vz_input"]["title"] == "first.png"
        caption, sidebar = _input_titles(at)
        assert caption.startswith("Input: first.png,") and sidebar == ["first.png"], \
            (caption, sidebar)


def test_uploaded_image_as_input_on_vgg_like_sizes():
    img = np.zeros((50, 80, 3), np.uint8)
    img[10:40, 20:60] = 255
    at = run_page("home", {"vz_input": {"kind": "image", "image": img, "title": "box.png"}})
    assert any("box.png" in c.value for c in at.caption)


def test_architecture_page_graph_and_table():
    at = run_page("architecture")
    assert at.get("graphviz_chart")
    assert at.dataframe
    at.radio(key="arch_dir").set_value("left to right").run()
    assert not at.exception
    at.multiselect(key="arch_types").set_value(["Conv2D"]).run()
    assert not at.exception
    df = at.dataframe[0].value
    assert set(df["type"]) == {"Conv2D"}


def test_architecture_page_gap_model():
    at = run_page("architecture", {"vz_model_key": "fashion_gap"})
    df = at.dataframe[0].value
    assert "GlobalAveragePooling2D" in set(df["type"])


def test_filters_page_layers_sorting_and_dense():
    at = run_page("filters")
    assert at.get("plotly_chart")
    convs = at.selectbox(key="fm_layer").options
    assert "block1_conv1" in convs
    at.selectbox(key="fm_layer").set_value(convs[-1]).run()
    assert not at.exception
    at.radio(key="fm_sort").set_value("mean").run()
    assert not at.exception
    at.selectbox(key="dense_layer").set_value("predictions").run()
    assert not at.exception
    assert any("units are active" in c.value for c in at.caption)


def test_filters_page_gap_model_has_no_hidden_dense():
    at = run_page("filters", {"vz_model_key": "fashion_gap"})
    assert at.selectbox(key="dense_layer").options == ["predictions"]


def test_vgg16_random_weights_on_every_page():
    for page in ("home", "architecture", "filters"):
        at = run_page(page, {"vz_model_key": "vgg16-random"})
        if page == "home":
            assert any("random weights" in w.value for w in at.warning)

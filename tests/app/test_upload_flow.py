"""The "use your own model" flow on Home, driven through the real file uploaders.

Two sessions upload different files that are both called ``model.keras``: each must see its
own model on the Occlusion page, whose results sit in a process-wide cache keyed by the model's
key. Were uploads keyed by file name, the second session would be served the first one's map.
"""

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.test_pages import ROOT, TIMEOUT
from tests.helpers import model_file_bytes

MIME = "application/octet-stream"


@pytest.fixture(scope="module")
def two_models() -> tuple[bytes, bytes]:
    """Two different models saved under the same name: 3 classes (GAP head, favours 'cat')
    and 4 classes (Flatten head, favours 'dog')."""
    return model_file_bytes("gap", 3, 2, seed=0), model_file_bytes("flatten", 4, 0, seed=1)


def _app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def _upload(at: AppTest, data: bytes, name: str = "model.keras", names: str | None = None,
            names_file: tuple[str, bytes] | None = None, scaling: str | None = None) -> None:
    """Pick the file (and settings) in the Home form and press Load model."""
    at.file_uploader(key="model_upload").set_value((name, data, MIME)).run()
    assert not at.exception, at.exception
    if names_file is not None:
        at.file_uploader(key="model_names_file").set_value((*names_file, "text/plain")).run()
    if names is not None:
        at.text_area(key="model_names").input(names)
    if scaling is not None:
        at.selectbox(key="model_scaling").set_value(scaling)
    at.button(key="model_load").click().run()
    assert not at.exception, at.exception


def _predicted(at: AppTest) -> tuple[str, str]:
    """(class, probability) of Home's "Predicted:" line (computed without any cache)."""
    line = next(m.value for m in at.markdown if m.value.startswith("Predicted:"))
    found = re.match(r"Predicted: \*\*(.+?)\*\* \(([\d.]+%)\)", line)
    assert found, line
    return found.group(1), found.group(2)


def _occlusion_class(at: AppTest) -> tuple[str, str]:
    """(class, probability) the Occlusion page reports for its (cached) map."""
    at.switch_page("app_pages/occlusion.py").run()
    assert not at.exception, at.exception
    line = next(c.value for c in at.caption if c.value.startswith("Class **"))
    found = re.match(r"Class \*\*(.+?)\*\*: p = ([\d.]+%)", line)
    assert found, line
    return found.group(1), found.group(2)


def _home(at: AppTest) -> AppTest:
    at.switch_page("app_pages/home.py").run()
    assert not at.exception, at.exception
    return at


def test_two_sessions_with_same_file_name_see_their_own_model(two_models):
    data_a, data_b = two_models
    alice, bob = _app(), _app()
    _upload(alice, data_a, names="ant\nbee\ncat")
    _upload(bob, data_b, names_file=("names.json", json.dumps(["dog", "eel", "fox", "gnu"])
                                     .encode()))
    key_a, key_b = alice.session_state["vz_model_key"], bob.session_state["vz_model_key"]
    assert key_a.startswith("upload:") and key_b.startswith("upload:") and key_a != key_b
    assert "model.keras" not in key_a
    for at, classes in ((alice, 3), (bob, 4)):
        assert any(s.value.startswith("Loaded Your model: model.keras (28x28x1, "
                                      f"{classes} classes)") for s in at.success)
    pred_a, pred_b = _predicted(alice), _predicted(bob)
    assert pred_a[0] == "cat" and pred_b[0] == "dog"

    # the plan table: the GAP model runs CAM on c1, the Flatten model refuses it and says why
    plan_a, plan_b = (at.dataframe[0].value.set_index("method") for at in (alice, bob))
    assert plan_a.loc["CAM", "runs"] == "runs"
    assert plan_a.loc["CAM", "uses / why not"] == "layer 'c1' and the weights of 'out'"
    assert plan_b.loc["CAM", "runs"] == "refuses"
    assert "'flat' (Flatten)" in plan_b.loc["CAM", "uses / why not"]
    assert plan_b.loc["Grad-CAM", "uses / why not"] == "layer 'c1'"
    assert any("**CAM** refuses" in c.value for c in bob.caption)
    facts_b = [m.value for m in bob.markdown]
    assert "**Classes**  \n4 (dog, eel, fox, gnu)" in facts_b
    assert "**One chain**  \nyes" in facts_b
    assert "**Scaling**  \n0..1: pixels / 255 (most Keras tutorials) (guessed: check it under " \
        "*Use your own model*)" in facts_b

    # the occlusion results are cached per model key and shared by the sessions
    assert _occlusion_class(alice) == pred_a
    assert _occlusion_class(bob) == pred_b
    assert _occlusion_class(alice) == pred_a
    for at, own in ((alice, ["ant", "bee", "cat"]), (bob, ["dog", "eel", "fox", "gnu"])):
        options = at.selectbox(key="occ_target").options
        assert [o.split(": ", 1)[1] for o in options[1:]] == own


def test_bad_names_keep_the_model_and_settings_are_remembered(two_models):
    data_a, _ = two_models
    at = _app()
    _upload(at, data_a, names="one\ntwo")
    assert any("You gave 2 class names, but the model has 3 outputs" in e.value
               and "previous model stays selected" in e.value for e in at.error)
    assert at.session_state["vz_model_select"] == "fashion_vgg"
    assert any("Fashion-MNIST CNN" in m.value for m in at.markdown
               if m.value.startswith("**Current model:**"))

    at.text_area(key="model_names").input("one\ntwo\nthree")
    at.selectbox(key="model_scaling").set_value("-1..1")
    at.button(key="model_load").click().run()
    assert not at.exception and not at.error
    assert any(m.value.startswith("**Scaling**  \n-1..1:") for m in at.markdown)

    # another page, then Home again: the uploader is empty, the settings are shown (locked)
    _occlusion_class(at)
    _home(at)
    assert at.selectbox(key="model_scaling").value == "-1..1"
    assert at.text_area(key="model_names").value == "one\ntwo\nthree"
    assert at.text_area(key="model_names").disabled
    assert at.button(key="model_load").disabled
    # uploading the same content again (any name) brings its settings back, editable
    at.file_uploader(key="model_upload").set_value(("copy.keras", data_a, MIME)).run()
    assert at.selectbox(key="model_scaling").value == "-1..1"
    assert not at.text_area(key="model_names").disabled
    # a different file starts from the defaults
    at.file_uploader(key="model_upload").set_value(("other.keras", two_models[1], MIME)).run()
    assert at.selectbox(key="model_scaling").value == "auto"
    assert at.text_area(key="model_names").value == ""


def test_model_of_any_input_size_asks_for_one():
    data = model_file_bytes("gap", 3, 1, seed=2, input_shape=(None, None, 1))
    at = _app()
    assert not at.number_input  # no size inputs before a flexible model is loaded
    _upload(at, data, name="any_size.keras")
    assert at.number_input(key="model_h").value == 224
    assert any("accepts images of any size" in c.value for c in at.caption)
    assert "**Input**  \n224x224x1 (chosen: the model accepts any size)" in [
        m.value for m in at.markdown]
    first = at.session_state["vz_model_key"]

    at.number_input(key="model_h").set_value(32)
    at.number_input(key="model_w").set_value(40).run()  # changing the size reloads at once
    assert not at.exception and not at.error
    assert at.session_state["vz_model_key"] != first
    assert any("Input 32x40x1" in c.value for c in at.caption)
    labels = at.sidebar.selectbox(key="vz_model_select").options
    assert labels.count("Your model: any_size.keras") == 1  # the reload replaced the entry


def test_upload_evicted_from_the_cache_falls_back_and_keeps_settings(two_models):
    from ui import state

    data_a, _ = two_models
    at = _app()
    _upload(at, data_a, name="evicted.keras", names="x\ny\nz", scaling="none")
    assert at.session_state["vz_model_key"].startswith("upload:")
    state.load_upload.clear()  # as if other sessions' uploads had pushed it out
    _home(at)
    assert any("evicted.keras was unloaded" in w.value for w in at.warning)
    assert at.session_state["vz_model_key"] == "fashion_vgg"
    assert "Your model: evicted.keras" not in at.sidebar.selectbox(key="vz_model_select").options
    at.file_uploader(key="model_upload").set_value(("evicted.keras", data_a, MIME)).run()
    assert at.selectbox(key="model_scaling").value == "none"
    assert at.text_area(key="model_names").value == "x\ny\nz"

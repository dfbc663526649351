"""Links that reopen a view (issue 14): a page's state goes into the URL, a link restores it,
and a bad value in a link gives a warning and the default, never an exception."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def _open(page: str | None = None, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    for k, v in query.items():
        at.query_params[k.replace("__", ".")] = v
    if page:
        at.switch_page(f"app_pages/{page}.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _query(at: AppTest) -> dict:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def _warnings(at: AppTest) -> str:
    return " ".join(w.body for w in at.warning)


def test_explain_state_goes_into_the_url_and_a_link_restores_it():
    at = _open("explain")
    at.multiselect(key="xp_methods").set_value(["saliency", "smoothgrad"]).run()
    at.selectbox(key="xp_target").set_value(3).run()
    at.slider(key="xp_opacity").set_value(0.3).run()
    at.slider(key="xp_smoothgrad_n").set_value(20).run()
    q = _query(at)
    assert q["methods"] == "saliency,smoothgrad" and q["class"] == "3"
    assert q["opacity"] == "0.3" and q["smoothgrad.n"] == "20"
    assert "model" not in q  # defaults are not written

    again = _open("explain", **{k.replace(".", "__"): v for k, v in q.items()})
    assert again.multiselect(key="xp_methods").value == ["saliency", "smoothgrad"]
    assert again.selectbox(key="xp_target").value == 3
    assert again.slider(key="xp_opacity").value == pytest.approx(0.3)
    assert again.slider(key="xp_smoothgrad_n").value == 20
    assert _query(again) == q
    assert not again.warning
    maps = [h.value for h in again.subheader]
    assert maps[:2] == ["Saliency (vanilla gradient)", "SmoothGrad"]
    # the copy-link box shows the same query
    assert any("methods=saliency%2Csmoothgrad" in c.value for c in again.code)


def test_bad_values_in_a_link_warn_and_fall_back_to_the_defaults():
    at = _open("explain", methods="gradcam,magic", **{"class": "99"}, opacity="lots",
               model="resnet9000", img="fashion_mnist:999999", layer="no_such_layer",
               colour="red")
    text = _warnings(at)
    for name in ("methods=gradcam,magic", "class=99", "opacity=lots", "model=resnet9000",
                 "img=fashion_mnist:999999", "layer=no_such_layer", "colour=red"):
        assert name in text, name
    assert at.multiselect(key="xp_methods").value == ["gradcam", "smoothgrad", "lrp_composite"]
    assert at.selectbox(key="xp_target").value is None
    assert at.slider(key="xp_opacity").value == pytest.approx(0.5)
    assert at.selectbox(key="vz_model_select").value == "fashion_vgg"


def test_a_link_sets_the_model_and_the_image():
    at = _open("explain", model="fashion_gap", img="fashion_mnist:9")
    assert at.selectbox(key="vz_model_select").value == "fashion_gap"
    assert at.session_state["vz_input"] == {"kind": "dataset", "dataset": "fashion_mnist",
                                            "index": 9}
    assert _query(at)["img"] == "fashion_mnist:9" and _query(at)["model"] == "fashion_gap"


def test_hidden_controls():
    at = _open("explain", hide="methods,params,checks", methods="saliency")
    keys = {w.key for w in at.multiselect}
    assert "xp_methods" not in keys
    assert [h.value for h in at.subheader if h.value.startswith("Saliency")]
    assert not [h for h in at.header if "faithful" in h.value]
    assert _query(at)["hide"] == "checks,methods,params"
    home = _open(None, hide="upload,sidebar")
    assert not home.get("file_uploader")
    assert "vz_model_select" not in {s.key for s in home.selectbox}
    bad = _open(None, hide="everything")
    assert "hide=everything" in _warnings(bad)


@pytest.mark.parametrize("page,query,checks", [
    ("occlusion", {"patch": "5", "stride": "3", "fill": "blur", "class": "2"},
     [("slider", "occ_patch", 5), ("slider", "occ_stride", 3), ("selectbox", "occ_fill", "blur"),
      ("selectbox", "occ_target", 2)]),
    ("unit_viz", {"layer": "block2_conv1", "unit": "7", "k": "4"},
     [("selectbox", "uv_layer", "block2_conv1"), ("number_input", "uv_unit_block2_conv1", 7)]),
    ("embeddings", {"method": "pca", "n": "500", "k": "5", "pixels": "0"},
     [("radio", "emb_method", "pca"), ("slider", "emb_n", 500), ("slider", "emb_k", 5),
      ("checkbox", "emb_compare", False)]),
])
def test_other_pages_restore_their_links(page, query, checks):
    at = _open(page, **query)
    assert not at.warning, _warnings(at)
    for kind, key, value in checks:
        assert getattr(at, kind)(key=key).value == value, key
    q = _query(at)
    assert all(q[k] == v for k, v in query.items()), q


def test_unit_link_with_a_unit_out_of_range_warns():
    at = _open("unit_viz", layer="block2_conv1", unit="100000")
    assert "unit=100000" in _warnings(at)
    assert at.number_input(key="uv_unit_block2_conv1").value == 0

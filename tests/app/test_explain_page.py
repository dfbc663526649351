"""AppTest runs of the Explain page with several methods and both default models."""

from tests.app.test_pages import run_page


def test_explain_page_default_methods_and_target_change():
    at = run_page("explain")
    assert set(at.multiselect(key="xp_methods").value) >= {"gradcam", "smoothgrad"}
    titles = [h.value for h in at.subheader]
    assert "Grad-CAM" in titles and "SmoothGrad" in titles
    assert len(at.get("plotly_chart")) >= 3
    at.selectbox(key="xp_target").set_value(at.selectbox(key="xp_target").options[3]).run()
    assert not at.exception
    assert any("Explaining" in m.value for m in at.markdown)


def test_explain_page_many_methods_on_vgg_model():
    at = run_page("explain")
    at.multiselect(key="xp_methods").set_value(
        ["saliency", "guided_backprop", "integrated_gradients", "gradcam_plus_plus",
         "faster_score_cam", "layercam", "guided_gradcam", "lrp_epsilon", "lrp_zplus"]).run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    # CAM needs a GAP model: the page says why it is not offered
    assert any("CAM" in c.value and "global average pooling" in c.value.lower()
               for c in at.caption)
    at.button(key="xp_faith").click().run()
    assert not at.exception
    assert at.dataframe, "faithfulness table"


def test_explain_page_gap_model_offers_cam_and_sanity_check():
    at = run_page("explain", {"vz_model_key": "fashion_gap"})
    assert "CAM" in at.multiselect(key="xp_methods").options  # formatted names
    at.multiselect(key="xp_methods").set_value(["cam", "gradcam", "saliency"]).run()
    assert not at.exception and not at.error
    at.button(key="xp_sanity").click().run()
    assert not at.exception
    assert any("original" in m.value for m in at.markdown)

"""AppTest runs of the Occlusion and Fooling-the-model pages."""

from streamlit.testing.v1 import AppTest

from tests.app.test_pages import run_page


def _covered_line(at: AppTest) -> str:
    return next(m.value for m in at.markdown if "of the pixels covered" in m.value)


def test_occlusion_page_map_editor_and_settings():
    at = run_page("occlusion")
    assert at.title[0].value == "Occlusion"
    assert len(at.get("plotly_chart")) == 4  # drop map, probability map, two top-5 charts
    assert any("forward passes" in c.value and "incremental" in c.value for c in at.caption)
    assert len(at.get("download_button")) == 2
    assert _covered_line(at).startswith("**0%**")
    # covering half the image changes the occluded probabilities, not the original's
    at.selectbox(key="oe_preset").set_value("top half").run()
    assert not at.exception
    line = _covered_line(at)
    assert line.startswith("**50%**") and "(drop +0.0%)" not in line
    at.selectbox(key="oe_method").set_value("smoothgrad").run()
    assert not at.exception
    at.slider(key="occ_patch").set_value(7).run()
    assert not at.exception
    assert any("7x7 gray patches" in c.value for c in at.caption)
    at.selectbox(key="occ_fill").set_value("blur")
    at.selectbox(key="occ_target").set_value(3).run()
    assert not at.exception
    assert any("Class **Dress**" in c.value and "blur" in c.value for c in at.caption)


def test_adversarial_page_attacks_patch_and_table():
    at = run_page("adversarial")
    assert at.title[0].value == "Fooling the model"
    lines = [m.value for m in at.markdown if m.value.startswith("The attack")]
    assert len(lines) == 2  # FGSM and the targeted PGD
    assert "largest pixel change 8.0 grey levels" in lines[0]
    assert len(at.get("plotly_chart")) == 4
    at.slider(key="adv_fgsm_eps").set_value(32).run()
    assert not at.exception
    assert any("largest pixel change 32.0" in m.value for m in at.markdown)
    target = at.selectbox(key="adv_pgd_target").options[-1]
    at.selectbox(key="adv_pgd_target").set_value(target).run()
    assert not at.exception
    at.slider(key="adv_patch_steps").set_value(10).run()
    at.button(key="adv_patch_go").click().run()
    assert not at.exception
    assert at.metric[0].label.startswith("Success rate")
    assert at.metric[1].value == str(int(at.metric[1].value))  # number of held-out images
    at.slider(key="adv_flip_n").set_value(20).run()
    at.button(key="adv_flip_go").click().run()
    assert not at.exception
    df = at.dataframe[0].value
    assert list(df["grey levels"]) == [0, 1, 2, 4, 8, 16, 32]
    assert df["fgsm flipped"].iloc[0] == 0 and df["pgd flipped"].iloc[-1] > 0.5

"""The guided tour: both shipped lessons walk from the first step to the last with a figure, a
question, a reveal and a link to the full page at each step; the step is in the URL."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vizcore import lessons

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def _tour(lesson: str, step: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600)
    at.query_params["lesson"] = lesson
    if step is not None:
        at.query_params["step"] = step
    at.switch_page("app_pages/tour.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


@pytest.mark.parametrize("name", ["what-does-a-cnn-see", "why-did-it-decide-that"])
def test_walk_a_lesson(name):
    lesson = lessons.load(name)
    at = _tour(name)
    n = len(lesson.steps)
    for i in range(1, n + 1):
        if i > 1:
            at.button(key="tour_next").click().run()
        assert not at.exception, (i, [e.message for e in at.exception])
        assert at.header[0].value == f"Step {i} of {n}: {lessons.STEPS[lesson.steps[i - 1]]}"
        assert at.info, "no question"
        assert any(e.label == "Reveal" for e in at.expander)
        assert at.get("page_link"), "no link to the full page"
        q = {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}
        assert q["lesson"] == name and q.get("step", "1") == str(i)
        assert q["hide"] == ",".join(sorted(lesson.hide))
        if lesson.steps[i - 1] in ("attribution", "faithfulness", "sanity"):
            labels = [b.proto.label for b in at.get("download_button")]
            assert "Download report (HTML)" in labels, labels
    assert at.button(key="tour_next").disabled
    at.button(key="tour_prev").click().run()
    assert at.header[0].value.startswith(f"Step {n - 1} of {n}")


def test_a_link_opens_a_step_and_hides_the_lessons_controls():
    at = _tour("what-does-a-cnn-see", "7")
    assert at.header[0].value.startswith("Step 7 of 9: Saliency")
    names = {m.value.strip("*") for m in at.markdown}
    assert {"Saliency (vanilla gradient)", "SmoothGrad", "Grad-CAM"} <= names, names
    # the lesson hides uploads: the Home page has no file uploader now
    at.switch_page("app_pages/home.py")
    at.run()
    assert not at.get("file_uploader")


def test_a_bad_step_in_a_link_warns():
    at = _tour("why-did-it-decide-that", "42")
    assert "step=42" in " ".join(w.body for w in at.warning)
    assert at.header[0].value.startswith("Step 1 of 7")

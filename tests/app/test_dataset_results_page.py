"""AppTest runs of the Dataset results page on a tiny batch output (60 images explained and
scored with two methods, 300 embedded), and of a small job run from the page."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.batch_output import METHODS, N_EMBEDDED, N_SCORED, tiny_output

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "app_pages" / "dataset_results.py")
RUN_BUTTON = "Explain + score + embed"


@pytest.fixture(scope="module")
def folder() -> Path:
    return tiny_output()


def run(folder: Path | None = None, state: dict | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=300)
    if folder is not None:
        at.query_params["dir"] = str(folder)
    for k, v in (state or {}).items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def thumbnails(at) -> int:
    """Thumbnails of the sorted images (each has an Inspect button)."""
    return sum(1 for b in at.button if b.key and b.key.startswith("dr_inspect_"))


def test_a_link_opens_the_folder_with_ranking_sanity_and_embedding(folder):
    at = run(folder)
    assert not at.error
    assert at.text_input(key="dr_dir").value == str(folder)
    ranking = at.dataframe[0].value
    assert len(ranking) == len(METHODS)
    assert set(ranking["Method"]) == {"Grad-CAM", "Saliency (vanilla gradient)"}
    assert ranking["Images"].tolist() == [N_SCORED] * len(METHODS)
    assert ranking.columns[2] == "Insertion - deletion ↑"  # the sort key
    ci = r"-?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\]"
    assert all(ranking[c].str.fullmatch(ci).all() for c in ranking.columns[2:]), ranking
    assert len(ranking.columns) == 5  # method, images, insertion - deletion, deletion, insertion
    assert any(c.startswith("Insertion starts from a **") for c in captions(at))
    # the sanity check table: one row per randomised layer, one column per method
    sanity = at.dataframe[1].value
    assert list(sanity.columns[1:]) == ["Grad-CAM", "Saliency (vanilla gradient)"]
    assert sanity.iloc[0, 0] == "predictions"
    assert any(b.label == "Download the ranking (CSV)" for b in at.get("download_button"))
    # ranking chart, embedding, top-5 bars and one map per method
    assert len(at.get("plotly_chart")) == 3 + len(METHODS)
    assert thumbnails(at) == 12
    assert any("written by the explain job" in c for c in captions(at))
    assert at.query_params["dir"] == [str(folder)] or at.query_params["dir"] == str(folder)


@pytest.mark.parametrize("sort", ["faithfulness", "confidence", "wrong", "disagreement",
                                  "wrong_reason"])
def test_every_sort_shows_at_most_twelve_images_or_says_why(folder, sort):
    at = run(folder, {"dr_sort": sort})
    shown = thumbnails(at)
    notes = [i.value for i in at.info[1:]]  # the first is the page's note
    assert 0 < shown <= 12 or notes, (shown, notes)
    if sort in ("faithfulness", "confidence", "disagreement"):
        assert shown == 12
    if not shown:  # "right for the wrong reason" or "confidently wrong" may have none
        assert any(w in notes[0] for w in ("No candidate", "every labelled image right"))


def test_an_image_position_shows_its_maps_from_the_job_or_computed_now(folder):
    at = run(folder, {"dr_pos": 7})
    caption = next(c for c in captions(at) if c.startswith("#7 (position 7)"))
    assert "true class" in caption and "predicted" in caption
    assert any("written by the explain job" in c for c in captions(at))
    assert len(at.dataframe) >= 3  # ranking, sanity, this image's numbers per method
    # an Inspect button selects that image
    inspect = next(b for b in at.button if b.key and b.key.startswith("dr_inspect_"))
    position = int(inspect.key.rsplit("_", 1)[1])
    inspect.click().run()
    assert not at.exception
    assert at.number_input(key="dr_pos").value == position
    # an image embedded but never explained: its maps are computed now, one per method
    at.number_input(key="dr_pos").set_value(N_EMBEDDED - 1).run()
    assert not at.exception
    assert any(c.startswith(f"#{N_EMBEDDED - 1} (position") for c in captions(at))
    assert any("computed now" in c for c in captions(at))
    assert len(at.get("plotly_chart")) == 3 + len(METHODS)


def test_faithfulness_colours_and_a_click_on_the_map(folder):
    at = run(folder, {"dr_colour": "faithfulness"})
    assert not at.error
    assert any("Grey dots have no score" in c for c in captions(at))
    at.session_state["dr_pos"] = 250  # what a click on a dot does (through its callback)
    at.run()
    assert not at.exception
    assert any(c.startswith("#250 (position 250)") for c in captions(at))
    assert at.query_params["colour"] in ("faithfulness", ["faithfulness"])


def test_a_wrong_folder_shows_an_error_not_a_traceback(folder, tmp_path):
    at = run(folder)
    at.text_input(key="dr_dir").set_value(str(tmp_path / "nowhere")).run()
    assert not at.exception
    assert "is not a folder on this server" in at.error[0].value
    at.text_input(key="dr_dir").set_value(str(tmp_path)).run()  # a folder, but no output
    assert not at.exception
    assert "holds no batch output" in at.error[0].value
    assert not at.get("plotly_chart")


def test_a_small_job_runs_from_the_page_once_for_everyone(monkeypatch, tmp_path):
    monkeypatch.setenv("VIZCORE_STORE", str(tmp_path / "store"))
    at = run(state={"dr_job_n": 40, "dr_job_methods": ["gradcam", "saliency"],
                    "dr_job_data": "digits"})
    assert any("run a small job here" in i.value for i in at.info)  # nothing to open yet
    button = next(b for b in at.button if b.label == RUN_BUTTON)
    button.click().run()
    assert not at.exception, at.exception
    assert not at.error
    opened = Path(at.session_state["dr_dir"])
    assert opened.parent == tmp_path / "store" / "batch"
    assert {p.name for p in opened.iterdir()} == {"explain", "score", "embed"}
    assert len(at.dataframe[0].value) == 2  # the ranking of the two methods
    assert any("scikit-learn digits" in m.value or "digits" in m.value for m in at.markdown)
    # the dataset's classes (digits) are not the model's (Fashion-MNIST): said, not judged
    assert any("not the model's" in i.value for i in at.info)
    # another session asking the same opens the same folder at once, and finds it by default
    other = run(state={"dr_job_n": 40, "dr_job_methods": ["gradcam", "saliency"],
                       "dr_job_data": "digits"})
    assert other.text_input(key="dr_dir").value == str(opened)
    next(b for b in other.button if b.label == RUN_BUTTON).click().run()
    assert not other.exception
    assert Path(other.session_state["dr_dir"]) == opened


# --------------------------------------------------------------------------- pure pieces


def test_tables_and_figures_build_without_streamlit(folder):
    import subprocess
    import sys

    code = ("import sys, ui.dataset_figures; "
            "assert 'streamlit' not in sys.modules and 'tensorflow' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]


def test_sorting_and_the_embedding_figure_on_the_tiny_output(folder):
    import numpy as np

    from ui import dataset_figures as dfig
    from vizcore.batch import open_results

    res = open_results(folder)
    images = dfig.catalogue(res.rows)
    assert len(images) == N_EMBEDDED and images["position"].is_monotonic_increasing
    scores = dfig.ok_rows(res.rows["score"])
    table, message = dfig.sort_images("faithfulness", images, scores, None, "saliency", True)
    assert message == "" and len(table) == 12
    assert table["value"].is_monotonic_increasing  # worst first
    ins = res.summaries["score"]["insertion"]
    g = scores[scores["method"] == "saliency"]
    assert table["value"].iloc[0] == (g[ins] - g["deletion_auc"]).min()
    # a folder source has no object mask: "right for the wrong reason" says so
    no_mask = scores.assign(outside=np.nan)
    table, message = dfig.sort_images("wrong_reason", images, no_mask, None, "gradcam", True)
    assert table.empty and "No object mask" in message
    # faithfulness colours: the scored images coloured, the others grey
    pts = res.points
    values = dfig.faithfulness_of(scores, "gradcam").reindex(pts["position"]).to_numpy()
    assert np.isfinite(values).sum() == N_SCORED
    fig = dfig.embedding_figure.uncached(
        pts[["tsne_x", "tsne_y"]].to_numpy(), pts["position"].to_numpy(), pts["id"].tolist(),
        pts["label"].to_numpy(), pts["predicted"].to_numpy(), pts["confidence"].to_numpy(),
        res.class_names, res.class_names, "faithfulness", values, "gradcam", selected=5)
    grey, scored, ring = fig.data
    assert (len(grey.x), len(scored.x), len(ring.x)) == (N_EMBEDDED - N_SCORED, N_SCORED, 1)
    assert ring.customdata[0][0] == 5
    assert dfig.subsample(50_000).shape == (dfig.MAX_POINTS,)


def test_an_uploaded_model_is_sent_to_the_command_line():
    from tests.app.test_user_model_pages import _sequential

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=300)
    at.run()
    at.file_uploader(key="model_upload").set_value(
        ("model.keras", _sequential(), "application/octet-stream")).run()
    at.button(key="model_load").click().run()
    assert at.session_state["vz_model_key"].startswith("upload:")
    at.switch_page("app_pages/dataset_results.py").run()
    assert not at.exception, at.exception
    assert not any(b.label == RUN_BUTTON for b in at.button)
    assert any("run the jobs from the command line" in i.value for i in at.info)

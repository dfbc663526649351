"""AppTest runs of the Training lab page: shipped runs shown, a tiny transfer comparison trained,
saved and laid over, an interrupted run saved as stopped, a tiny evolution recording made
(training kept to 1 epoch)."""

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "app_pages" / "training_lab.py")


def _page(tmp_path) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=240)
    at.session_state["tl_runs_dir"] = str(tmp_path)
    at.run()
    assert not at.exception, at.exception
    return at


def test_page_shows_the_shipped_recording_and_moves_across_epochs(tmp_path):
    at = _page(tmp_path)
    assert [h.value for h in at.header] == ["Transfer learning versus training from scratch",
                                            "Filters evolving over training"]
    assert at.selectbox(key="ev_rec").value.endswith("evolution_shipped_fashion_vgg_small.npz")
    slider = [s for s in at.select_slider if s.key and s.key.startswith("ev_epoch_")][0]
    n = len(slider.options)
    assert n >= 4 and slider.value == n - 1
    before = [c.value for c in at.caption if "validation accuracy" in c.value]
    slider.set_value(0).run()
    assert not at.exception, at.exception
    after = [c.value for c in at.caption if "validation accuracy" in c.value]
    assert before[0].startswith("After epoch") and after[0].startswith("Random initial weights")
    assert "kernels 0% away from their start" in after[0]
    assert len(at.get("image")) == 6  # kernels, fixed image, 3 map grids, act-max images
    assert len(at.get("plotly_chart")) == 3  # loss, accuracy, evolution curve
    # before any training, the shipped transfer run fills the curves
    assert any(c.value.startswith("Showing a saved run") for c in at.caption)
    loss = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(loss["data"]) == 4 and all(len(t["y"]) >= 5 for t in loss["data"])


def test_tiny_transfer_run_trains_saves_and_lays_over(tmp_path):
    at = _page(tmp_path)
    at.select_slider(key="tl_size").set_value(100)
    at.slider(key="tl_epochs").set_value(1)
    at.button(key="tl_train").click().run()  # stores the request, re-runs, trains, re-runs
    assert not at.exception, at.exception
    assert "tl_pending" not in at.session_state and "tl_active" not in at.session_state
    assert not at.button(key="tl_train").disabled
    metrics = {m.label: m.value for m in at.metric}
    assert "Transfer: test accuracy" in metrics and metrics["Scratch: test accuracy"].endswith("%")
    saved = list(tmp_path.glob("transfer_*.json"))
    assert len(saved) == 1
    d = json.loads(saved[0].read_text())
    assert d["config"]["train_size"] == 100 and d["config"]["epochs"] == 1
    for run in d["runs"].values():
        assert all(len(v) == 1 for v in run["history"].values())
        assert 0 <= run["test_accuracy"] <= 1
    # the finished run is offered as an overlay and laid over the curves
    overlay = at.multiselect(key="tl_overlay")
    label = (f"digits, 100 train images (100), 1 ep: transfer "
             f"{d['runs']['transfer']['test_accuracy']:.1%} vs scratch "
             f"{d['runs']['scratch']['test_accuracy']:.1%}")
    assert overlay.options[0] == label  # newest first, then the shipped run
    overlay.set_value([str(saved[0])]).run()
    assert not at.exception, at.exception
    loss_fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = [t["name"] for t in loss_fig["data"]]
    assert "transfer train [1]" in names and "scratch validation" in names
    assert len(names) == 8  # 4 curves of the overlay + 4 of the current run


def test_tiny_evolution_recording_from_the_page(tmp_path):
    at = _page(tmp_path)
    at.slider(key="ev_epochs").set_value(1)
    at.select_slider(key="ev_size").set_value(500)
    at.button(key="ev_record").click().run()
    assert not at.exception, at.exception
    new = list(tmp_path.glob("evolution_*.npz"))
    assert len(new) == 1 and at.selectbox(key="ev_rec").value == str(new[0])
    slider = [s for s in at.select_slider if s.key and s.key.startswith("ev_epoch_")][0]
    assert len(slider.options) == 2 and slider.value == 1


def test_an_interrupted_run_is_saved_as_stopped(tmp_path):
    """What a Stop click leaves behind (the comparison the training callbacks kept, already
    marked stopped and evaluated by the core) is saved and shown by the next run."""
    from vizcore import transfer

    comp = transfer.Comparison(
        {"task": "digits", "train_size": 100, "epochs": 5},
        {k: transfer.RunHistory(k, {m: [0.5, 0.6] for m in transfer.METRICS}, [1.0, 1.0], 0.7,
                                0.9) for k in transfer.RUN_KINDS},
        {"train": 100, "val": 179, "test": 359}, "digits", "2026-01-01T00:00:00",
        stopped=True, finished=True)
    at = AppTest.from_file(PAGE, default_timeout=240)
    at.session_state["tl_runs_dir"] = str(tmp_path)
    at.session_state["tl_active"] = comp
    at.run()
    assert not at.exception, at.exception
    assert len(list(tmp_path.glob("transfer_*.json"))) == 1
    assert any("Stopped by you after 2 epoch(s)" in c.value for c in at.caption)
    assert {m.label for m in at.metric} >= {"Transfer: test accuracy", "Scratch: test accuracy"}

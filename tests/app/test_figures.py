"""ui.figures: the plotly figures the pages show, built without running a page."""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from ui import figures

ROOT = Path(__file__).resolve().parents[2]


def _scale(name: str):
    """A named plotly colour scale, resolved the way a trace stores it."""
    return go.Heatmap(colorscale=name).colorscale


def test_figures_module_does_not_import_streamlit():
    code = "import sys, ui.figures; assert 'streamlit' not in sys.modules, 'streamlit imported'"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]


def test_heatmap_over_an_image_unsigned():
    heat = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4, 1) * 20
    fig = figures.heatmap_figure(heat, gray, opacity=0.35, zmin=0.0, zmax=1.0, title="map")
    assert [t.type for t in fig.data] == ["image", "heatmap"]
    img, hm = fig.data
    assert np.asarray(img.z).shape == (3, 4, 3)  # gray shown as RGB under the map
    np.testing.assert_allclose(np.asarray(hm.z), heat, rtol=1e-6)
    assert hm.opacity == pytest.approx(0.35)
    assert (hm.zmin, hm.zmax, hm.zmid) == (0.0, 1.0, None)
    assert hm.colorscale == _scale(figures.OVERLAY_SCALE)
    assert hm.showscale is not False and hm.colorbar.thickness > 0  # a colour bar is shown
    assert fig.layout.yaxis.autorange == "reversed"  # image orientation: row 0 at the top
    assert fig.layout.yaxis.scaleanchor == "x"
    assert fig.layout.title.text == "map"


def test_heatmap_alone_is_opaque_with_the_plain_scale_and_its_own_range():
    a = np.array([[0.0, 2.0], [5.0, 7.5]])
    fig = figures.heatmap_figure(a, colorbar_title="p")
    assert [t.type for t in fig.data] == ["heatmap"]
    hm = fig.data[0]
    assert hm.opacity == 1.0
    assert hm.colorscale == _scale(figures.PLAIN_SCALE)
    assert hm.zmin is None and hm.zmax is None and hm.zmid is None
    assert hm.colorbar.title.text == "p"
    assert fig.layout.title.text is None


def test_signed_heatmap_is_diverging_symmetric_and_sums_channels():
    signed = np.zeros((2, 3, 3), np.float32)
    signed[0, 0] = [1.0, 1.0, 1.0]  # sums to 3
    signed[1, 2] = [-4.0, -1.0, 0.0]  # sums to -5: the largest magnitude
    fig = figures.heatmap_figure(signed, signed=True, title="signed map")
    hm = fig.data[0]
    z = np.asarray(hm.z)
    assert z.shape == (2, 3)
    assert z[0, 0] == pytest.approx(3.0) and z[1, 2] == pytest.approx(-5.0)
    assert (hm.zmin, hm.zmax, hm.zmid) == (-5.0, 5.0, 0.0)  # white at 0, same reach both ways
    assert hm.colorscale == _scale(figures.SIGNED_SCALE)
    assert hm.colorscale != _scale(figures.PLAIN_SCALE)
    # negative = blue end, positive = red end
    assert hm.colorscale[0][1] == "rgb(5,48,97)" and hm.colorscale[-1][1] == "rgb(103,0,31)"


def test_signed_map_over_an_image_keeps_a_fixed_range_and_opacity():
    drop = np.array([[0.1, -0.3], [0.0, 0.2]])
    fig = figures.heatmap_figure(drop, np.zeros((2, 2, 3), np.uint8), signed=True, opacity=0.6)
    assert [t.type for t in fig.data] == ["image", "heatmap"]
    hm = fig.data[1]
    assert hm.opacity == pytest.approx(0.6)
    assert (hm.zmin, hm.zmax) == (pytest.approx(-0.3), pytest.approx(0.3))
    assert hm.colorscale == _scale(figures.SIGNED_SCALE)  # not the overlay's Jet


def test_all_zero_signed_map_has_a_finite_range():
    hm = figures.heatmap_figure(np.zeros((4, 4)), signed=True).data[0]
    assert (hm.zmin, hm.zmax) == (-1.0, 1.0)


def test_colour_scale_override():
    hm = figures.heatmap_figure(np.ones((2, 2)), colorscale="Magma").data[0]
    assert hm.colorscale == _scale("Magma")


def test_topk_bars_most_probable_on_top_and_true_class_green():
    probs = np.array([0.05, 0.6, 0.1, 0.25])
    names = ["a", "b", "c", "d"]
    fig = figures.topk_figure(probs, names, k=3, true_label=3, title="Top 3")
    bar = fig.data[0]
    assert bar.orientation == "h"
    # plotly draws the last category at the top: most probable last
    assert list(bar.y) == ["c (2)", "d (3)", "b (1)"]
    assert list(bar.x) == pytest.approx([0.1, 0.25, 0.6])
    assert list(bar.marker.color) == ["#1f77b4", "#2ca02c", "#1f77b4"]
    assert list(bar.text) == ["10.0%", "25.0%", "60.0%"]
    assert tuple(fig.layout.xaxis.range) == (0, 1)
    assert figures.topk_figure(probs, names, k=10).data[0].y.__len__() == 4  # k > classes


def test_faithfulness_curves_two_lines_per_method():
    c = SimpleNamespace(fractions=np.linspace(0, 1, 5), deletion=np.linspace(1, 0, 5),
                        insertion=np.linspace(0, 1, 5))
    fig = figures.faithfulness_figure({"Grad-CAM": c, "Saliency": c}, "Dress")
    assert [t.name for t in fig.data] == ["Grad-CAM deletion", "Grad-CAM insertion",
                                          "Saliency deletion", "Saliency insertion"]
    assert fig.data[1].line.dash == "dot" and fig.data[0].line.dash is None
    assert list(fig.data[0].y) == pytest.approx(list(c.deletion))
    assert fig.layout.yaxis.title.text == "p(Dress)"


def test_randomisation_curves_per_layer_and_method():
    layers = ["predictions", "fc2", "fc1"]
    res = SimpleNamespace(methods=["gradcam"], layers=layers,
                          spearman={(lyr, "gradcam"): v for lyr, v in zip(layers, [0.9, 0.5, 0.1])},
                          ssim={(lyr, "gradcam"): v for lyr, v in zip(layers, [0.8, 0.4, 0.2])})
    fig = figures.randomisation_figure(res, {"gradcam": "Grad-CAM"})
    assert [t.name for t in fig.data] == ["Grad-CAM (Spearman)", "Grad-CAM (SSIM)"]
    assert list(fig.data[0].x) == layers
    assert list(fig.data[0].y) == [0.9, 0.5, 0.1] and list(fig.data[1].y) == [0.8, 0.4, 0.2]
    assert tuple(fig.layout.yaxis.range) == (-0.2, 1.05)


def test_flip_rates_one_line_per_chosen_attack():
    table = pd.DataFrame({"grey levels": [0, 8, 32], "epsilon": [0, 8 / 255, 32 / 255],
                          "fgsm flipped": [0.0, 0.3, 0.8], "pgd flipped": [0.0, 0.5, 1.0]})
    fig = figures.flip_rate_figure(table, ["pgd"])
    assert [t.name for t in fig.data] == ["PGD"]
    assert list(fig.data[0].y) == [0.0, 0.5, 1.0]
    assert tuple(fig.layout.yaxis.range) == (0, 1)


def test_activations_bars_name_classes_only_when_given():
    act = np.array([0.0, 1.5, -0.2])
    named = figures.activations_figure(act, ["x", "y", "z"]).data[0]
    assert list(named.customdata) == ["x", "y", "z"] and "%{customdata}" in named.hovertemplate
    plain = figures.activations_figure(act).data[0]
    assert plain.customdata is None and "%{customdata}" not in plain.hovertemplate
    assert list(plain.y) == pytest.approx([0.0, 1.5, -0.2])


def test_loss_curve():
    fig = figures.loss_figure([3.0, 2.0, 1.5])
    assert list(fig.data[0].y) == [3.0, 2.0, 1.5]
    assert fig.layout.xaxis.title.text == "step"


def test_actmax_animation_and_curve():
    frames = np.random.default_rng(0).integers(0, 255, (3, 8, 8, 1), dtype=np.uint8)
    fig = figures.actmax_animation_figure(frames, np.array([0, 5, 10]), "during")
    assert [f.name for f in fig.frames] == ["0", "5", "10"]
    assert fig.data[0].source.startswith("data:image/png;base64,")
    assert fig.frames[2].data[0].source != fig.frames[0].data[0].source
    assert len(fig.layout.sliders[0].steps) == 3
    assert fig.layout.updatemenus[0].buttons[0].method == "animate"
    curve = figures.actmax_curve_figure(np.array([0.1, 0.4, 0.9]), 0.05, 1.2, "activation")
    assert len(curve.data) == 2 and list(curve.data[1].y) == [0.05, 1.2]
    assert list(curve.data[1].x) == [0, 3]  # the result is plotted after the last step


def _comparison(epochs_done: int):
    from vizcore import transfer

    hist = {m: [0.5 + 0.1 * i for i in range(epochs_done)] for m in transfer.METRICS}
    return transfer.Comparison(
        {"task": "digits", "train_size": 100, "epochs": 5},
        {k: transfer.RunHistory(k, dict(hist), [1.0] * epochs_done, 0.7, 0.9)
         for k in transfer.RUN_KINDS},
        {"train": 100, "val": 179, "test": 359}, "digits", "2026-01-01T00:00:00",
        finished=True)


def test_training_curves_current_run_and_faded_overlays():
    comp, saved = _comparison(2), _comparison(4)
    fig = figures.training_curves_figure(comp, [], "accuracy", epochs=5)
    assert [t.name for t in fig.data] == ["transfer train", "transfer validation",
                                          "scratch train", "scratch validation"]
    assert fig.data[1].line.dash == "dash" and fig.data[0].line.dash == "solid"
    assert tuple(fig.layout.yaxis.range) == (0, 1.02)
    assert tuple(fig.layout.xaxis.range) == pytest.approx((0.7, 5.3))  # planned epochs
    fig = figures.training_curves_figure(comp, [saved], "loss")
    names = [t.name for t in fig.data]
    assert len(names) == 8 and names[0] == "transfer train [1]"
    faded, current = fig.data[0], fig.data[4]
    assert faded.opacity < current.opacity and faded.line.width < current.line.width
    assert [t.showlegend for t in fig.data[:4]] == [True, False, True, False]
    assert tuple(fig.layout.xaxis.range) == pytest.approx((0.7, 4.3))  # the longest run
    assert fig.layout.yaxis.title.text == "loss (cross-entropy)"
    assert len(figures.training_curves_figure(None, [], "loss").data) == 0


def test_memo_shares_a_figure_between_equal_inputs_only():
    rng = np.random.default_rng(0)
    a = rng.random((8, 8)).astype(np.float32)
    first = figures.heatmap_figure(a, title="t")
    assert figures.heatmap_figure(a.copy(), title="t") is first  # same content, another array
    assert figures.heatmap_figure(a, title="u") is not first  # another argument
    b = a.copy()
    b[3, 3] += 1e-3
    assert figures.heatmap_figure(b, title="t") is not first  # one value differs
    assert figures.heatmap_figure(a.reshape(4, 16), title="t") is not first  # same bytes, shape
    assert figures.heatmap_figure(a.astype(np.float64), title="t") is not first  # dtype
    # the shared figure is the one the builder makes
    fresh = figures.heatmap_figure.uncached(a, title="t")
    assert fresh.to_plotly_json() == first.to_plotly_json()


def test_memo_is_bounded(monkeypatch):
    monkeypatch.setattr(figures, "MEMO_ENTRIES", 3)
    probs = np.full(10, 0.1)
    names = [f"c{i}" for i in range(10)]
    built = [figures.topk_figure(probs, names, k) for k in range(1, 6)]
    assert len(figures._memo) <= 3
    assert figures.topk_figure(probs, names, 5) is built[-1]  # the newest is kept
    assert figures.topk_figure(probs, names, 1) is not built[0]  # the oldest went

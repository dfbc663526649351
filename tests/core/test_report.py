"""The HTML report: one self-contained file, every figure embedded, nothing fetched."""

import base64
import io
import re

import numpy as np
from PIL import Image

from vizcore import models, report
from vizcore.explain import REGISTRY, explain, metrics


def _report(info, with_checks=True):
    x = np.random.default_rng(0).random(info.input_shape).astype(np.float32)
    raw = (x * 255).astype(np.uint8)
    probs = info.forward(x[None])[0]
    target = int(np.argmax(probs))
    maps = {k: explain(info, x, k) for k in ("saliency", "gradcam")}
    curves = sanity = None
    if with_checks:
        curves = {k: metrics.deletion_insertion(info, x, r, steps=10, target=target)
                  for k, r in maps.items()}
        sanity = metrics.randomisation_check(info, x, list(maps), target=target)
    return report.explain_report(
        title="A test report", model_label=info.label, card_rows=models.card_rows(info.card),
        image=raw, image_title="random <noise>", probs=probs, class_names=info.class_names,
        true_label=None, target=target, maps=maps, names={k: REGISTRY[k].name for k in maps},
        notes={k: REGISTRY[k].note for k in maps}, curves=curves, sanity=sanity,
        settings={"CAM layer": "conv"}, link="http://example.invalid/explain?methods=gradcam")


def test_every_figure_is_embedded_and_nothing_is_fetched(ex_cnn):
    html = _report(ex_cnn)
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    srcs = re.findall(r'<img src="([^"]+)"', html)
    # input, top-5, two maps, the faithfulness curves, the sanity-check figure
    assert len(srcs) == 6
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        img.load()
        assert img.width > 50 and img.height > 50
    without_images = re.sub(r'src="data:[^"]+"', "", html)
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', without_images)
    assert "<script" not in html and "<link" not in html and "@import" not in html
    # the pieces a student needs
    for text in ("Grad-CAM", "Saliency", "deletion AUC", "Sanity check", "Reopen this view",
                 "http://example.invalid/explain?methods=gradcam", "random &lt;noise&gt;"):
        assert text in html


def test_checks_not_run_are_said(ex_cnn):
    html = _report(ex_cnn, with_checks=False)
    assert len(re.findall(r"<img ", html)) == 4
    assert html.count("Not computed for this report.") == 2


def test_model_card_is_a_readable_table():
    rows = dict(models.card_rows({"test_accuracy": 0.9203, "parameters": 422026,
                                  "train_seconds": 1197.4, "epochs": 10, "history": {"a": 1},
                                  "custom_note": "hello"}))
    assert rows == {"Test accuracy": "92.0%", "Parameters": "422,026",
                    "Training time": "19 min 57 s", "Epochs": "10", "Custom note": "hello"}

"""Dataset-wide jobs, run in this process (the Ray runs are in test_batch_ray.py): the maps equal
the app's explain(), an interrupted job resumes to the same result, bad images are skipped and
reported, bad requests are refused before anything runs, and the summaries say what they should.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from vizcore.batch import Job, JobError, ModelRef, analysis, open_results, open_source, run
from vizcore.batch.sources import SourceError
from vizcore.batch.work import check

DATA = "fashion-mnist:test"


@pytest.fixture(scope="module")
def info():
    return ModelRef.parse("fashion_vgg").load()


def explain_job(**kw) -> Job:
    kw.setdefault("limit", 40)
    return Job("explain", "fashion_vgg", DATA, methods=kw.pop("methods", ["gradcam", "saliency"]),
               block_size=kw.pop("block_size", 16), **kw)


def test_maps_equal_the_apps_explain(tmp_path, info):
    from vizcore.explain import explain

    job = explain_job(methods=["gradcam", "saliency", "smoothgrad"],
                      params={"smoothgrad": {"n": 8}}, limit=20)
    out = run(job, open_source(DATA, 20), tmp_path, executor="local")
    assert out.complete and out.blocks_total == 2
    res = open_results(tmp_path)
    rows = res.rows["explain"]
    assert len(rows) == 20 * 3 and set(rows["method"]) == {"gradcam", "saliency", "smoothgrad"}
    src = open_source(DATA, 20)
    x = info.preprocess(src.pixels()).astype(np.float32)
    probs = info.forward(x)
    for pos in (0, 7, 19):
        row = rows[(rows["position"] == pos)].iloc[0]
        assert row["predicted"] == int(probs[pos].argmax())
        assert row["top5"][0] == row["predicted"]
        assert row["confidence"] == pytest.approx(float(probs[pos].max()), abs=1e-5)
        for m, params in (("gradcam", {}), ("saliency", {}), ("smoothgrad", {"n": 8})):
            want = explain(info, x[pos], m, **params).heatmap
            got = res.map_of(pos, m)
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, atol=2e-3)  # float16 storage


def test_interrupted_job_resumes_to_the_uninterrupted_result(tmp_path):
    whole = run(explain_job(), open_source(DATA, 40), tmp_path / "whole", executor="local")
    assert whole.complete and whole.blocks_total == 3

    def stop_after_first_block(done, total):
        if done >= 16:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(explain_job(), open_source(DATA, 40), tmp_path / "cut", executor="local",
            progress=stop_after_first_block)
    manifest = json.loads((tmp_path / "cut/explain/manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert len(list((tmp_path / "cut/explain").glob("part-*.parquet"))) == 1
    messages = []
    resumed = run(explain_job(), open_source(DATA, 40), tmp_path / "cut", executor="local",
                  log=messages.append)
    assert resumed.complete and resumed.blocks_done == 3
    assert any("resuming: 1 of 3 blocks" in m for m in messages)
    a, b = open_results(tmp_path / "whole"), open_results(tmp_path / "cut")
    cols = ["position", "method", "predicted", "target", "confidence"]
    assert a.rows["explain"][cols].equals(b.rows["explain"][cols])
    for pos in (3, 20, 39):
        np.testing.assert_array_equal(a.map_of(pos, "gradcam"), b.map_of(pos, "gradcam"))


def test_a_different_job_in_the_folder_is_refused(tmp_path):
    run(explain_job(limit=16), open_source(DATA, 16), tmp_path, executor="local")
    other = explain_job(limit=16, methods=["gradcam"])
    with pytest.raises(JobError, match="holds another explain job"):
        run(other, open_source(DATA, 16), tmp_path, executor="local")
    out = run(other, open_source(DATA, 16), tmp_path, executor="local", overwrite=True)
    assert out.complete and set(open_results(tmp_path).rows["explain"]["method"]) == {"gradcam"}


def test_corrupt_images_in_a_folder_are_skipped_and_reported(tmp_path):
    from PIL import Image

    folder = tmp_path / "images"
    src = open_source(DATA, 6)
    for i, img in enumerate(src.pixels()):
        cls = folder / ("shirts" if i % 2 else "shoes")
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[..., 0]).save(cls / f"item{i}.png")
    (folder / "shoes" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (folder / "shirts" / "empty.jpg").write_bytes(b"")
    source = open_source(str(folder))
    assert len(source) == 8 and source.class_names == ["shirts", "shoes"]
    out = run(Job("explain", "fashion_vgg", str(folder), methods=["gradcam"]), source,
              tmp_path / "out", executor="local")
    assert out.complete
    skipped = {s["id"] for s in out.manifest["skipped"]}
    assert skipped == {"shoes/broken.png", "shirts/empty.jpg"}
    assert all(s["reason"] for s in out.manifest["skipped"])
    rows = open_results(tmp_path / "out").rows["explain"]
    good = rows[rows["error"] == ""]
    assert len(good) == 6 and set(good["label"]) == {0, 1}
    assert out.manifest["images_ok"] == 6


def test_bad_requests_are_refused_before_running(tmp_path, info):
    with pytest.raises(SourceError, match="not a dataset"):
        open_source("imagenet-21k")
    with pytest.raises(SourceError, match="no split"):
        open_source("fashion-mnist:validation")
    with pytest.raises(SourceError, match="no image"):
        open_source(str(tmp_path))
    with pytest.raises(KeyError, match="unknown method"):
        check(Job("explain", "fashion_vgg", DATA, methods=["gradcamm"]), info)
    with pytest.raises(ValueError, match="no layer 'block9'"):
        check(Job("explain", "fashion_vgg", DATA, methods=["gradcam"], layer="block9"), info)
    with pytest.raises(TypeError, match="no parameter"):
        check(Job("explain", "fashion_vgg", DATA, methods=["smoothgrad"],
                  params={"smoothgrad": {"samples": 3}}), info)
    with pytest.raises(ValueError, match="no feature layer"):
        check(Job("embed", "fashion_vgg", DATA, layer="nope"), info)
    with pytest.raises(FileNotFoundError, match="neither a shipped model"):
        ModelRef.parse(str(tmp_path / "missing.keras"))


def test_cli_without_ray_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from vizcore.__main__ import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code = main(["batch", "explain", "--limit", "4", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "pip install 'ray[data]==2.60.0'" in err and "--local" in err
    assert not (tmp_path / "explain").exists()


def test_cli_local_score_writes_ranking_and_sanity(tmp_path, capsys):
    from vizcore.__main__ import main

    code = main(["batch", "score", "--limit", "24", "--methods", "gradcam,saliency",
                 "--steps", "8", "--sanity-sample", "1", "--local", "--out", str(tmp_path)])
    assert code == 0
    summary = json.loads((tmp_path / "score/summary.json").read_text())
    assert summary["insertion"] in ("insertion_auc_blur", "insertion_auc_grey")
    assert {r["method"] for r in summary["ranking"]} == {"gradcam", "saliency"}
    for r in summary["ranking"]:
        assert r["n"] == 24 and r["deletion_auc_lo"] <= r["deletion_auc"] <= r["deletion_auc_hi"]
        assert 0.0 <= r["deletion_auc"] <= 1.0
    assert set(summary["sanity"]["spearman"]) == {"gradcam", "saliency"}
    assert len(summary["sanity"]["layers"]) == len(summary["sanity"]["spearman"]["gradcam"])
    rows = open_results(tmp_path).rows["score"]
    assert rows["disagreement"].between(0, 2).all()
    assert rows["outside"].between(0, 1).all()  # Fashion-MNIST: an object mask exists
    out = capsys.readouterr().out
    assert "gradcam" in out and "95% CI" in out


def test_local_embed_fits_a_sample_and_places_the_rest(tmp_path):
    job = Job("embed", "fashion_vgg", "digits", limit=400, fit_sample=250, heldout=100,
              projections=["tsne"], layer="fc2")
    out = run(job, open_source("digits", 400), tmp_path, executor="local")
    assert out.complete
    res = open_results(tmp_path)
    pts = res.points
    assert len(pts) == 400 and pts["in_fit"].sum() == 250 and pts["held_out"].sum() == 100
    assert not (pts["in_fit"] & pts["held_out"]).any()
    assert np.isfinite(pts[["tsne_x", "tsne_y"]].to_numpy()).all()
    q = res.summaries["embed"]["projections"]["tsne"]["quality_heldout"]
    assert q["knn_2d"] > 0.5 and 0.5 < q["trustworthiness"] <= 1.0


def test_analysis_numbers():
    rng = np.random.default_rng(0)
    maps = rng.random((1, 5, 8, 8)).astype(np.float32)
    assert analysis.disagreement(np.concatenate([maps, maps])) == pytest.approx(np.zeros(5),
                                                                                 abs=1e-6)
    assert analysis.disagreement(np.concatenate([maps, -maps])) == pytest.approx(
        np.full(5, 2.0), abs=1e-6)
    heat = np.zeros((1, 4, 4))
    heat[0, 0, :] = 1.0
    mask = np.zeros((1, 4, 4), bool)
    mask[0, :2] = True
    assert analysis.outside_mass(heat, mask)[0] == 0.0
    assert analysis.outside_mass(heat, ~mask)[0] == 1.0
    mean, lo, hi = analysis.mean_ci([1.0, 2.0, 3.0, np.nan])
    assert mean == 2.0 and lo < 2.0 < hi
    import pandas as pd

    frame = pd.DataFrame({
        "method": ["a"] * 4 + ["b"] * 4, "error": [""] * 8, "deletion_auc": [0.2] * 8,
        "insertion_auc_blur": [0.9, 0.91, 0.89, 0.9, 0.9, 0.89, 0.91, 0.9],
        "insertion_auc_grey": [0.8, 0.82, 0.78, 0.8, 0.4, 0.42, 0.38, 0.4]})
    assert analysis.insertion_column(frame) == "insertion_auc_grey"
    table = analysis.ranking(frame)
    assert list(table["method"]) == ["a", "b"]
    assert table["faithfulness"].tolist() == pytest.approx([0.6, 0.2])


def test_progress_bar_rate_and_time_left_leave_out_the_start_up(monkeypatch):
    import io

    from vizcore.batch import cli

    clock = iter([0.0, 30.0, 31.0, 32.0])  # 30 s of start-up, then 100 images a second
    monkeypatch.setattr(cli.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    bar = cli.Bar(out, every=0)
    for done in (0, 100, 200, 300):
        bar(done, 1000)
    lines = out.getvalue().splitlines()
    assert "starting..." in lines[0]
    assert lines[2].endswith("100 img/s  8 s left") and lines[3].endswith("100 img/s  7 s left")

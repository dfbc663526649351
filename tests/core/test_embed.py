"""vizcore.embed: projections keep separated clusters apart, features have the right shapes,
quality numbers match scikit-learn, and the CLI."""

import argparse

import numpy as np
import pytest
from PIL import Image

from vizcore import embed
from vizcore.embed import projection


def clusters(n=300, k=5, dim=20, sep=12.0, seed=0):
    """k well-separated Gaussian clusters (unit noise, centres ~sep apart) in ``dim`` dims."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    centres = sep * centres / np.linalg.norm(centres, axis=1, keepdims=True)
    y = np.arange(n) % k
    X = centres[y] + rng.normal(size=(n, dim))
    return X.astype(np.float32), y


def separation(Y, y):
    """Smallest distance between two cluster centres over the largest cluster radius (2-D)."""
    cents = np.stack([Y[y == c].mean(0) for c in np.unique(y)])
    radius = max(np.percentile(np.linalg.norm(Y[y == c] - cents[c], axis=1), 95)
                 for c in np.unique(y))
    d = np.linalg.norm(cents[:, None] - cents[None], axis=-1)
    return d[np.triu_indices(len(cents), 1)].min() / radius


@pytest.mark.parametrize("method,params", [
    ("pca", {}),
    ("tsne", {"iterations": 250, "snapshot_every": 50}),
    ("tsne", {"iterations": 250, "snapshot_every": 0, "gradient": "fft", "n_jobs": 1}),
])
def test_projection_keeps_separated_clusters_apart(method, params):
    X, y = clusters()
    proj = embed.project(X, method, seed=0, **params)
    assert proj.coords.shape == (300, 2) and np.isfinite(proj.coords).all()
    q = embed.quality(X, proj.coords, y, k=10)
    # the stated bar: 10-NN accuracy in 2-D of at least 98 % (chance is 20 %)
    assert q.knn_2d >= 0.98, q
    assert q.knn_original >= 0.98
    assert q.trustworthiness > 0.9
    assert separation(proj.coords, y) > 1.0


@pytest.mark.slow
def test_umap_keeps_separated_clusters_apart():
    X, y = clusters()
    proj = embed.project(X, "umap", seed=0, n_neighbors=10)
    q = embed.quality(X, proj.coords, y, k=10)
    assert q.knn_2d >= 0.98, q
    assert separation(proj.coords, y) > 1.0
    assert embed.umap_ready()


def test_knn_accuracy_is_at_chance_for_random_labels():
    X, _ = clusters()
    y = np.random.default_rng(1).integers(0, 5, len(X))
    proj = embed.project(X, "pca")
    q = embed.quality(X, proj.coords, y, k=10)
    assert q.knn_2d < 0.4 and q.knn_original < 0.4


def test_quality_matches_sklearn_trustworthiness():
    from sklearn.manifold import trustworthiness

    rng = np.random.default_rng(0)
    X = (rng.normal(size=(200, 4)) * [3, 3, 1, 0.5]).astype(np.float32)
    Y = X[:, :2] + 0.3 * rng.normal(size=(200, 2))
    ref = trustworthiness(X, Y, n_neighbors=7)
    q = embed.quality(X, Y, np.zeros(200, int), k=7)
    assert q.n_queries == 200
    assert q.trustworthiness == pytest.approx(ref, abs=1e-9)
    sub = embed.quality(X, Y, np.zeros(200, int), k=7, max_queries=120, chunk=50)
    assert sub.n_queries == 120
    assert sub.trustworthiness == pytest.approx(ref, abs=0.03)
    # a scrambled map is much less trustworthy
    bad = embed.quality(X, rng.permutation(Y), np.zeros(200, int), k=7)
    assert bad.trustworthiness < ref - 0.2


def test_tsne_snapshots_record_the_optimisation():
    X, y = clusters(n=200)
    proj = embed.project(X, "tsne", iterations=100, snapshot_every=10, perplexity=20)
    assert proj.snapshot_iters[0] == 0 and proj.snapshot_iters[-1] == 100
    assert proj.snapshots.shape == (len(proj.snapshot_iters), 200, 2)
    assert proj.exaggeration_iters == 25
    np.testing.assert_allclose(proj.snapshots[-1], proj.coords)
    # the points move: the map at the start is not the map at the end
    assert not np.allclose(proj.snapshots[0], proj.snapshots[-1])
    assert proj.params["gradient"] == "bh"


def test_tsne_picks_fft_gradients_for_large_samples(monkeypatch):
    X, y = clusters(n=400)
    monkeypatch.setattr(projection, "BH_BELOW", 300)
    proj = embed.project(X, "tsne", iterations=100, snapshot_every=0)
    assert proj.params["gradient"] == "fft"
    assert proj.params["n_jobs"] == embed.tsne_threads(0) >= 1
    assert embed.quality(X, proj.coords, y, k=10).knn_2d >= 0.98
    monkeypatch.setattr(projection, "BH_BELOW", 500)
    assert embed.project(X, "tsne", iterations=20, snapshot_every=0).params["gradient"] == "bh"


def test_parameters_are_checked():
    X, _ = clusters(n=50)
    with pytest.raises(TypeError):
        embed.project(X, "tsne", perplexitty=5)
    with pytest.raises(KeyError):
        embed.project(X, "isomap")
    calls = []
    embed.project(X, "tsne", iterations=40, snapshot_every=0,
                  progress=lambda f, m: calls.append(f))
    assert calls and calls == sorted(calls) and calls[-1] == pytest.approx(1.0)


def test_sample_indices_balanced_and_bounded():
    from vizcore.data import Dataset

    labels = np.repeat(np.arange(10), 100)
    ds = Dataset("toy", np.zeros((1000, 4, 4, 1), np.uint8), labels, [str(i) for i in range(10)],
                 "toy")
    idx = embed.sample_indices(ds, 300, seed=3)
    assert len(idx) == 300 and len(set(idx)) == 300
    assert np.bincount(labels[idx]).tolist() == [30] * 10
    np.testing.assert_array_equal(idx, embed.sample_indices(ds, 300, seed=3))
    assert len(embed.sample_indices(ds, 5000)) == 1000
    with pytest.raises(ValueError):
        embed.sample_indices(ds, 100)


# --------------------------------------------------------------------------- features


def test_penultimate_layers(tiny_cnn, shipped_vgg, shipped_gap):
    assert embed.penultimate_layer(tiny_cnn.model) == "fc1"
    assert embed.penultimate_layer(shipped_vgg.model) == "fc2"
    assert embed.penultimate_layer(shipped_gap.model) == "gap"
    layers = embed.feature_layers(shipped_vgg.model)
    assert layers[0] == embed.PIXELS and "fc2" in layers and "dropout1" not in layers


def test_features_of_chosen_layers_have_expected_shapes(tiny_cnn):
    from vizcore import features

    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (37, 8, 8, 1), dtype=np.uint8)
    fs = embed.extract_features(tiny_cnn, raw, [None, embed.PIXELS, "conv1"], batch_size=16)
    assert fs.values["fc1"].shape == (37, 6)
    assert fs.values[embed.PIXELS].shape == (37, 64)
    assert fs.values["conv1"].shape == (37, 8 * 8 * 4)
    assert fs.shapes["conv1"] == (8, 8, 4)
    x = tiny_cnn.preprocess(raw)
    ref = features.activations(tiny_cnn.model, ["fc1"], x)["fc1"]
    np.testing.assert_allclose(fs.values["fc1"], ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fs.values[embed.PIXELS], x.reshape(37, -1))
    np.testing.assert_allclose(fs.probs, tiny_cnn.forward(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fs.predictions, fs.probs.argmax(1))


def test_long_feature_maps_are_average_pooled(tiny_cnn):
    from vizcore import features

    raw = np.random.default_rng(1).integers(0, 256, (10, 8, 8, 1), dtype=np.uint8)
    fs = embed.extract_features(tiny_cnn, raw, ["conv1"], max_dims=100)
    assert fs.values["conv1"].shape == (10, 4 * 4 * 4)  # 8x8x4 = 256 > 100 -> 2x2 pooling
    assert "2x2" in fs.reductions["conv1"]
    maps = features.activations(tiny_cnn.model, ["conv1"], tiny_cnn.preprocess(raw))["conv1"]
    pooled = maps.reshape(10, 4, 2, 4, 2, 4).mean(axis=(2, 4)).reshape(10, -1)
    np.testing.assert_allclose(fs.values["conv1"], pooled, rtol=1e-5, atol=1e-6)


def test_unknown_layer_is_refused(tiny_cnn):
    with pytest.raises(KeyError):
        embed.extract_features(tiny_cnn, np.zeros((2, 8, 8, 1), np.uint8), ["nope"])


def test_nearest_neighbours_exclude_the_point_and_are_sorted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    nb, d = embed.nearest_neighbours(X, 7, k=5)
    brute = np.argsort(np.linalg.norm(X - X[7], axis=1))[1:6]
    np.testing.assert_array_equal(nb, brute)
    assert 7 not in nb and np.all(np.diff(d) >= 0)


def test_animation_has_one_frame_per_snapshot():
    from ui.embeddings import animation_figure

    X, y = clusters(n=120)
    proj = embed.project(X, "tsne", iterations=60, snapshot_every=20, perplexity=10)
    fig = animation_figure(proj.snapshots, proj.snapshot_iters, y, list("abcde"),
                           proj.exaggeration_iters, max_points=100)
    assert len(fig.frames) == len(proj.snapshot_iters) == 4
    assert sum(len(tr.x) for tr in fig.frames[-1].data) == 100
    assert all(np.abs(np.concatenate([tr.x for tr in f.data])).max() <= 1.0 + 1e-9
               for f in fig.frames)


# --------------------------------------------------------------------------- CLI


def test_embed_command_writes_csv_for_an_image_folder(tmp_path, tiny_cnn):
    import pandas as pd

    model_path = tmp_path / "tiny.keras"
    tiny_cnn.model.save(model_path)
    rng = np.random.default_rng(0)
    for cls in ("bright", "dark"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(12):
            base = 200 if cls == "bright" else 30
            arr = np.clip(base + rng.normal(0, 10, (16, 16)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(tmp_path / "imgs" / cls / f"{i}.png")
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    parser = embed.add_embed_arguments(argparse.ArgumentParser())
    out = tmp_path / "emb.csv"
    args = parser.parse_args(["--folder", str(tmp_path / "imgs"), "--model", str(model_path),
                              "--method", "pca", "--layer", "pixels", "--k", "3",
                              "--out", str(out)])
    lines = []
    assert embed.embed_command(args, log=lines.append) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["file", "label", "label_name", "predicted", "predicted_name",
                                "confidence", "x", "y"]
    assert len(df) == 24 and set(df["label_name"]) == {"bright", "dark"}
    # bright and dark images end up on opposite sides of the first principal axis
    xs = df.groupby("label_name")["x"].agg(["min", "max"])
    assert xs.loc["bright", "max"] < xs.loc["dark", "min"] or \
        xs.loc["dark", "max"] < xs.loc["bright", "min"]
    assert any("trustworthiness" in s for s in lines)


def test_exact_knn_matches_scikit_learn_in_small_blocks():
    from sklearn.neighbors import NearestNeighbors

    X = np.random.default_rng(4).normal(size=(257, 12)).astype(np.float32)
    idx, dist = embed.exact_knn(X, 9, max_block_values=257 * 10)  # 10 rows per block
    ref_d, ref_i = NearestNeighbors(n_neighbors=10).fit(X).kneighbors(X)
    np.testing.assert_array_equal(idx, ref_i[:, 1:])
    np.testing.assert_allclose(dist, ref_d[:, 1:], rtol=1e-4, atol=1e-4)
    assert embed.exact_knn(X[:4], 9)[0].shape == (4, 3)  # k capped at N - 1

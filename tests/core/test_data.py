"""Data loaders, image validation and preprocessing."""

import gzip
import io
import struct

import numpy as np
import pytest
from PIL import Image

from vizcore import data


def _write_idx(path, arr: np.ndarray, compress: bool = True) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    raw = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("test", 20)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        img_name, lab_name = data.IDX_FILES[split]
        _write_idx(tmp_path / img_name, imgs)
        _write_idx(tmp_path / lab_name.removesuffix(".gz"), labels, compress=False)
    return tmp_path


def test_read_idx_roundtrip(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", arr)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.gz"), arr)


def test_read_idx_rejects_truncated_and_bad_magic(tmp_path):
    arr = np.zeros((4, 5, 5), np.uint8)
    _write_idx(tmp_path / "t", arr, compress=False)
    (tmp_path / "t").write_bytes((tmp_path / "t").read_bytes()[:-7])
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(tmp_path / "t")
    (tmp_path / "m").write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="magic"):
        data.read_idx(tmp_path / "m")


def test_fashion_mnist_from_synthetic_idx(idx_dir):
    ds = data.load_fashion_mnist("test", search_dirs=[idx_dir], allow_download=False)
    assert ds.images.shape == (20, 28, 28, 1) and ds.images.dtype == np.uint8
    assert list(ds.labels[:3]) == [0, 1, 2]
    assert ds.class_names[9] == "Ankle boot"
    train = data.load_fashion_mnist("train", search_dirs=[idx_dir], allow_download=False)
    assert len(train) == 30


def test_fashion_mnist_falls_back_to_bundled_sample(tmp_path):
    ds = data.load_fashion_mnist("test", search_dirs=[tmp_path], allow_download=False)
    assert ds.extra.get("is_sample")
    assert len(ds) >= 2000
    counts = np.bincount(ds.labels, minlength=10)
    assert counts.min() == counts.max(), "the bundled sample is balanced"
    assert ds.images.shape[1:] == (28, 28, 1)


def test_fashion_mnist_missing_everywhere_says_what_to_do(tmp_path):
    with pytest.raises(data.DataUnavailable, match="apt-get install dataset-fashion-mnist"):
        data.load_fashion_mnist("train", search_dirs=[tmp_path], allow_download=False)


def test_mnist_offline_fails_fast_with_fix(tmp_path, monkeypatch):
    def refuse(*a, **k):
        raise data.DataUnavailable("could not download: network unreachable")

    monkeypatch.setattr(data, "_download", refuse)
    with pytest.raises(data.DataUnavailable, match="digits"):
        data.load_mnist(cache_path=tmp_path / "mnist.npz")


def test_mnist_from_cache(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=np.zeros((5, 28, 28), np.uint8), y_train=np.arange(5),
             x_test=np.ones((3, 28, 28), np.uint8), y_test=np.arange(3))
    ds = data.load_mnist(cache_path=path)
    assert ds.images.shape == (3, 28, 28, 1) and list(ds.labels) == [0, 1, 2]


def test_digits_upsampled_to_28():
    ds = data.load_digits()
    assert ds.images.shape == (1797, 28, 28, 1)
    assert ds.images.max() > 200 and ds.images[:, :4].max() == 0  # ink inside a black frame


def test_balanced_sample_is_seeded_and_balanced():
    ds = data.load_digits()
    a, b = ds.balanced_sample(300, seed=1), ds.balanced_sample(300, seed=1)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 300 and np.bincount(ds.labels[a]).min() >= 29


def test_sample_photos_have_sources():
    ds = data.load_sample_photos()
    assert ds.images.shape[1:] == (224, 224, 3) and len(ds) >= 4
    assert all(n for n in ds.class_names)


def _png(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "LA", "I;16", "CMYK"])
def test_load_image_converts_modes_to_rgb(mode):
    img = Image.new("RGB", (40, 30), (200, 10, 10)).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    out = data.load_image(_png(img, fmt))
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8


def test_rgba_is_composited_on_white():
    img = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    out = data.load_image(_png(img))
    assert out.min() == 255


@pytest.mark.parametrize("payload,match", [
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
    (b"%PDF-1.4 fake pdf", "not an image"),
])
def test_load_image_rejects_non_images(payload, match):
    with pytest.raises(data.ImageError, match=match):
        data.load_image(payload)


def test_load_image_rejects_corrupt_png():
    raw = _png(Image.new("RGB", (64, 64), (1, 2, 3)))
    with pytest.raises(data.ImageError, match="corrupt|truncated|not an image"):
        data.load_image(raw[: len(raw) // 2] + b"\x00" * 10)


def test_load_image_rejects_tiny():
    with pytest.raises(data.ImageError, match="1 x 1"):
        data.load_image(_png(Image.new("RGB", (1, 1))))


def test_decompression_bomb_refused_before_decoding():
    # a real 50,000 x 50,000 PNG header: refused from the header alone
    img = Image.new("1", (50_000, 50_000))
    raw = _png(img)
    assert len(raw) < 1_000_000
    with pytest.raises(data.ImageError, match="megapixel"):
        data.load_image(raw)


def test_fit_image_grayscale_photo_is_inverted_when_background_is_light():
    img = np.full((60, 40, 3), 250, np.uint8)
    img[20:40, 10:30] = 0  # dark object on a light background
    out = data.fit_image(img, (28, 28), 1)
    assert out.shape == (28, 28, 1)
    assert out[0, 0, 0] < 20 and out[14, 14, 0] > 200
    kept = data.fit_image(img, (28, 28), 1, invert=False)
    assert kept[14, 14, 0] < 50


def test_fit_image_rgb_resize():
    out = data.fit_image(np.zeros((28, 28, 1), np.uint8), (224, 224), 3)
    assert out.shape == (224, 224, 3)


def test_canvas_to_image_centres_strokes():
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[10:60, 200:270, :3] = 255
    out = data.canvas_to_image(rgba)
    assert out.shape == (28, 28, 1)
    ys, xs = np.nonzero(out[..., 0] > 100)
    assert abs(ys.mean() - 13.5) < 2 and abs(xs.mean() - 13.5) < 2
    assert data.canvas_to_image(np.zeros((50, 50, 4), np.uint8)).max() == 0

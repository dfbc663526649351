"""AppTest runs of the Embeddings page with a small sample (300 images, few t-SNE iterations)."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "app_pages" / "embeddings.py")
SMALL = {"emb_warmup": False, "emb_n": 300, "emb_iters": 100, "emb_every": 10}


def run(state: dict | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=300)
    for k, v in {**SMALL, **(state or {})}.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def test_page_maps_pixels_and_features_with_quality_and_animation():
    at = run()
    assert not at.error
    # pixel map, feature map, top-k bars of the selected image; the animation on demand
    assert len(at.get("plotly_chart")) == 3
    at.toggle(key="emb_anim_on").set_value(True).run()
    assert len(at.get("plotly_chart")) == 4
    assert "animation=1" in {f"{k}={v[0] if isinstance(v, list) else v}"
                             for k, v in at.query_params.items()}
    metrics = {m.label: m.value for m in at.metric}
    assert "Trustworthiness" in metrics and float(metrics["Trustworthiness"]) > 0.8
    assert any("300 images" in c for c in captions(at))
    assert any("128 features per image" in c for c in captions(at))  # fc2 of the VGG-style CNN
    assert any("784 features per image" in c for c in captions(at))  # 28x28 pixels
    assert any("nearest neighbours in `fc2` feature space" in m.value for m in at.markdown)
    assert any(b.label == "Download the embedding (CSV)" for b in at.get("download_button"))


def image_captions(at) -> list[str]:
    return [i.caption for img in at.get("image") for i in img.proto.imgs]


def test_selecting_a_point_shows_that_image():
    from vizcore import embed
    from vizcore.data import load_dataset

    ds = load_dataset("fashion_mnist")
    idx = embed.sample_indices(ds, 300, seed=0)
    at = run({"emb_selected": 17})
    assert at.number_input(key="emb_pick").value == 17
    first = image_captions(at)[0]
    assert first == f"#{idx[17]}: true class {ds.class_names[ds.labels[idx[17]]]}"
    at.session_state["emb_selected"] = 18  # what a click on a map does (via its callback)
    at.run()
    assert not at.exception
    assert image_captions(at)[0].startswith(f"#{idx[18]}:")
    at.number_input(key="emb_pick").set_value(3).run()
    assert not at.exception
    assert at.session_state["emb_selected"] == 3
    assert image_captions(at)[0].startswith(f"#{idx[3]}:")
    # the Grad-CAM of the selected image and its neighbours' thumbnails are shown
    assert any("Grad-CAM" in c for c in image_captions(at))
    assert len(image_captions(at)) >= 2 + 2 * 10


def test_pca_of_a_conv_layer_without_the_pixel_map():
    at = run({"emb_method": "pca", "emb_layer_fashion_vgg": "block3_conv1",
              "emb_compare": False})
    assert not at.error
    assert len(at.get("plotly_chart")) == 2  # one map + the prediction bars; no animation
    # 7x7x128 = 6,272 values > 4,096: pooled to 4x4x128
    assert any("2,048 features per image" in c and "averaged over 2x2" in c
               for c in captions(at))
    assert any("of the variance" in c for c in captions(at))

"""What the Occlusion and Fooling-the-model pages show: the occlusion map, the editor's masks and
comparison, attacks before and after, the patch and the flip-rate table."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui import cache, figures, jobs, widgets
from vizcore import render
from vizcore.models import ModelInfo

#: Explanation methods offered next to occlusions and attacks (fast ones first).
EXPLAIN_CHOICES = ("gradcam", "smoothgrad", "saliency", "integrated_gradients", "gradcam_plus_plus")
#: Side, in screen pixels, of the images and the editor's canvas.
SIDE = 280


def explain_options(info: ModelInfo) -> list[str]:
    """The registered methods of :data:`EXPLAIN_CHOICES` that apply to ``info``."""
    from vizcore.explain import REGISTRY

    out = []
    for key in EXPLAIN_CHOICES:
        spec = REGISTRY.get(key)
        if spec is not None and spec.applies_to(info)[0]:
            out.append(key)
    return out


def method_name(key: str) -> str:
    from vizcore.explain import REGISTRY

    return REGISTRY[key].name if key in REGISTRY else key


def show_image(raw: np.ndarray, caption: str, side: int = SIDE) -> None:
    """A uint8 image enlarged crisply to about ``side`` pixels."""
    st.image(render.upscale(render.to_rgb(raw), side), caption=caption, width=side)


def heat_overlay(raw: np.ndarray, heat: np.ndarray | None, side: int = SIDE) -> np.ndarray:
    """The explanation laid over the image, enlarged (uint8 RGB)."""
    big = render.upscale(render.to_rgb(raw), side)
    if heat is None:
        return big
    from PIL import Image

    h = np.asarray(Image.fromarray(np.float32(heat)).resize(big.shape[1::-1], Image.BILINEAR))
    return render.overlay(big, np.clip(h, 0, 1), 0.5, "jet")


# --------------------------------------------------------------------------- occlusion


def n_passes(info: ModelInfo, patch: int, stride: int) -> int:
    """Forward passes of an occlusion map: one per patch position, plus the whole image."""
    from vizcore import occlusion as occ

    _, _, ys, xs = occ.resolve_geometry(info.input_shape, patch, stride)
    return len(ys) * len(xs) + 1


def show_occlusion_map(info: ModelInfo, raw: np.ndarray, res) -> None:
    """The drop map over the image, the probability map, what they mean, and downloads."""
    name = info.class_names[res.target]
    left, right = st.columns(2)
    left.plotly_chart(figures.heatmap_figure(
        res.drop, raw, signed=True, title=f"Drop of p({name}) when covered",
        colorbar_title="drop", height=380), width="stretch", key="occ_drop_fig")
    right.plotly_chart(figures.heatmap_figure(
        res.prob, title=f"p({name}) with the patch there", zmin=0.0, zmax=1.0,
        colorbar_title="p", height=380), width="stretch", key="occ_prob_fig")
    st.caption(
        f"Class **{name}**: p = {res.base_prob:.1%} on the whole image. {res.passes} forward "
        f"passes of {res.patch[0]}x{res.patch[1]} {res.fill} patches, stride {res.stride}, in "
        f"{res.seconds:.2f} s"
        + (" (incremental: each layer was recomputed only where the patch changed it)"
           if res.incremental else "")
        + f". Largest drop {res.drop.max():+.1%}; each pixel shows the mean over all patch "
        "positions covering it.")
    png = render.overlay(render.upscale(render.to_rgb(raw), SIDE),
                         render.normalize(res.drop, "symmetric"), 0.55, "RdBu_r")
    widgets.downloads(f"occlusion_{info.model.name}_{name}", png,
                      np.stack([res.drop, res.prob]), key="occ_map")
    st.caption("The .npy holds two maps, shape (2, H, W): the drop, then the probability.")


def presets(h: int, w: int) -> dict[str, tuple | None]:
    """Ready-made regions the editor can cover, as index tuples."""
    return {"none": None, "top half": (slice(0, h // 2), slice(None)),
            "bottom half": (slice(h // 2, None), slice(None)),
            "left half": (slice(None), slice(0, w // 2)),
            "right half": (slice(None), slice(w // 2, None)),
            "centre": (slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4))}


def canvas_size(h: int, w: int) -> tuple[int, int]:
    """(height, width) of the editor's canvas: the image enlarged by a whole factor."""
    scale = max(1, int(np.ceil(SIDE / max(h, w))))
    return h * scale, w * scale


def canvas_background(raw: np.ndarray):
    """The image under the editor's canvas (a PIL image)."""
    from PIL import Image

    return Image.fromarray(render.upscale(render.to_rgb(raw), SIDE))


def editor_mask(image_data, preset: str, h: int, w: int) -> np.ndarray:
    """(h, w) bool: what the user drew on the canvas (RGBA, or None) plus the preset region."""
    from vizcore import occlusion as occ

    mask = np.zeros((h, w), bool)
    if image_data is not None:
        mask |= occ.mask_from_canvas(np.asarray(image_data), (h, w))
    region = presets(h, w)[preset]
    if region is not None:
        mask[region] = True
    return mask


def show_comparison(info: ModelInfo, raw: np.ndarray, label: int | None, cmp, method: str,
                    right) -> None:
    """The occluded image (in ``right``), the drop in probability, top-5 and explanations of
    both images."""
    name = info.class_names[cmp.target]
    with right:
        show_image(info.deprocess(cmp.occluded), "what the model sees")
    st.markdown(f"**{cmp.covered:.0%}** of the pixels covered; p({name}) "
                f"{cmp.probs[cmp.target]:.1%} → **{cmp.probs_occluded[cmp.target]:.1%}** "
                f"(drop {cmp.target_drop:+.1%}).")
    a, b = st.columns(2)
    a.plotly_chart(figures.topk_figure(cmp.probs, info.class_names, 5, label, "Original: top 5"),
                   width="stretch", key="oe_top_orig")
    b.plotly_chart(figures.topk_figure(cmp.probs_occluded, info.class_names, 5, label,
                                       "Occluded: top 5"), width="stretch", key="oe_top_occ")
    a.image(heat_overlay(raw, cmp.heat), width=SIDE,
            caption=f"{method_name(method)} of {name}, original")
    b.image(heat_overlay(info.deprocess(cmp.occluded), cmp.heat_occluded), width=SIDE,
            caption=f"{method_name(method)} of {name}, occluded")


# --------------------------------------------------------------------------- attacks


def target_order(probs: np.ndarray) -> list[int]:
    """Classes from the second most probable down, the predicted one last (the attack's
    natural targets first)."""
    order = [int(i) for i in np.argsort(probs)[::-1]]
    return order[1:] + order[:1]


def show_attack(info: ModelInfo, inp, res, method: str | None, key: str) -> None:
    """Original | perturbation amplified | adversarial, top-5 before/after, explanations."""
    from vizcore import adversarial as adv

    names = info.class_names
    x_adv = res.x_adv[0]
    raw_adv = info.deprocess(x_adv)
    before, after = int(res.pred_before[0]), int(res.pred_after[0])
    delta = res.delta[0]
    amp = 127.0 / max(1e-12, float(np.abs(delta).max()))
    cols = st.columns(3)
    with cols[0]:
        show_image(inp.raw, f"original: {names[before]} ({res.probs_before[0, before]:.1%})", 260)
    with cols[1]:
        show_image(adv.amplify(delta), f"perturbation x{amp:.0f} (grey = no change)", 260)
    with cols[2]:
        show_image(raw_adv, f"adversarial: {names[after]} ({res.probs_after[0, after]:.1%})", 260)
    verdict = "succeeded" if res.success[0] else "did not succeed"
    top, mean = adv.grey_levels(info, delta)
    st.markdown(f"The attack **{verdict}**: {names[before]} → **{names[after]}**; largest pixel "
                f"change {top:.1f} grey levels, mean {mean:.2f}.")
    a, b = st.columns(2)
    a.plotly_chart(figures.topk_figure(res.probs_before[0], names, 5, inp.label, "Before: top 5"),
                   width="stretch", key=f"{key}_top_before")
    b.plotly_chart(figures.topk_figure(res.probs_after[0], names, 5, inp.label, "After: top 5"),
                   width="stretch", key=f"{key}_top_after")
    if method:
        with jobs.cancellable(f"{key}_explain"):
            a.image(heat_overlay(inp.raw, cache.heatmap(info.key, info, inp.x, method)),
                    width=260, caption=f"{method_name(method)} of {names[before]}, before")
            b.image(heat_overlay(raw_adv, cache.heatmap(info.key, info, x_adv, method)),
                    width=260, caption=f"{method_name(method)} of {names[after]}, after")
    widgets.downloads(f"{key}_{info.model.name}", render.to_rgb(raw_adv), x_adv, key=key)


def show_patch(info: ModelInfo, pr, ds_name: str, size: int, target: int) -> None:
    """Success rates, the patch, its loss curve and held-out images wearing it."""
    names = info.class_names
    m1, m2, m3 = st.columns(3)
    m1.metric("Success rate (held-out images)", f"{pr.success_rate:.0%}",
              delta=f"{pr.success_rate - pr.baseline_rate:+.0%} vs no patch")
    m2.metric("Held-out images", pr.n_test, help=f"from {ds_name}; images of the target class "
              "are left out")
    m3.metric("On the training images", f"{pr.train_success:.0%}")
    g1, g2 = st.columns([1, 2])
    with g1:
        show_image(info.deprocess(pr.patch), f"the patch ({size}x{size})", 200)
        st.plotly_chart(figures.loss_figure(pr.losses), width="stretch", key="adv_patch_loss")
    with g2:
        preds = np.argmax(pr.example_probs, -1)
        st.image(render.upscale(render.grid(info.deprocess(pr.examples), cols=4, pad=2), 480),
                 width="stretch", caption="Held-out images with the patch; predictions (row by "
                 "row): " + ", ".join(names[int(p)] for p in preds))
    widgets.downloads(f"patch_{info.model.name}_{target}", render.to_rgb(
        info.deprocess(pr.patch)), pr.patch, key="adv_patch")


def show_flip_rates(table, attacks: list[str], n_images: int, ds_name: str) -> None:
    """The share of flipped predictions per epsilon, as a table and a chart."""
    shown = table.drop(columns=["epsilon"])
    st.dataframe(shown, hide_index=True, width="stretch", column_config={
        col: st.column_config.ProgressColumn(col, format="percent", min_value=0.0, max_value=1.0)
        for col in shown.columns if col != "grey levels"})
    st.plotly_chart(figures.flip_rate_figure(table, attacks), width="stretch",
                    key="adv_flip_fig")
    st.caption(f"{n_images} images from {ds_name}.")

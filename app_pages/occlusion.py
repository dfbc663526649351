"""Occlusion: the sensitivity map (Zeiler and Fergus 2014) and an occlusion editor."""

import numpy as np
import streamlit as st
from PIL import Image

from ui import occlusion_view as view
from ui import state, widgets
from vizcore import render
from vizcore.explain import occlusion as occ

st.title("Occlusion")
widgets.note(
    "Cover part of the image and watch the prediction: if the probability of a class drops a lot "
    "when a region is hidden, the model was using that region for this answer. Red in the map "
    "means hiding it hurts the class, blue means hiding it helps. It does not show *why* the "
    "region matters, and a grey patch is itself an odd input the model may react to.")

info = state.current_model()
inp = state.current_input(info)
h, w, c = info.input_shape
small = min(h, w) <= 64
digest = view.digest(inp.raw)


@st.cache_data(show_spinner="Explaining both images...", max_entries=64)
def _compare(key: str, _info, x: np.ndarray, mask: np.ndarray, fill: str, method: str | None,
             target: int | None) -> occ.OcclusionComparison:
    return occ.compare_occlusion(_info, x, mask, fill, method, target)


# ------------------------------------------------------------------------ sensitivity map
st.header("Occlusion sensitivity map")
probs = info.forward(inp.x[None])[0]
pred = int(np.argmax(probs))
c1, c2, c3, c4 = st.columns(4)
auto_p = occ.auto_patch(info.input_shape)
patch = c1.slider("Patch size (pixels)", 1, max(2, min(h, w) // 2), auto_p, key="occ_patch",
                  help="Side of the square that covers the image.")
stride = c2.slider("Stride (pixels)", 1, max(2, patch), occ.auto_stride(info.input_shape, patch),
                   key="occ_stride", help="Step between two patch positions; 1 = every pixel.")
fill = c3.selectbox("Fill", occ.FILLS, key="occ_fill", format_func=lambda f: f"{f}: "
                    + occ.FILL_HELP[f].split(" (")[0], help="What the patch is filled with.")
classes = [None, *range(info.num_classes)]
target = c4.selectbox("Class", classes, key="occ_target",
                      format_func=lambda i: f"predicted: {info.class_names[pred]}" if i is None
                      else f"{i}: {info.class_names[i]}")
_, _, ys, xs = occ.resolve_geometry(info.input_shape, patch, stride)
n_pass = len(ys) * len(xs) + 1
params = (info.key, digest, patch, stride, fill, target)
if small:
    go_on = True
else:
    st.caption(f"{n_pass} forward passes on a {h}x{w} model: this can take a while on a CPU.")
    if st.button("Compute the occlusion map", key="occ_go", type="primary"):
        st.session_state["occ_done"] = params
    go_on = st.session_state.get("occ_done") == params
if go_on:
    try:
        res = view.cached_with_progress(
            ("occlusion", *params),
            lambda cb: occ.occlusion_map(info, inp.x, patch, stride, fill, target, progress=cb),
            f"Occluding {n_pass - 1} positions...")
    except ValueError as exc:
        st.error(f"Could not compute the occlusion map: {exc}. Fix: choose a smaller patch or "
                 "another class.")
        st.stop()
    name = info.class_names[res.target]
    lim = float(max(1e-6, np.abs(res.drop).max()))
    left, right = st.columns(2)
    left.plotly_chart(view.overlay_figure(
        inp.raw, res.drop, f"Drop of p({name}) when covered", zmin=-lim, zmax=lim,
        colorbar_title="drop"), width="stretch", key="occ_drop_fig")
    right.plotly_chart(view.image_figure(
        res.prob, f"p({name}) with the patch there", zmin=0.0, zmax=1.0,
        colorbar_title="p"), width="stretch", key="occ_prob_fig")
    st.caption(
        f"Class **{name}**: p = {res.base_prob:.1%} on the whole image. {res.passes} forward "
        f"passes of {res.patch[0]}x{res.patch[1]} {res.fill} patches, stride {res.stride}, in "
        f"{res.seconds:.2f} s"
        + (" (incremental: each layer was recomputed only where the patch changed it)"
           if res.incremental else "")
        + f". Largest drop {res.drop.max():+.1%}; each pixel shows the mean over all patch "
        "positions covering it.")
    png = render.overlay(render.upscale(render.to_rgb(inp.raw), 280),
                         render.normalize(res.drop, "symmetric"), 0.55, "RdBu_r")
    widgets.downloads(f"occlusion_{info.model.name}_{name}", png,
                      np.stack([res.drop, res.prob]), key="occ_map")
    st.caption("The .npy holds two maps, shape (2, H, W): the drop, then the probability.")


# ------------------------------------------------------------------------ editor
st.header("Occlusion editor")
st.caption("Draw rectangles, circles or paint on the image to cover it. Hover over the canvas for "
           "its toolbar: Undo, Redo, the bin clears everything, and the Edit toggle lets you move, "
           "resize or delete a shape. Both images are explained for the same class: the "
           "original's prediction.")
PRESETS = {"none": None, "top half": (slice(0, h // 2), slice(None)),
           "bottom half": (slice(h // 2, None), slice(None)),
           "left half": (slice(None), slice(0, w // 2)),
           "right half": (slice(None), slice(w // 2, None)),
           "centre": (slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4))}


@st.fragment
def editor() -> None:
    try:
        from streamlit_drawable_canvas import st_canvas
    except ImportError:  # pragma: no cover - in requirements.txt
        st.error("The editor needs streamlit-drawable-canvas: `pip install "
                 "streamlit-drawable-canvas`.")
        return
    methods = view.explain_options(info)
    e1, e2, e3, e4, e5 = st.columns(5)
    mode = e1.radio("Tool", ["rect", "circle", "freedraw"], key="oe_mode",
                    format_func={"rect": "Rectangle", "circle": "Circle",
                                 "freedraw": "Paint"}.get)
    brush = e2.slider("Brush width (paint)", 4, 80, 28, key="oe_brush")
    efill = e3.selectbox("Covered pixels become", occ.FILLS, key="oe_fill")
    preset = e4.selectbox("Also cover", list(PRESETS), key="oe_preset",
                          help="A ready-made region, added to what you draw.")
    method = e5.selectbox("Explanation", methods, key="oe_method", format_func=view.method_name)
    scale = max(1, int(np.ceil(280 / max(h, w))))
    bg = Image.fromarray(render.upscale(render.to_rgb(inp.raw), 280))
    left, right = st.columns([1, 1])
    with left:
        result = st_canvas(fill_color="rgba(255, 140, 0, 0.6)",
                           stroke_width=brush if mode == "freedraw" else 2,
                           stroke_color="rgba(255, 140, 0, 0.9)", background_image=bg,
                           drawing_mode=mode, height=h * scale, width=w * scale,
                           key=f"oe_canvas_{info.key}_{digest}", return_image_data=True,
                           update_streamlit=True)
    mask = np.zeros((h, w), bool)
    if result is not None and result.image_data is not None:
        mask |= occ.mask_from_canvas(np.asarray(result.image_data), (h, w))
    if PRESETS[preset] is not None:
        mask[PRESETS[preset]] = True
    cmp = _compare(info.key, info, inp.x, mask, efill, method, None)
    name = info.class_names[cmp.target]
    with right:
        view.show_image(info.deprocess(cmp.occluded), "what the model sees", 280)
    st.markdown(f"**{cmp.covered:.0%}** of the pixels covered; p({name}) "
                f"{cmp.probs[cmp.target]:.1%} → **{cmp.probs_occluded[cmp.target]:.1%}** "
                f"(drop {cmp.target_drop:+.1%}).")
    a, b = st.columns(2)
    a.plotly_chart(widgets.topk_figure(info, cmp.probs, 5, inp.label, "Original: top 5"),
                   width="stretch", key="oe_top_orig")
    b.plotly_chart(widgets.topk_figure(info, cmp.probs_occluded, 5, inp.label,
                                       "Occluded: top 5"), width="stretch", key="oe_top_occ")
    a.image(view.heat_overlay(inp.raw, cmp.heat), width=280,
            caption=f"{view.method_name(method)} of {name}, original")
    b.image(view.heat_overlay(info.deprocess(cmp.occluded), cmp.heat_occluded), width=280,
            caption=f"{view.method_name(method)} of {name}, occluded")


editor()

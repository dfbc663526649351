"""Occlusion: the sensitivity map (Zeiler and Fergus 2014) and an occlusion editor."""

import streamlit as st

from ui import cache, jobs, links, state, widgets
from ui import occlusion_view as view
from vizcore import occlusion as occ

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

side = max(2, min(h, w) // 2)
methods = view.explain_options(info)
fields = [links.int_field("patch", "occ_patch", occ.auto_patch(info.input_shape), 1, side),
          links.int_field("stride", "occ_stride", occ.auto_stride(info.input_shape, occ.auto_patch(
              info.input_shape)), 1, side),
          links.choice_field("fill", "occ_fill", occ.FILLS[0], occ.FILLS),
          links.class_field("class", "occ_target", info.num_classes),
          links.choice_field("edit_fill", "oe_fill", occ.FILLS[0], occ.FILLS),
          links.choice_field("cover", "oe_preset", next(iter(view.presets(h, w))),
                             view.presets(h, w)),
          links.choice_field("explain", "oe_method", methods[0], methods)]
links.restore(fields)

# ------------------------------------------------------------------------ sensitivity map
st.header("Occlusion sensitivity map")
_, pred = state.predict(info, inp)
c1, c2, c3, c4 = st.columns(4)
auto_p = occ.auto_patch(info.input_shape)
patch = c1.slider("Patch size (pixels)", 1, side, auto_p, key="occ_patch",
                  help="Side of the square that covers the image.")
if st.session_state.get("occ_stride", 1) > max(2, patch):  # a link's stride over a smaller
    st.session_state["occ_stride"] = max(2, patch)  # patch: keep the slider in its range
stride = c2.slider("Stride (pixels)", 1, max(2, patch), occ.auto_stride(info.input_shape, patch),
                   key="occ_stride", help="Step between two patch positions; 1 = every pixel.")
fill = c3.selectbox("Fill", occ.FILLS, key="occ_fill", format_func=lambda f: f"{f}: "
                    + occ.FILL_HELP[f].split(" (")[0], help="What the patch is filled with.")
classes = [None, *range(info.num_classes)]
target = c4.selectbox("Class", classes, key="occ_target",
                      format_func=lambda i: f"predicted: {info.class_names[pred]}" if i is None
                      else f"{i}: {info.class_names[i]}")
state.sync_link(fields, cannot_travel=("Your drawing on the editor's canvas",))
n_pass = view.n_passes(info, patch, stride)
if jobs.gate("Compute the occlusion map", "occ_go",
             (info.key, inp.digest, patch, stride, fill, target), auto=small, type="primary",
             hint=f"{n_pass} forward passes on a {h}x{w} model: this can take a while on a CPU."):
    with jobs.cancellable("occ_go"):
        try:
            res = cache.occlusion_map(info, inp.x, patch, stride, fill, target,
                                      f"Occluding {n_pass - 1} positions...")
        except ValueError as exc:
            st.error(f"Could not compute the occlusion map: {exc}. Fix: choose a smaller patch "
                     "or another class.")
            st.stop()
        view.show_occlusion_map(info, inp.raw, res)


# ------------------------------------------------------------------------ editor
st.header("Occlusion editor")
st.caption("Draw rectangles, circles or paint on the image to cover it. Hover over the canvas for "
           "its toolbar: Undo, Redo, the bin clears everything, and the Edit toggle lets you move, "
           "resize or delete a shape. Both images are explained for the same class: the "
           "original's prediction.")


@st.fragment
def editor() -> None:
    try:
        from streamlit_drawable_canvas import st_canvas
    except ImportError:  # pragma: no cover - in requirements.txt
        st.error("The editor needs streamlit-drawable-canvas: `pip install "
                 "streamlit-drawable-canvas`.")
        return
    e1, e2, e3, e4, e5 = st.columns(5)
    mode = e1.radio("Tool", ["rect", "circle", "freedraw"], key="oe_mode",
                    format_func={"rect": "Rectangle", "circle": "Circle",
                                 "freedraw": "Paint"}.get)
    brush = e2.slider("Brush width (paint)", 4, 80, 28, key="oe_brush")
    efill = e3.selectbox("Covered pixels become", occ.FILLS, key="oe_fill")
    preset = e4.selectbox("Also cover", list(view.presets(h, w)), key="oe_preset",
                          help="A ready-made region, added to what you draw.")
    method = e5.selectbox("Explanation", methods, key="oe_method", format_func=view.method_name)
    canvas_h, canvas_w = view.canvas_size(h, w)
    left, right = st.columns([1, 1])
    with left:
        result = st_canvas(fill_color="rgba(255, 140, 0, 0.6)",
                           stroke_width=brush if mode == "freedraw" else 2,
                           stroke_color="rgba(255, 140, 0, 0.9)",
                           background_image=view.canvas_background(inp.raw), drawing_mode=mode,
                           height=canvas_h, width=canvas_w,
                           key=f"oe_canvas_{info.key}_{inp.digest}", return_image_data=True,
                           update_streamlit=True)
    state.sync_link(fields, button=False)  # the editor's settings, in the address bar too
    mask = view.editor_mask(None if result is None else result.image_data, preset, h, w)
    with jobs.cancellable("oe_compare"):
        cmp = cache.compare_occlusion(info.key, info, inp.x, mask, efill, method, None)
        view.show_comparison(info, inp.raw, inp.label, cmp, method, right)


if not links.hidden("editor"):
    editor()

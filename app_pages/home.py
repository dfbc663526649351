"""Home: pick a model and an input image, see the prediction."""

import pandas as pd
import streamlit as st

from ui import cache, figures, links, state, widgets
from ui import network_view as view
from vizcore import data, models

st.title("vizcore: see inside a CNN")
widgets.note(
    "Pick a network and an image. The bar chart shows the network's confidence for its five most "
    "likely classes: it is what the model believes, not what is true, and a confident answer can "
    "still be wrong. The other pages show why the network decided as it did.")

info = state.current_model()
fields = [links.int_field("topk", "topk", 5, 2, min(20, info.num_classes)), links.choice_field(
    "dataset", "ds_name", "fashion_mnist" if info.input_shape[2] == 1 else "photos",
    ["fashion_mnist", "digits", "mnist", "photos"])]
links.restore(fields)

# ----------------------------------------------------------------------------------- model
st.header("1. The model")
left, right = st.columns([3, 2])
with left:
    if flash := state.flash():
        st.success(flash, icon=":material/check_circle:")
    st.markdown(f"**Current model:** {info.label}")
    h, w, c = info.input_shape
    st.caption(f"Input {h}x{w}x{c}, scaling '{info.scaling}', {info.num_classes} classes, "
               f"{info.model.count_params():,} parameters.")
    if info.kind == "vgg16-random":
        st.warning("These are random weights: VGG16's architecture without training. Its "
                   "predictions and explanations are meaningless; use it to explore shapes and "
                   "timings only.", icon=":material/warning:")
    if info.card:
        with st.expander("Model card", expanded=info.kind == "builtin"):
            st.table(pd.DataFrame(models.card_rows(info.card), columns=["", "value"])
                     .set_index(""))
with right:
    if cache.vgg16_weights_path() is None:
        with st.expander("Where is VGG16 (ImageNet)?"):
            st.markdown(models.vgg16_missing_message())
            if st.button("Try to download the weights now (528 MB)", key="vgg_dl"):
                try:
                    with st.spinner("Downloading VGG16 weights..."):
                        models.download_vgg16_weights(timeout=10)
                    cache.vgg16_weights_path.clear()
                    st.success("Downloaded. Pick 'VGG16 (ImageNet weights)' in the sidebar.")
                except data.DataUnavailable as exc:
                    st.error(f"{exc}")
    if not links.hidden("upload"):
        with st.expander("Use your own model (.keras or .h5)", icon=":material/upload_file:"):
            widgets.model_upload_form()
widgets.model_overview(info)

# ----------------------------------------------------------------------------------- input
st.header("2. The input image")
gray28 = info.input_shape[2] == 1
can_upload = not links.hidden("upload")
tab_names = ["Browse a dataset"] + (["Upload an image"] if can_upload else []) + (
    ["Draw"] if gray28 else [])
tabs = st.tabs(tab_names)

with tabs[0]:
    ds_keys = ["fashion_mnist", "digits", "mnist", "photos"]
    if not gray28:
        ds_keys = ["photos", "fashion_mnist", "digits", "mnist"]
    c1, c2, c3 = st.columns([2, 2, 3])
    ds_name = c1.selectbox("Dataset", ds_keys, format_func=data.DATASET_LABELS.get,
                           key="ds_name")
    try:
        ds = cache.load_dataset(ds_name)
    except data.DataUnavailable as exc:
        st.error(f"{exc}", icon=":material/cloud_off:")
        ds = None
    if ds is not None:
        st.caption(ds.source)
        cls = c2.selectbox("Class", [None, *range(len(ds.class_names))],
                           format_func=lambda i: "all classes" if i is None else ds.class_names[i],
                           key=f"ds_class_{ds_name}")
        idx = ds.indices_of(cls)
        pos = c3.slider("Image", 0, max(len(idx) - 1, 1), 0, key=f"ds_pos_{ds_name}_{cls}",
                        help="Position within the filtered images.")
        pos = min(pos, len(idx) - 1)
        strip = idx[pos : pos + 8]
        thumbs = st.columns(8)
        for col, i in zip(thumbs, strip):
            img = ds.extra["full"][i] if "full" in ds.extra else ds.images[i]
            col.image(figures.png(img, 84), caption=f"#{i} {ds.class_names[ds.labels[i]]}",
                      width="stretch")
            if col.button("Use", key=f"use_{ds_name}_{i}"):
                state.set_input({"kind": "dataset", "dataset": ds_name, "index": int(i)})
                st.rerun()

if can_upload:
    with tabs[1]:
        img_file = st.file_uploader("Image (PNG, JPEG, WebP, BMP)", key="img_upload", type=[
            "png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"])
        if img_file is not None:
            try:
                img = data.load_image(img_file.getvalue())
                if st.session_state.get("vz_last_upload") != (img_file.name, img_file.size):
                    st.session_state["vz_last_upload"] = (img_file.name, img_file.size)
                    state.set_input({"kind": "image", "image": img, "title": img_file.name})
                    st.rerun()
            except data.ImageError as exc:
                st.error(f"{img_file.name}: {exc} The previous image stays selected.",
                         icon=":material/broken_image:")
        if gray28:
            st.radio("Invert the image (the model expects a bright object on black)",
                     ["auto", "yes", "no"], horizontal=True, key=state.INVERT_KEY,
                     help="'auto' inverts photos with a light background.")

if gray28:
    with tabs[-1]:
        from ui.canvas import draw_input

        draw_input()

state.sync_link(fields)

# ----------------------------------------------------------------------------------- prediction
st.header("3. The prediction")
inp = state.current_input(info)
probs, _ = state.predict(info, inp)
c1, c2 = st.columns([1, 2])
c1.image(figures.png(inp.raw, 224), width=260)
c1.caption(f"Input: {inp.title}, as the model sees it ({inp.raw.shape[0]}x{inp.raw.shape[1]}).")
top = info.top_k(probs, 1)[0]
truth = "" if inp.label is None else (
    f" True class: **{info.class_names[inp.label]}**"
    + (" (correct)" if inp.label == top[0] else " (wrong)"))
c2.markdown(f"Predicted: **{top[1]}** ({top[2]:.1%}).{truth}")
kmax = min(20, info.num_classes)
k = c2.slider("How many classes", 2, kmax, min(5, kmax), key="topk") if kmax > 2 else kmax
c2.plotly_chart(figures.topk_figure(probs, info.class_names, k, inp.label), width="stretch")
st.caption(view.entropy_caption(probs))

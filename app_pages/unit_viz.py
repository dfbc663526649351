"""What a unit wants to see: activation maximization, animated, beside the dataset patches
that excite the same unit most."""

import numpy as np
import streamlit as st

from ui import state, widgets
from ui import unit_viz as uv
from vizcore import actmax, patches, render

st.title("What a unit wants to see")
widgets.note(
    "The left picture is synthetic: starting from noise, the input was changed step by step to "
    "make one unit fire as strongly as possible, so it shows a pattern the unit responds to. "
    "The right pictures are real: the dataset images that excite the same unit most, with the "
    "part the unit can see boxed. Neither is proof of what the unit 'means': the synthetic "
    "image depends on the regularisers, and the real patches only cover this dataset.")

info = state.current_model()
big = info.input_shape[0] > 64
layers = actmax.visualizable_layers(info)
if not layers:
    st.error("This model has no Conv2D or Dense layer to visualise. Fix: choose another model "
             "in the sidebar.")
    st.stop()
convs = info.layers_of(actmax.CONV_KINDS)

c1, c2 = st.columns([3, 2])
layer = c1.selectbox("Layer", layers, index=len(convs) - 1 if convs else 0, key="uv_layer",
                     help="Conv layers: a unit is a filter (its channel's mean is maximised). "
                          "Dense layers: a unit is one neuron; the last layer's units are "
                          "classes.")
kind = actmax.layer_kind(info.model, layer)
n = actmax.n_units(info.model, layer)
is_output = layer == info.model.layers[-1].name and n == info.num_classes
if is_output:
    unit = c2.selectbox("Class unit", list(range(n)), key=f"uv_unit_{layer}",
                        format_func=lambda i: f"{i}: {info.class_names[i]}")
else:
    unit = int(c2.number_input(f"{'Channel' if kind == 'conv' else 'Unit'} (0-{n - 1})", 0,
                               n - 1, 0, 1, key=f"uv_unit_{layer}"))

d = actmax.default_params(info)
mk = info.key
with st.expander("Optimisation settings (defaults tuned for this model)"):
    e1, e2, e3, e4 = st.columns(4)
    steps = e1.number_input("Steps", 1, 2000, d.steps, key=f"uv_steps_{mk}")
    lr = e1.number_input("Learning rate", 1e-5, 100.0, d.learning_rate, format="%.4g",
                         key=f"uv_lr_{mk}", help="Step size in model-input units.")
    opt = e1.selectbox("Optimizer", ["rmsprop", "adam"], key=f"uv_opt_{mk}")
    tv = e2.number_input("Total variation weight", 0.0, 100.0, d.tv_weight, format="%.4g",
                         key=f"uv_tv_{mk}", help="Smoothness: penalises differences between "
                                                 "neighbouring pixels.")
    nw = e2.number_input("Norm weight", 0.0, 100.0, d.norm_weight, format="%.4g",
                         key=f"uv_norm_{mk}", help="Penalises large pixel values.")
    norm_p = e2.selectbox("Norm order p", [1, 2], key=f"uv_p_{mk}")
    jitter = e3.number_input("Jitter (pixels)", 0, 64, d.jitter, key=f"uv_jitter_{mk}")
    rotate = e3.number_input("Rotation (degrees)", 0.0, 45.0, d.rotate, key=f"uv_rot_{mk}")
    scale = e3.number_input("Scale (± fraction)", 0.0, 0.5, d.scale, 0.01, key=f"uv_scale_{mk}")
    noise = e4.slider("Start noise", 0.0, 1.0, d.start_noise, key=f"uv_noise_{mk}",
                      help="Amplitude of the random start around mid-grey.")
    every = e4.number_input("Frame every k steps", 1, 100, d.frame_every, key=f"uv_every_{mk}")
    seed = e4.number_input("Seed", 0, 10_000, d.seed, key=f"uv_seed_{mk}")
    linear = e4.toggle("Linear head (dense)", d.linear, key=f"uv_linear_{mk}",
                       help="Maximise the pre-activation of a Dense unit (no ReLU/softmax).")
    project = e4.toggle("Keep in range each step", d.project, key=f"uv_project_{mk}")
params = actmax.AMParams(int(steps), float(lr), opt, float(tv), float(nw), int(norm_p),
                         int(jitter), float(rotate), float(scale), float(noise), int(every),
                         int(seed), bool(linear), bool(project))

# ------------------------------------------------------------------------ activation maximization
st.header("Activation maximization")
what = f"`{layer}` {'class ' + info.class_names[unit] if is_output else f'unit {unit}'}"
run_key = ("uv_run", mk, layer, unit, params)
if big and not st.session_state.get("uv_go") == run_key:
    st.caption(f"Each step on this {info.input_shape[0]}x{info.input_shape[1]} model costs "
               "about a second on a CPU, so the optimisation runs when you ask.")
    if st.button(f"Run {params.steps} steps for {what}", key="uv_go_btn", type="primary"):
        st.session_state["uv_go"] = run_key
        st.rerun()
    res = None
else:
    bar = st.progress(0.0, text=f"Optimising the input for {what}...")
    try:
        res = uv.maximize(mk, info, layer, unit, params,
                          progress=lambda f: bar.progress(min(f, 1.0),
                                                           text=f"Optimising... {f:.0%}"))
    except (ValueError, RuntimeError) as exc:
        res = None
        st.error(f"Activation maximization failed: {exc}. Fix: lower the learning rate or "
                 "the number of steps, or choose another layer.")
    bar.empty()

if res is not None:
    gain = res.final_value[0] - res.start_value[0]
    st.caption(f"{what}: activation {res.start_value[0]:.4g} at the random start → "
               f"**{res.final_value[0]:.4g}** after {params.steps} steps (+{gain:.4g}), "
               f"{res.seconds:.1f} s.")
    left, right = st.columns([1, 1])
    with left:
        st.plotly_chart(uv.animation_figure(res.frames[:, 0], res.frame_steps,
                                            "The input during optimisation"),
                        width="stretch", key="uv_anim")
    with right:
        label = "pre-activation" if res.kind == "dense" and params.linear else "activation"
        st.plotly_chart(uv.curve_figure(res.values[:, 0], res.frame_steps,
                                        float(res.start_value[0]), float(res.final_value[0]),
                                        label), width="stretch", key="uv_curve")
        name = f"{info.model.name}_{layer}_{unit}_actmax"
        st.download_button("Download the animation (GIF)",
                           uv.gif(res.frames[:, 0], res.frame_steps), f"{name}.gif",
                           "image/gif", key="uv_dl_gif", icon=":material/download:")
        widgets.downloads(name, render.upscale(res.images_uint8[0], 224), res.images[0],
                          key="uv_result")

# ------------------------------------------------------------------------ dataset patches
st.header("Dataset patches that excite this unit most")
if kind != "conv":
    st.info("Dataset patches are shown for conv channels, which look at one region of the "
            "image. Pick a conv layer above to see them.")
else:
    k = st.slider("Top-k images", 3, 16, 9, key="uv_k")
    images, data_key, source = uv.patch_images(mk, info.input_shape)
    rf = patches.receptive_field(info.model, layer)
    pbar = st.progress(0.0, text=f"Running {len(images):,} images through `{layer}` (once)...")
    try:
        peaks = patches.layer_peaks(info, layer, images, data_key,
                                    progress=lambda f: pbar.progress(min(f, 1.0)))
        top = patches.top_patches(info, peaks, images, unit, k)
    except ValueError as exc:
        top = None
        st.error(f"Could not compute the patches: {exc}. Fix: choose another conv layer.")
    pbar.empty()
    if top is not None:
        st.caption(f"{source}. A `{layer}` unit sees {rf.size[0]}x{rf.size[1]} input pixels "
                   f"(receptive field), neighbouring units are {rf.jump[0]} pixels apart. "
                   f"Each image counts once, at its strongest position; the pass took "
                   f"{peaks.seconds:.1f} s and is cached, so other channels are instant.")
        cols = min(k, 9 if not big else 4)
        s_col, p_col = st.columns([1, 3])
        with s_col:
            st.markdown("**Synthetic (above)**")
            if res is not None:
                st.image(render.upscale(res.images_uint8[0], 224), width="stretch",
                         caption=f"activation maximization of channel {unit}")
            else:
                st.caption("Run the optimisation above to compare.")
        with p_col:
            st.markdown("**Real: receptive-field crops, strongest first**")
            st.image(uv.tiles_image(top.crops, cols), width="stretch",
                     caption=" · ".join(f"#{i} ({v:.3g})" for i, v in
                                        zip(top.indices, top.values)))
            st.markdown("**Where in the image**")
            st.image(uv.tiles_image(top.boxed, cols), width="stretch")
        widgets.downloads(f"{info.model.name}_{layer}_{unit}_patches",
                          uv.tiles_image(top.crops, cols), top.crops, key="uv_patches")

# ------------------------------------------------------------------------ filter atlas
st.header("Filter atlas: early, middle and late conv layers")
if not convs:
    st.info("This model has no conv layers.")
else:
    a1, a2 = st.columns(2)
    n_filters = a1.slider("Filters per layer", 2, 16, 4 if big else 8, key="uv_atlas_n")
    a_steps = int(a2.number_input("Steps", 1, 2000, 10 if big else 100,
                                  key=f"uv_atlas_steps_{mk}"))
    a_params = actmax.AMParams(**{**params.as_dict(), "steps": a_steps})
    akey = ("uv_atlas", mk, n_filters, a_params)
    if big and st.session_state.get("uv_atlas_go") != akey:
        if st.button("Build the atlas", key="uv_atlas_btn"):
            st.session_state["uv_atlas_go"] = akey
            st.rerun()
        rows = None
    else:
        abar = st.progress(0.0, text="Building the atlas...")
        rows = uv.atlas(mk, info, n_filters, a_params,
                        progress=lambda f: abar.progress(min(f, 1.0),
                                                          text=f"Building the atlas... {f:.0%}"))
        abar.empty()
    if rows:
        st.caption("Each tile is the input that maximises one filter (same settings as above). "
                   "Early filters respond to edges and colours, deeper ones to textures and "
                   "parts, because they combine more of the image.")
        for row in rows:
            rf = patches.receptive_field(info.model, row.layer)
            st.markdown(f"**`{row.layer}`**: filters {row.units[0]}-{row.units[-1]}, receptive "
                        f"field {rf.size[0]}x{rf.size[1]} px")
            st.image(uv.tiles_image(row.images, len(row.images), 96 if not big else 160),
                     width="stretch")
        tiles = np.concatenate([r.images for r in rows])
        widgets.downloads(f"{info.model.name}_filter_atlas",
                          uv.tiles_image(tiles, n_filters), tiles, key="uv_atlas")

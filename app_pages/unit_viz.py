"""What a unit wants to see: activation maximization, animated, beside the dataset patches
that excite the same unit most."""

import streamlit as st

from ui import cache, jobs, links, state, widgets
from ui import unit_viz as view
from vizcore import actmax

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
d = actmax.default_params(info)
mk = info.key
fields = view.link_fields(info, layers, layers[len(convs) - 1 if convs else 0], d)
links.restore(fields, known=False)

c1, c2 = st.columns([3, 2])
layer = c1.selectbox("Layer", layers, index=len(convs) - 1 if convs else 0, key="uv_layer",
                     help="Conv layers: a unit is a filter (its channel's mean is maximised). "
                          "Dense layers: a unit is one neuron; the last layer's units are "
                          "classes.")
kind = actmax.layer_kind(info.model, layer)
n = actmax.n_units(info.model, layer)
is_output = layer == info.model.layers[-1].name and n == info.num_classes
fields.append(view.unit_field(info, layer))
links.restore(fields[-1:], known=fields)
if is_output:
    unit = c2.selectbox("Class unit", list(range(n)), key=f"uv_unit_{layer}",
                        format_func=lambda i: f"{i}: {info.class_names[i]}")
else:
    unit = int(c2.number_input(f"{'Channel' if kind == 'conv' else 'Unit'} (0-{n - 1})", 0,
                               n - 1, 0, 1, key=f"uv_unit_{layer}"))

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
state.sync_link(fields)
params = actmax.AMParams(int(steps), float(lr), opt, float(tv), float(nw), int(norm_p),
                         int(jitter), float(rotate), float(scale), float(noise), int(every),
                         int(seed), bool(linear), bool(project))

# ------------------------------------------------------------------------ activation maximization
st.header("Activation maximization")
what = f"`{layer}` {'class ' + info.class_names[unit] if is_output else f'unit {unit}'}"
res = None
if jobs.gate(f"Run {params.steps} steps for {what}", "uv_go_btn", (mk, layer, unit, params),
             auto=not big, hide_when_done=True, type="primary",
             hint=f"Each step on this {info.input_shape[0]}x{info.input_shape[1]} model costs "
                  "about a second on a CPU, so the optimisation runs when you ask."):
    with jobs.cancellable("uv_go_btn"):
        try:
            res = cache.maximize(info, layer, unit, params, f"Optimising the input for {what}...")
        except jobs.Cancelled:
            raise
        except (ValueError, RuntimeError) as exc:
            st.error(f"Activation maximization failed: {exc}. Fix: lower the learning rate or "
                     "the number of steps, or choose another layer.")
if res is not None:
    view.show_result(info, layer, unit, res, params, what)

# ------------------------------------------------------------------------ dataset patches
st.header("Dataset patches that excite this unit most")
if kind != "conv":
    st.info("Dataset patches are shown for conv channels, which look at one region of the "
            "image. Pick a conv layer above to see them.")
else:
    k = st.slider("Top-k images", 3, 16, 9, key="uv_k")
    with jobs.cancellable("uv_patches"):
        try:
            top, peaks, source = cache.unit_patches(info, layer, unit, k)
        except jobs.Cancelled:
            raise
        except ValueError as exc:
            st.error(f"Could not compute the patches: {exc}. Fix: choose another conv layer.")
        else:
            view.show_patches(info, layer, unit, k, top, peaks, source, res, big)

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
    if jobs.gate("Build the atlas", "uv_atlas_btn", (mk, n_filters, a_params), auto=not big,
                 hide_when_done=True):
        with jobs.cancellable("uv_atlas_btn"):
            rows = cache.atlas(info, n_filters, a_params)
            if rows:
                view.show_atlas(info, rows, n_filters, big)

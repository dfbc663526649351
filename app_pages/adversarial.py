"""Fooling the model: FGSM, targeted PGD, an adversarial patch and flip rates."""

import streamlit as st

from ui import cache, jobs, links, state, widgets
from ui import occlusion_view as view

st.title("Fooling the model")
widgets.note(
    "A tiny, carefully chosen change to every pixel can change the model's answer although a "
    "person sees the same picture: the perturbation is shown amplified because it is too faint "
    "to see. This shows that the model's decision can rest on patterns people do not use; it "
    "does not mean the model is useless on ordinary images, and these attacks need the model's "
    "gradients.")

info = state.current_model()
inp = state.current_input(info)
h, w, c = info.input_shape
small = min(h, w) <= 64
names = info.class_names
fields = [links.choice_field("explain", "adv_method", view.explain_options(info)[0],
                             view.explain_options(info)),
          links.int_field("eps", "adv_fgsm_eps", 8, 0, 64)]
links.restore(fields)
method = st.selectbox("Explanation shown before and after", view.explain_options(info),
                      key="adv_method", format_func=view.method_name,
                      help="Each image is explained for its own predicted class.")

# ------------------------------------------------------------------------ FGSM
st.header("FGSM: one step along the gradient's sign")
st.caption("Goodfellow, Shlens, Szegedy 2015 (arXiv:1412.6572): every pixel moves by epsilon, up "
           "or down, whichever raises the loss of the predicted class.")
eps_f = st.slider("Epsilon (grey levels out of 255)", 0, 64, 8, key="adv_fgsm_eps")
state.sync_link(fields)
with jobs.cancellable("adv_fgsm"):
    view.show_attack(info, inp, cache.attack(info.key, info, inp.x, "fgsm", eps_f, None, 1, 0),
                     method, "fgsm")

# ------------------------------------------------------------------------ PGD
st.header("Targeted attack (PGD) towards a chosen class")
st.caption("Madry et al. 2018 (arXiv:1706.06083): many small signed steps that make the chosen "
           "class more likely, each kept within epsilon of the original pixels.")
probs, _ = state.predict(info, inp)
p1, p2, p3, p4 = st.columns(4)
target = p1.selectbox("Target class", view.target_order(probs), key="adv_pgd_target",
                      format_func=lambda i: f"{i}: {names[i]} ({probs[i]:.1%} now)")
eps_p = p2.slider("Epsilon (grey levels)", 1, 64, 16, key="adv_pgd_eps")
steps = p3.slider("Steps", 1, 200, 40 if small else 10, key="adv_pgd_steps")
size = p4.slider("Step size (grey levels, 0 = auto)", 0.0, 16.0, 0.0, 0.5, key="adv_pgd_step",
                 help="Auto = 2.5 x epsilon / steps (Madry et al.).")
pgd_params = (eps_p, target, steps, size)
if jobs.gate("Run the attack", "adv_pgd_go", (info.key, inp.digest, pgd_params), auto=small,
             hint=f"{steps} forward + backward passes of a {h}x{w} model: press the button.",
             type="primary"):
    with jobs.cancellable("adv_pgd_go"):
        view.show_attack(info, inp, cache.attack(info.key, info, inp.x, "pgd", *pgd_params),
                         method, "pgd")

# ------------------------------------------------------------------------ patch
st.header("Adversarial patch")
st.caption("Brown et al. 2017 (arXiv:1712.09665): a small square, any colours, optimised over many "
           "images so that pasting it makes the model answer the target class. Here it stays at "
           "one place; its success rate is measured on images it was not optimised on.")
q1, q2, q3, q4, q5 = st.columns(5)
p_target = q1.selectbox("Target class", list(range(info.num_classes)), index=min(
    3, info.num_classes - 1), key="adv_patch_target", format_func=lambda i: f"{i}: {names[i]}")
p_size = q2.slider("Patch size (pixels)", 2, max(3, min(h, w) // 2), max(2, round(0.43 * h)),
                   key="adv_patch_size")
p_row = q3.slider("Row", 0, h - p_size, (h - p_size) // 2, key=f"adv_patch_row_{p_size}")
p_col = q4.slider("Column", 0, w - p_size, (w - p_size) // 2, key=f"adv_patch_col_{p_size}")
p_steps = q5.slider("Steps", 10, 500, 150 if small else 30, 10, key="adv_patch_steps")
n_train, n_test = (256, 300) if small else (16, 16)
patch_args = (p_target, p_size, (p_row, p_col), p_steps, n_train, n_test)
if jobs.gate("Optimise the patch", "adv_patch_go", (info.key, *patch_args), type="primary"):
    with jobs.cancellable("adv_patch_go"):
        try:
            pr, ds_name = cache.adversarial_patch(info, *patch_args)
        except ValueError as exc:
            st.error(f"Could not optimise the patch: {exc}. Fix: choose a smaller patch or "
                     "move it.")
            st.stop()
        view.show_patch(info, pr, ds_name, p_size, p_target)

# ------------------------------------------------------------------------ flip rates
st.header("How often does the prediction flip?")
st.caption("Untargeted FGSM and PGD against each image's own prediction, over a balanced sample "
           "of the dataset: the share of images whose predicted class changes, per epsilon.")
f1, f2, f3 = st.columns(3)
n_flip = f1.slider("Images", 10, 500, 100 if small else 10, 10, key="adv_flip_n")
attacks = f2.multiselect("Attacks", ["fgsm", "pgd"], ["fgsm", "pgd"], key="adv_flip_attacks")
pgd_steps = f3.slider("PGD steps", 1, 40, 10, key="adv_flip_steps")
flip_args = (n_flip, (0, 1, 2, 4, 8, 16, 32), tuple(attacks), pgd_steps)
if jobs.gate("Compute the table", "adv_flip_go", (info.key, *flip_args), type="primary",
             refuse=None if attacks else "Choose at least one attack."):
    with jobs.cancellable("adv_flip_go"):
        table, n_images, ds_name = cache.flip_rates(info, *flip_args)
        view.show_flip_rates(table, attacks, n_images, ds_name)

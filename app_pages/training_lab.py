"""Training lab: transfer learning against training from scratch; filters evolving in training.

Training runs inside the script run (Streamlit clears Keras's session and garbage-collects after
every script or fragment run, which starves a background training thread polled by a fragment
every second): a click on Train stores the request and re-runs the page with the controls
disabled; that run trains, updating the progress bar and the curves in place. A click on Stop
starts a new run at once (Streamlit's fast reruns) and stops the old one at its next progress
update; the core then marks the comparison stopped and tests both models. Whichever run pops
``tl_active`` from the session owns the comparison and saves it: the new run waits for the
test accuracies, the old one, finding it gone, ends quietly.
"""

import json
import time
from pathlib import Path

import streamlit as st

from ui import state, widgets
from ui import training_lab_view as view
from vizcore import data, evolution, models, render, transfer

st.title("Training lab")
widgets.note(
    "Two networks learn the same new task with the same data and time: one reuses the "
    "convolutional filters of a network already trained on Fashion-MNIST (frozen, with a new "
    "head), the other starts from random numbers. When the curves of the first rise faster, "
    "the reused filters were useful for this task; it does not mean they are the best possible "
    "filters, and with enough data the scratch network often catches up.")

ss = st.session_state
runs_dir = Path(ss.get("tl_runs_dir", transfer.USER_RUNS_DIR))
dirs = (transfer.SHIPPED_RUNS_DIR, runs_dir)
SIZES = [100, 500, "all"]


@st.cache_resource(show_spinner="Loading the task...", max_entries=3)
def _task(name: str, folder: str | None, image_size: int) -> transfer.TaskData:
    return transfer.load_task(name, folder=folder, image_size=image_size)


@st.cache_resource(show_spinner="Loading VGG16's ImageNet filters...", max_entries=2)
def _vgg_base(path: str, image_size: int):
    return transfer.vgg16_base(path, image_size)


@st.cache_data(show_spinner=False, max_entries=64)
def _saved(key: tuple) -> list[transfer.Comparison]:
    return transfer.list_comparisons(dirs)


@st.cache_data(show_spinner="Loading the recording...", max_entries=8)
def _recording(path: str, mtime: float) -> evolution.EvolutionRecording:
    return evolution.EvolutionRecording.load(path)


def _dir_key() -> tuple:
    return tuple(sorted((str(p), p.stat().st_mtime) for d in dirs if d.is_dir()
                        for p in d.glob("*.json")))


def _prepare(task: str, folder: str | None, image_size: int):
    """(task data, source model); raises DataUnavailable/ValueError/OSError with the cause."""
    td = _task(task, folder, image_size)
    if task == "folder":
        return td, _vgg_base(weights, image_size)
    return td, state.load_model("fashion_vgg").model


# ------------------------------------------------------------------------ transfer learning
st.header("Transfer learning versus training from scratch")
weights = state.vgg16_weights_path()
# a run interrupted by Stop (or any other click) left its comparison behind: save it once
interrupted = ss.pop("tl_active", None)
if interrupted is not None:
    with st.spinner("Stopping: testing both models on the test set..."):
        deadline = time.monotonic() + 120
        while not interrupted.finished and time.monotonic() < deadline:
            time.sleep(0.2)
    if interrupted.runs["transfer"].epochs_done:
        transfer.save_comparison(interrupted, runs_dir)
        ss["tl_last"] = interrupted
    else:
        ss["tl_note"] = "Stopped before the first epoch finished; nothing was saved."
training = ss.get("tl_pending") is not None
# while anything trains, every control is disabled: a click would start a new run and stop it
locked = training or ss.get("ev_pending") is not None
tasks = ["digits", "mnist"] + (["folder"] if weights else [])
c1, c2, c3, c4 = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
task = c1.selectbox("New task", tasks, format_func=transfer.TASKS.get, key="tl_task",
                    disabled=locked, help="Digits: 1,797 scikit-learn images (8x8 upsampled to "
                    "28x28), split 70/10/20 % into train/validation/test. MNIST: 59,000 / "
                    "1,000 / 2,000. Your folder: one sub-folder of images per class.")
size = c2.select_slider("Training images", SIZES, value=500, key="tl_size", disabled=locked,
                        help="A class-balanced subset; 'all' uses the whole training split.")
epochs = c3.slider("Epochs", 1, 20, 8, key="tl_epochs", disabled=locked)
fine_tune = c4.toggle("Fine-tune block 3", False, key="tl_finetune", disabled=locked,
                      help="Also train the transferred network's last convolutional block.")
folder, image_size = None, 224
if task == "folder":
    f1, f2 = st.columns([3, 1])
    folder = f1.text_input("Image folder on this machine (one sub-folder per class)",
                           key="tl_folder", placeholder="/path/to/images", disabled=locked)
    image_size = f2.select_slider("Image side", [64, 96, 128, 224], 128, key="tl_img_size",
                                  disabled=locked, help="Smaller trains much faster on a CPU.")
if not weights:
    st.caption("Comparing on a folder of your own images needs VGG16's ImageNet filters. "
               + models.vgg16_missing_message())
source_label = ("VGG16 (ImageNet) conv base" if task == "folder"
                else "the shipped Fashion-MNIST CNN's conv blocks (block1-3)")
st.caption(f"Transfer = {source_label}, frozen"
           + (" except its last block" if fine_tune else "")
           + ", plus a new dense head; scratch = the same architecture from random weights. "
           "Both get the same images, head initialisation, optimiser (Adam, 1e-3) and epochs.")

if st.button("Train both", type="primary", key="tl_train", disabled=locked,
             icon=":material/play_arrow:"):
    try:
        _prepare(task, folder, image_size)
    except data.DataUnavailable as exc:
        st.error(f"The data for this task is not available: {exc}")
    except (ValueError, OSError) as exc:
        st.error(f"Could not prepare the task: {exc}")
    else:
        ss["tl_pending"] = {"task": task, "size": size, "epochs": epochs,
                            "fine_tune": fine_tune, "folder": folder, "image_size": image_size}
        ss.pop("tl_note", None)
        st.rerun()  # re-run with the controls disabled, then train

saved = _saved(_dir_key())
labels = {c.path: c.title() for c in saved}
overlay_paths = st.multiselect("Lay saved runs over the curves", list(labels),
                               format_func=labels.get, key="tl_overlay", disabled=locked,
                               help="Faded lines, numbered [1], [2]... in the legend.")
overlays = [c for c in saved if c.path in overlay_paths]
status = st.container()
left, right = st.columns(2)
loss_slot, acc_slot = left.empty(), right.empty()
summary = st.container()


def _draw(comp: transfer.Comparison | None, total: int | None) -> None:
    loss_slot.plotly_chart(view.curves_figure(comp, overlays, "loss", total), width="stretch")
    acc_slot.plotly_chart(view.curves_figure(comp, overlays, "accuracy", total),
                          width="stretch")


if training:
    p = ss.pop("tl_pending")
    s1, s2 = status.columns([5, 1], vertical_alignment="center")
    bar = s1.progress(0.0, text="Building the two models...")
    s2.button("Stop", key="tl_stop", icon=":material/stop:",
              help="Stops after the current batch; both models are then tested and the run "
                   "is saved.")
    td, source = _prepare(p["task"], p["folder"], p["image_size"])
    if p["task"] == "folder":
        config = transfer.TransferConfig(p["task"], None if p["size"] == "all" else p["size"],
                                         p["epochs"], 16, fine_tune=p["fine_tune"],
                                         head_units=256, pooling="avg", source_model="vgg16",
                                         image_size=p["image_size"])
    else:
        config = transfer.TransferConfig(p["task"], None if p["size"] == "all" else p["size"],
                                         p["epochs"], fine_tune=p["fine_tune"])
    _draw(None, p["epochs"])

    kept = []

    def on_batch(comp: transfer.Comparison, frac: float) -> None:
        if not kept:  # what the next run saves if this one is interrupted (set once)
            ss["tl_active"] = comp
            kept.append(comp)
        bar.progress(frac, text=f"Training both models: {frac:.0%}")

    def on_epoch(comp: transfer.Comparison, kind: str, epoch: int) -> None:
        bar.progress(comp.progress, text=f"{kind}: epoch {epoch + 1} of {p['epochs']} done")
        _draw(comp, p["epochs"])

    try:
        comp = transfer.run_comparison(td, config, source, on_epoch=on_epoch,
                                       on_batch=view.throttled(on_batch))
    except (ValueError, MemoryError) as exc:
        ss.pop("tl_active", None)
        st.error(f"Training failed: {exc}. Fix: try fewer training images or a smaller image "
                 "side, and check the folder's images.")
        st.stop()
    if ss.pop("tl_active", None) is None:
        st.stop()  # a newer run (a click came in during the testing) took it over and saves it
    transfer.save_comparison(comp, runs_dir)
    ss["tl_last"] = comp
    st.rerun()  # enable the controls again and show the result

comp, total = ss.get("tl_last"), None
if ss.get("tl_note"):
    status.caption(ss["tl_note"])
if comp is None and saved:
    comp = saved[0]
    status.caption(f"Showing a saved run: {comp.title()}. Press Train both for your own.")
if comp is None:
    status.info("No run yet: choose a task and press **Train both**; the curves appear here "
                "epoch by epoch.")
else:
    total = comp.config["epochs"]
_draw(comp, total)
if comp is not None and comp.finished:
    t, s = comp.runs["transfer"], comp.runs["scratch"]
    m1, m2, m3 = summary.columns(3)
    m1.metric("Transfer: test accuracy", f"{t.test_accuracy:.1%}",
              f"{t.test_accuracy - s.test_accuracy:+.1%} vs scratch")
    m2.metric("Scratch: test accuracy", f"{s.test_accuracy:.1%}")
    m3.metric("Seconds per epoch (transfer / scratch)",
              f"{sum(t.epoch_seconds) / max(1, len(t.epoch_seconds)):.2f} / "
              f"{sum(s.epoch_seconds) / max(1, len(s.epoch_seconds)):.2f}")
    summary.caption(
        f"{comp.sizes.get('train')} training, {comp.sizes.get('val')} validation and "
        f"{comp.sizes.get('test')} test images ({comp.source}). Trained parameters: transfer "
        f"{t.trainable_params:,} (frozen {t.frozen_params:,}), scratch {s.trainable_params:,}."
        + (f" Stopped by you after {t.epochs_done} epoch(s) of transfer and {s.epochs_done} of "
           "scratch." if comp.stopped else "")
        + (f" Saved as `{Path(comp.path).name}`." if comp.path else ""))
    summary.download_button("Download this run (JSON)", json.dumps(comp.to_dict(), indent=1),
                            Path(comp.path or "run.json").name, "application/json",
                            key="tl_dl_json", icon=":material/download:", on_click="ignore")

# ------------------------------------------------------------------------ evolution
st.header("Filters evolving over training")
st.caption("The small default CNN trained from random weights on Fashion-MNIST; after every "
           "epoch we kept its first-layer filters, a few feature maps of one fixed image, and "
           "the image that most excites a few units (activation maximization, the same random "
           "start every epoch). Move the slider to watch them take shape.")
if "ev_new" in ss:
    ss["ev_rec"] = ss.pop("ev_new")
ev_pending = ss.get("ev_pending")
ev_busy = locked
paths = [str(p) for p in evolution.list_recordings(dirs)]
if not paths:
    st.info("No recording yet: record one below (about a minute).")
else:
    if ss.get("ev_rec") not in paths:
        ss["ev_rec"] = paths[0]
    rec_path = st.selectbox("Recording", paths, key="ev_rec", disabled=ev_busy,
                            format_func=lambda p: ("shipped: " if Path(p).parent
                                                   == transfer.SHIPPED_RUNS_DIR else "")
                            + _recording(p, Path(p).stat().st_mtime).title())
    rec = _recording(rec_path, Path(rec_path).stat().st_mtime)
    n = rec.num_snapshots
    s = st.select_slider("Epoch", list(range(n)), value=n - 1, key=f"ev_epoch_{n}",
                         disabled=ev_busy,
                         format_func=lambda e: "random weights" if e == 0 else f"after epoch {e}")
    top = rec.class_names[int(rec.probs[s].argmax())]
    st.caption(f"{'Random initial weights' if s == 0 else f'After epoch {s}'}: validation "
               f"accuracy {rec.history['val_accuracy'][s]:.1%}, first-layer kernels "
               f"{rec.kernel_change()[s]:.0%} away from their start, the fixed image is "
               f"called **{top}** ({rec.probs[s].max():.0%}).")
    st.plotly_chart(view.evolution_curve(rec, s), width="stretch", key="ev_curve")
    k1, k2 = st.columns([3, 1])
    with k1:
        st.subheader("First-layer filters")
        st.image(view.kernels_image(rec, s), width="stretch",
                 caption=f"{len(rec.kernels[s])} kernels of {rec.first_layer} (grey = 0, "
                         "each scaled on its own)")
    with k2:
        st.subheader("Fixed image")
        st.image(render.upscale(rec.fixed_image, 200), width="stretch",
                 caption=f"true: {rec.class_names[rec.fixed_label]}; predicted: {top} "
                         f"({rec.probs[s].max():.0%})")
    st.subheader("Feature maps of the fixed image")
    for layer in rec.maps:
        k = rec.maps[layer].shape
        st.image(view.maps_image(rec, layer, s), width="stretch",
                 caption=f"{layer}: first {k[1]} of its maps ({k[2]}x{k[3]}), each scaled on "
                         "its own")
    st.subheader("Activation maximization")
    st.image(view.actmax_tiles(rec, s), width=100,
             caption=[f"{lbl} ({sc:.2f})" for (_, _, lbl), sc in zip(rec.units,
                                                                    rec.actmax_scores[s])])
    st.caption("Each image is what the unit responds to most (its score in brackets), found by "
               "gradient ascent from the same noise every epoch: at random weights it is noise, "
               "as training goes on it becomes strokes, textures and garment parts. It shows "
               "what excites a unit, not what the unit is 'for'.")
    widgets.downloads(f"kernels_epoch{s}", view.kernels_image(rec, s), rec.kernels[s],
                      key="ev_kernels")

with st.expander("Record a new run", expanded=ev_pending is not None):
    r1, r2 = st.columns(2)
    ev_epochs = r1.slider("Epochs", 1, 15, 5, key="ev_epochs", disabled=ev_busy)
    ev_size = r2.select_slider("Training images", [500, 2000, 6000, 12000], 2000, key="ev_size",
                               disabled=ev_busy)
    if st.button("Record", key="ev_record", disabled=ev_busy,
                 icon=":material/fiber_manual_record:",
                 help="Trains from scratch for the chosen epochs (about 5-10 s per epoch of "
                      "2,000 images) and saves the recording."):
        ss["ev_pending"] = {"epochs": ev_epochs, "size": ev_size}
        st.rerun()
    if ev_pending is not None:
        p = ss.pop("ev_pending")
        e1, e2 = st.columns([5, 1], vertical_alignment="center")
        bar = e1.progress(0.0, text="Starting...")
        e2.button("Stop", key="ev_stop", icon=":material/stop:",
                  help="Cancels the recording (nothing is saved).")
        try:
            rec = evolution.record_evolution(
                p["epochs"], p["size"],
                on_progress=view.throttled(lambda f, m: bar.progress(f, text=m)))
        except data.DataUnavailable as exc:
            st.error(f"Fashion-MNIST is not available: {exc}")
            st.stop()
        ss["ev_new"] = str(rec.save(runs_dir))
        st.rerun()

"""Training lab: transfer learning against training from scratch; filters evolving in training.

Both trainings run inside the script run with a Stop button, following the protocol of
:class:`ui.jobs.Job` (while anything trains, every control is disabled).
"""

from pathlib import Path

import streamlit as st

from ui import cache, figures, jobs, state, widgets
from ui import training_lab_view as view
from vizcore import data, evolution, models, transfer

st.title("Training lab")
widgets.note(
    "Two networks learn the same new task with the same data and time: one reuses the "
    "convolutional filters of a network already trained on Fashion-MNIST (frozen, with a new "
    "head), the other starts from random numbers. When the curves of the first rise faster, "
    "the reused filters were useful for this task; it does not mean they are the best possible "
    "filters, and with enough data the scratch network often catches up.")
state.sync_link()  # the Training lab keeps its runs on the server: the link opens the page

ss = st.session_state
runs_dir = Path(ss.get("tl_runs_dir", transfer.USER_RUNS_DIR))
dirs = (transfer.SHIPPED_RUNS_DIR, runs_dir)
train_job, record_job = jobs.Job("tl"), jobs.Job("ev")

# ------------------------------------------------------------------------ transfer learning
st.header("Transfer learning versus training from scratch")
weights = cache.vgg16_weights_path()
view.save_interrupted(train_job, runs_dir)
locked = train_job.requested or record_job.requested
tasks = ["digits", "mnist"] + (["folder"] if weights else [])
c1, c2, c3, c4 = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
task = c1.selectbox("New task", tasks, format_func=transfer.TASKS.get, key="tl_task",
                    disabled=locked, help="Digits: 1,797 scikit-learn images (8x8 upsampled to "
                    "28x28), split 70/10/20 % into train/validation/test. MNIST: 59,000 / "
                    "1,000 / 2,000. Your folder: one sub-folder of images per class.")
size = c2.select_slider("Training images", [100, 500, "all"], value=500, key="tl_size",
                        disabled=locked,
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
st.caption(view.setup_caption(task, fine_tune))

if st.button("Train both", type="primary", key="tl_train", disabled=locked,
             icon=":material/play_arrow:"):
    try:
        view.prepare(task, folder, image_size, weights)
    except data.DataUnavailable as exc:
        st.error(f"The data for this task is not available: {exc}")
    except (ValueError, OSError) as exc:
        st.error(f"Could not prepare the task: {exc}")
    else:
        ss.pop("tl_note", None)
        train_job.request({"task": task, "size": size, "epochs": epochs, "fine_tune": fine_tune,
                           "folder": folder, "image_size": image_size})

saved = cache.saved_comparisons(dirs)
labels = {c.path: c.title() for c in saved}
overlay_paths = st.multiselect("Lay saved runs over the curves", list(labels),
                               format_func=labels.get, key="tl_overlay", disabled=locked,
                               help="Faded lines, numbered [1], [2]... in the legend.")
overlays = [c for c in saved if c.path in overlay_paths]
status = st.container()
left, right = st.columns(2)
loss_slot, acc_slot = left.empty(), right.empty()
summary = st.container()


def draw(comp: transfer.Comparison | None, total: int | None) -> None:
    for slot, metric in ((loss_slot, "loss"), (acc_slot, "accuracy")):
        slot.plotly_chart(figures.training_curves_figure(comp, overlays, metric, total),
                          width="stretch")


if train_job.requested:
    view.train(train_job, status, draw, runs_dir, weights)

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
draw(comp, total)
if comp is not None and comp.finished:
    view.summary(comp, summary)

# ------------------------------------------------------------------------ evolution
st.header("Filters evolving over training")
st.caption("The small default CNN trained from random weights on Fashion-MNIST; after every "
           "epoch we kept its first-layer filters, a few feature maps of one fixed image, and "
           "the image that most excites a few units (activation maximization, the same random "
           "start every epoch). Move the slider to watch them take shape.")
if "ev_new" in ss:
    ss["ev_rec"] = ss.pop("ev_new")
paths = [str(p) for p in evolution.list_recordings(dirs)]
if not paths:
    st.info("No recording yet: record one below (about a minute).")
else:
    if ss.get("ev_rec") not in paths:
        ss["ev_rec"] = paths[0]
    rec_path = st.selectbox("Recording", paths, key="ev_rec", disabled=locked,
                            format_func=view.recording_label)
    rec = cache.recording(rec_path)
    n = rec.num_snapshots
    s = st.select_slider("Epoch", list(range(n)), value=n - 1, key=f"ev_epoch_{n}",
                         disabled=locked,
                         format_func=lambda e: "random weights" if e == 0 else f"after epoch {e}")
    caption, top = view.snapshot_caption(rec, s)
    st.caption(caption)
    st.plotly_chart(figures.evolution_figure(rec, s), width="stretch", key="ev_curve")
    view.show_snapshot(rec, s, top)
    st.caption("Each image is what the unit responds to most (its score in brackets), found by "
               "gradient ascent from the same noise every epoch: at random weights it is noise, "
               "as training goes on it becomes strokes, textures and garment parts. It shows "
               "what excites a unit, not what the unit is 'for'.")
    widgets.downloads(f"kernels_epoch{s}", view.kernels_image(rec, s), rec.kernels[s],
                      key="ev_kernels")

with st.expander("Record a new run", expanded=record_job.requested):
    r1, r2 = st.columns(2)
    ev_epochs = r1.slider("Epochs", 1, 15, 5, key="ev_epochs", disabled=locked)
    ev_size = r2.select_slider("Training images", [500, 2000, 6000, 12000], 2000, key="ev_size",
                               disabled=locked)
    if st.button("Record", key="ev_record", disabled=locked,
                 icon=":material/fiber_manual_record:",
                 help="Trains from scratch for the chosen epochs (about 5-10 s per epoch of "
                      "2,000 images) and saves the recording."):
        record_job.request({"epochs": ev_epochs, "size": ev_size})
    if record_job.requested:
        view.record(record_job, runs_dir)

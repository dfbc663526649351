"""The Training lab's pieces: preparing a task, the transfer run and the recording as
:class:`ui.jobs.Job` s, the result summary, and the pictures of an evolution recording."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st

from ui import cache, jobs
from vizcore import data, evolution, features, render, transfer
from vizcore.evolution import EvolutionRecording
from vizcore.transfer import Comparison


def prepare(task: str, folder: str | None, image_size: int, weights: str | None):
    """(task data, source model); raises DataUnavailable/ValueError/OSError with the cause."""
    td = cache.transfer_task(task, folder, image_size)
    if task == "folder":
        return td, cache.vgg16_base(weights, image_size)
    return td, cache.load_model("fashion_vgg").model


def config_for(p: dict) -> transfer.TransferConfig:
    """The training configuration of a request made on the page."""
    size = None if p["size"] == "all" else p["size"]
    if p["task"] == "folder":
        return transfer.TransferConfig(p["task"], size, p["epochs"], 16, fine_tune=p["fine_tune"],
                                       head_units=256, pooling="avg", source_model="vgg16",
                                       image_size=p["image_size"])
    return transfer.TransferConfig(p["task"], size, p["epochs"], fine_tune=p["fine_tune"])


def setup_caption(task: str, fine_tune: bool) -> str:
    """What the two networks of a comparison are, and what they share."""
    source = ("VGG16 (ImageNet) conv base" if task == "folder"
              else "the shipped Fashion-MNIST CNN's conv blocks (block1-3)")
    return (f"Transfer = {source}, frozen" + (" except its last block" if fine_tune else "")
            + ", plus a new dense head; scratch = the same architecture from random weights. "
            "Both get the same images, head initialisation, optimiser (Adam, 1e-3) and epochs.")


def save_interrupted(job: jobs.Job, runs_dir: Path) -> None:
    """A run interrupted by Stop (or any other click) left its comparison behind: wait for the
    core to test both models, then save it once (or say why nothing was saved)."""
    comp = job.interrupted()
    if comp is None:
        return
    with st.spinner("Stopping: testing both models on the test set..."):
        jobs.wait_until(lambda: comp.finished, 120)
    if comp.runs["transfer"].epochs_done:
        transfer.save_comparison(comp, runs_dir)
        st.session_state["tl_last"] = comp
    else:
        st.session_state["tl_note"] = "Stopped before the first epoch finished; nothing was saved."


def train(job: jobs.Job, status, draw: Callable[[Comparison | None, int | None], None],
          runs_dir: Path, weights: str | None) -> None:
    """Run the requested comparison with live curves (``draw``), save it and rerun the page;
    stops the script when the run fails or a newer run took the comparison over."""
    p, bar = job.start("Building the two models...", "tl_stop", container=status,
                       stop_help="Stops after the current batch; both models are then tested "
                                 "and the run is saved.")
    with jobs.admitted("Training both models", show=lambda t: bar(0.0, t),
                       cancel=False):  # Stop is the Cancel of a training waiting for a slot
        comp = _train(job, p, bar, draw, weights)
    if job.release() is None:
        st.stop()  # a newer run (a click came in during the testing) took it over and saves it
    transfer.save_comparison(comp, runs_dir)
    st.session_state["tl_last"] = comp
    st.rerun()  # enable the controls again and show the result


def _train(job: jobs.Job, p: dict, bar, draw, weights: str | None) -> Comparison:
    td, source = prepare(p["task"], p["folder"], p["image_size"], weights)
    draw(None, p["epochs"])

    def on_batch(comp: Comparison, frac: float) -> None:
        job.keep(comp)  # what the next run saves if this one is interrupted
        bar(frac, f"Training both models: {frac:.0%}")

    def on_epoch(comp: Comparison, kind: str, epoch: int) -> None:
        bar(comp.progress, f"{kind}: epoch {epoch + 1} of {p['epochs']} done", force=True)
        draw(comp, p["epochs"])

    try:
        comp = transfer.run_comparison(td, config_for(p), source, on_epoch=on_epoch,
                                       on_batch=on_batch)
    except (ValueError, MemoryError) as exc:
        job.release()
        st.error(f"Training failed: {exc}. Fix: try fewer training images or a smaller image "
                 "side, and check the folder's images.")
        st.stop()
    return comp


def summary(comp: Comparison, container) -> None:
    """Test accuracies, seconds per epoch, sizes and a JSON download of a finished comparison."""
    t, s = comp.runs["transfer"], comp.runs["scratch"]
    m1, m2, m3 = container.columns(3)
    m1.metric("Transfer: test accuracy", f"{t.test_accuracy:.1%}",
              f"{t.test_accuracy - s.test_accuracy:+.1%} vs scratch")
    m2.metric("Scratch: test accuracy", f"{s.test_accuracy:.1%}")
    m3.metric("Seconds per epoch (transfer / scratch)",
              f"{sum(t.epoch_seconds) / max(1, len(t.epoch_seconds)):.2f} / "
              f"{sum(s.epoch_seconds) / max(1, len(s.epoch_seconds)):.2f}")
    container.caption(
        f"{comp.sizes.get('train')} training, {comp.sizes.get('val')} validation and "
        f"{comp.sizes.get('test')} test images ({comp.source}). Trained parameters: transfer "
        f"{t.trainable_params:,} (frozen {t.frozen_params:,}), scratch {s.trainable_params:,}."
        + (f" Stopped by you after {t.epochs_done} epoch(s) of transfer and {s.epochs_done} of "
           "scratch." if comp.stopped else "")
        + (f" Saved as `{Path(comp.path).name}`." if comp.path else ""))
    container.download_button("Download this run (JSON)", json.dumps(comp.to_dict(), indent=1),
                              Path(comp.path or "run.json").name, "application/json",
                              key="tl_dl_json", icon=":material/download:", on_click="ignore")


# --------------------------------------------------------------------------- evolution


def recording_label(path: str) -> str:
    """A recording's title, marked when it ships with the app."""
    shipped = Path(path).parent == transfer.SHIPPED_RUNS_DIR
    return ("shipped: " if shipped else "") + cache.recording(path).title()


def snapshot_caption(rec: EvolutionRecording, s: int) -> tuple[str, str]:
    """(what snapshot ``s`` shows in one sentence, the class it gives the fixed image)."""
    top = rec.class_names[int(rec.probs[s].argmax())]
    return (f"{'Random initial weights' if s == 0 else f'After epoch {s}'}: validation "
            f"accuracy {rec.history['val_accuracy'][s]:.1%}, first-layer kernels "
            f"{rec.kernel_change()[s]:.0%} away from their start, the fixed image is "
            f"called **{top}** ({rec.probs[s].max():.0%})."), top


def kernels_image(rec: EvolutionRecording, s: int, side: int = 360) -> np.ndarray:
    """The first-layer kernels of snapshot ``s`` as one grid (0 = mid-grey)."""
    tiles = features.kernel_tiles(rec.kernels[s])
    cols = min(16, len(tiles))
    return render.upscale(render.grid(tiles, cols=cols, normalize_each=False), side)


def maps_image(rec: EvolutionRecording, layer: str, s: int, side: int = 96) -> np.ndarray:
    """The recorded feature maps of ``layer`` at snapshot ``s`` in one row (each tile scaled on
    its own, viridis)."""
    maps = rec.maps[layer][s]
    return render.upscale(render.grid(maps, cols=len(maps), cmap="viridis"), side)


def actmax_tiles(rec: EvolutionRecording, s: int, side: int = 112) -> list[np.ndarray]:
    """One upscaled uint8 image per recorded unit at snapshot ``s``."""
    imgs = np.round(np.clip(rec.actmax[s], 0, 1) * 255).astype(np.uint8)
    return [render.upscale(im, side) for im in imgs]


def show_snapshot(rec: EvolutionRecording, s: int, top: str) -> None:
    """Filters, the fixed image, its feature maps and the act-max images of snapshot ``s``."""
    k1, k2 = st.columns([3, 1])
    with k1:
        st.subheader("First-layer filters")
        st.image(kernels_image(rec, s), width="stretch",
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
        st.image(maps_image(rec, layer, s), width="stretch",
                 caption=f"{layer}: first {k[1]} of its maps ({k[2]}x{k[3]}), each scaled on "
                         "its own")
    st.subheader("Activation maximization")
    st.image(actmax_tiles(rec, s), width=100,
             caption=[f"{lbl} ({sc:.2f})" for (_, _, lbl), sc in zip(rec.units,
                                                                    rec.actmax_scores[s])])


def record(job: jobs.Job, runs_dir: Path) -> None:
    """Record the requested evolution run, save it, select it and rerun the page."""
    p, bar = job.start("Starting...", "ev_stop", "Cancels the recording (nothing is saved).")
    try:
        with jobs.admitted("Recording a training run", show=lambda t: bar(0.0, t),
                           cancel=False):
            rec = evolution.record_evolution(p["epochs"], p["size"], on_progress=bar)
    except data.DataUnavailable as exc:
        st.error(f"Fashion-MNIST is not available: {exc}")
        st.stop()
    st.session_state["ev_new"] = str(rec.save(runs_dir))
    st.rerun()

"""Run a batch job block by block, on Ray or in this process, writing each block as it arrives.

Layout of ``OUT/<kind>/`` (``OUT`` can hold one job of each kind)::

    manifest.json            job, model hash, data, vizcore version, timings, skipped images
    part-00000.parquet       one row per image (and method); written last, so it marks the
    part-00000.maps.npy      block done (maps float16 (rows, H, W); embed: .features.npy)
    summary.json             score: ranking, per class, sanity check; embed: quality numbers
    points.parquet           embed: the 2-D coordinates of every image

Ray: Ray Data's ``map_batches`` over one row per pending block with :class:`BlockWorker` as a
callable class on an ``ActorPoolStrategy`` pool; results stream back to this process, which
writes them (so memory stays at a few blocks whatever the dataset's size, and the output needs no
shared disk). A rerun with the same job skips the blocks already written; Ctrl-C leaves the
written blocks in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vizcore.batch.work import BlockWorker, Job, ModelRef, block_size

VERSION = "0.3.0"
RAY_HINT = ("Ray is not installed. Install it with `pip install 'ray[data]==2.60.0'` "
            "(`make test` installs it into .venv), or run small jobs from the app's "
            "Dataset results page, which needs no Ray.")
#: Ray's object store: at most this share of the memory budget (Ray's default is 30 %).
OBJECT_STORE_SHARE = 0.1

#: Seconds the actors may take to start (load TensorFlow and the model) before the job fails.
ACTOR_START_TIMEOUT = 600

Progress = Callable[[int, int], None]


class JobError(RuntimeError):
    """The job cannot run as asked; the message says why and what to do."""


@dataclass
class Outcome:
    """What :func:`run` did: the manifest it wrote and where."""

    folder: Path
    manifest: dict
    blocks_done: int = 0
    blocks_total: int = 0
    failed: dict = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.manifest.get("status") == "complete"


def job_folder(out: Path, kind: str) -> Path:
    return Path(out) / kind


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    _atomic(path, lambda p: p.write_text(json.dumps(data, indent=2, default=_plain)))


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"cannot write {type(v).__name__} to JSON")


def part_path(folder: Path, block: int, suffix: str = "parquet") -> Path:
    return folder / f"part-{block:05d}.{suffix}"


def done_blocks(folder: Path) -> set[int]:
    """Blocks whose Parquet file exists (it is written after the block's arrays)."""
    return {int(p.name[5:10]) for p in folder.glob("part-*.parquet")}


def write_block(folder: Path, block: int, result: dict) -> None:
    """A block's arrays, then its rows (the rows file marks it done)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, arr in result["arrays"].items():
        _atomic(part_path(folder, block, f"{name}.npy"),
                lambda p, a=arr: np.save(open(p, "wb"), a))
    rows = dict(result["rows"], block=[block] * len(next(iter(result["rows"].values()), [])),
                node=[result["node"]] * len(next(iter(result["rows"].values()), [])))
    _atomic(part_path(folder, block), lambda p: pq.write_table(pa.table(rows), p))


def plan(n: int, size: int) -> list[tuple[int, int, int]]:
    """(block, start, stop) of consecutive blocks covering ``n`` images."""
    return [(b, s, min(s + size, n)) for b, s in enumerate(range(0, n, size))]


def prepare(job: Job, model: ModelRef, source, out: Path, overwrite: bool = False
            ) -> tuple[Path, dict]:
    """The job's folder and manifest: a new one, or the unfinished job there with the same
    identity (to resume). Raises :class:`JobError` when the folder holds a different job."""
    import shutil

    folder = job_folder(out, job.kind)
    ident = job.identity(model.digest())
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    mpath = folder / "manifest.json"
    if mpath.is_file():
        old = json.loads(mpath.read_text())
        if old.get("key") == key and not overwrite:
            return folder, old
        if not overwrite:
            raise JobError(
                f"{folder} holds another {job.kind} job (model {old['job']['model']}, data "
                f"{old['job']['data']}, methods {old['job'].get('methods')}). Choose another "
                "--out, or add --overwrite to replace it.")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"kind": job.kind, "key": key, "status": "running", "vizcore": VERSION,
                "job": asdict(job), "model_digest": ident["model_digest"],
                "source": source.to_dict(), "block_size": job.block_size,
                "created": time.strftime("%Y-%m-%d %H:%M:%S"), "timings": {}, "skipped": [],
                "failed_blocks": {}}
    write_json(mpath, manifest)
    return folder, manifest


def run(job: Job, source, out: Path, *, executor: str = "ray", workers: int = 0,
        address: str | None = None, progress: Progress | None = None,
        log: Callable[[str], None] = lambda s: None, overwrite: bool = False,
        model: ModelRef | None = None) -> Outcome:
    """Run (or resume) a job and write its folder.

    Args:
        job: The :class:`Job`; its ``block_size`` 0 is filled in from the model's input.
        source: A :class:`~vizcore.batch.sources.Source`.
        out: The output folder (the job writes ``out/<kind>/``).
        executor: ``"ray"`` (an embedded local Ray, or ``address``'s cluster) or ``"local"``
            (this process, one worker: for the app and small jobs).
        workers: Ray actors (0 = one per CPU of the local machine or the cluster).
        address: A running Ray cluster's address (``ray://`` or ``host:port``); None starts an
            embedded local Ray.
        progress: ``progress(images_done, images_total)`` after each written block.
        log: One-line messages (start-up, resume, failures).
        overwrite: Replace a different job already in the folder.
        model: The parsed ``job.model`` (parsed here when None).

    Returns:
        The :class:`Outcome`. KeyboardInterrupt propagates after the manifest says
        ``interrupted`` (the written blocks stay; a rerun resumes).
    """
    model = model or ModelRef.parse(job.model)
    t_start = time.perf_counter()
    info = model.load()
    if not job.block_size:
        job.block_size = block_size(job, tuple(info.input_shape))
    folder, manifest = prepare(job, model, source, out, overwrite)
    manifest["model_classes"] = list(info.class_names)
    job.block_size = manifest["block_size"] = manifest["job"]["block_size"]
    blocks = plan(len(source), job.block_size)
    done = done_blocks(folder) & {b for b, _, _ in blocks}
    pending = [b for b in blocks if b[0] not in done]
    total = len(source)
    done_images = sum(stop - start for b, start, stop in blocks if b in done)
    if done:
        log(f"resuming: {len(done)} of {len(blocks)} blocks already written in {folder}")
    outcome = Outcome(folder, manifest, len(done), len(blocks))
    timings = manifest["timings"]
    nodes: dict[str, int] = dict(manifest.get("nodes", {}))
    state = {"done": done_images, "first": None, "ready": [], "compute": 0.0}

    def accept(block: int, payload: bytes) -> None:
        res = pickle.loads(payload)
        state["ready"].append(res["ready"])
        state["last"] = time.time()
        if "failed" in res:
            outcome.failed[block] = res["failed"]
            log(f"block {block} failed: {res['failed']}")
            return
        write_block(folder, block, res)
        outcome.blocks_done += 1
        nodes[res["node"]] = nodes.get(res["node"], 0) + res["images"]
        state["compute"] += res["seconds"]
        state["done"] += res["images"]
        if state["first"] is None:
            state["first"] = time.perf_counter()
        if progress is not None:
            progress(state["done"], total)

    if progress is not None:
        progress(state["done"], total)
    status = "complete"
    t_blocks = time.perf_counter()
    try:
        if pending and executor == "local":
            worker = BlockWorker(job, source, model, warm=False)
            for block, start, stop in pending:
                accept(block, worker.run(block, start, stop))
        elif pending:
            timings.update(_run_ray(job, source, model, pending, workers, address, accept, log))
    except BaseException:  # Ctrl-C, a stopped app run, an error: the written blocks stay
        status = "interrupted"
        raise
    finally:
        now = time.perf_counter()
        timings["blocks"] = round(now - t_blocks - timings.get("ray_start", 0.0), 3)
        if state["ready"] and state["first"] is not None:
            # the work from the moment the last actor was ready (model loaded, functions
            # traced) to the last block, and the actors' start-up before it
            timings["after_ready"] = round(state["last"] - max(state["ready"]), 3)
            dispatched = timings.pop("dispatched", None)
            if dispatched is not None:
                timings["actors_start"] = round(max(state["ready"]) - dispatched, 3)
        timings["worker_compute"] = round(state["compute"], 3)
        manifest["nodes"] = nodes
        manifest["failed_blocks"] = {str(k): v for k, v in outcome.failed.items()}
        if outcome.failed and status == "complete":
            status = "incomplete"
        manifest["status"] = status if status != "complete" else "finishing"
        manifest["timings"] = timings
        write_json(folder / "manifest.json", manifest)
    if status == "complete":
        from vizcore.batch import finish

        t0 = time.perf_counter()
        manifest.update(finish.finish(job, folder, manifest, model, source, log))
        timings["finish"] = round(time.perf_counter() - t0, 3)
        timings["total"] = round(time.perf_counter() - t_start, 3)
        manifest["status"] = "complete"
        write_json(folder / "manifest.json", manifest)
    return outcome


def _run_ray(job: Job, source, model: ModelRef, pending, workers: int, address: str | None,
             accept: Callable[[int, bytes], None], log) -> dict:
    """Ray Data over the pending blocks; returns the start-up timings."""
    try:
        import ray
    except ImportError:
        raise JobError(RAY_HINT) from None
    import logging
    import warnings

    from vizcore.engine import memory_limit

    timings = {}
    t0 = time.perf_counter()
    started_here = not ray.is_initialized()
    if started_here:
        root = str(Path(__file__).resolve().parents[2])
        env = {"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "3",
                            "PYTHONPATH": os.pathsep.join(
                                filter(None, [root, os.environ.get("PYTHONPATH")]))}}
        kwargs = dict(include_dashboard=False, logging_level=logging.ERROR,
                      log_to_driver=False, configure_logging=True)
        if address is None:
            cpus = os.cpu_count() or 1
            store = int(max(256 << 20, OBJECT_STORE_SHARE * memory_limit()))
            ray.init(num_cpus=cpus, object_store_memory=store, runtime_env=env, **kwargs)
        else:
            env = {"working_dir": root, "excludes": [".venv", ".git", "artifacts", ".cache",
                                                     "tests", "**/__pycache__"],
                   "env_vars": {"TF_CPP_MIN_LOG_LEVEL": "3"}}
            ray.init(address=address, runtime_env=env, **kwargs)
    timings["ray_start"] = round(time.perf_counter() - t0, 3)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        # one actor per CPU by default (here two one-thread actors and one two-thread actor
        # did 10,000 Grad-CAMs in the same time, the driver sharing the cores); on this
        # machine the CPUs left to each actor are its TensorFlow threads
        size = max(1, min(workers or cpus, cpus, len(pending)))
        threads = max(1, cpus // size) if address is None else 1
        log(f"Ray: {size} worker(s) on {len(ray.nodes())} node(s), {threads} TensorFlow "
            f"thread(s) each; {len(pending)} block(s) of up to {job.block_size} images")
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        # start every actor (model loaded, functions traced) before the first block: the work
        # spreads over all of them, and start-up and work are timed apart
        ctx.wait_for_min_actors_s = ACTOR_START_TIMEOUT
        items = [{"block": b, "start": s, "stop": e} for b, s, e in pending]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            # max_restarts is passed the only way Ray 2.60 takes it (a deprecated keyword)
            warnings.simplefilter("ignore", DeprecationWarning)
            # no actor restarts: a lost actor fails the job (a rerun resumes it), and Ray does
            # not warn that a restart could not rebuild the constructor's arguments
            results = ds.map_batches(
                BlockWorker, batch_size=1, num_cpus=1, max_restarts=0,
                compute=ray.data.ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=2),
                fn_constructor_kwargs={"job": job, "source": source, "model": model,
                                       "threads": threads})
        timings["dispatched"] = time.time()
        for batch in results.iter_batches(batch_size=None, batch_format="numpy",
                                          prefetch_batches=1):
            for block, payload in zip(batch["block"], batch["result"]):
                accept(int(block), payload)
    finally:
        if started_here:
            with contextlib.suppress(Exception):
                ray.shutdown()
    return timings

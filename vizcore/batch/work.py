"""One block of a batch job: what a Ray actor (or the in-process runner) computes.

A job is cut into blocks of consecutive images. :class:`BlockWorker` is the callable class Ray
Data's ``map_batches`` runs in each actor: its constructor sets TensorFlow's thread count, loads
the model and builds (traces) the compiled functions once; each call computes whole blocks and
returns each as one serialized result, so a block is written, resumed and counted as a unit
whatever Ray does with its rows.

Every map comes from :func:`vizcore.explain.explain_batch`, so it equals the map the app shows
for that image; every AUC from :func:`vizcore.explain.metrics.faithfulness_aucs`, the page's
metric code.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

KINDS = ("explain", "score", "embed")
#: Bytes of maps (float16) or features one block may hold; with the per-block cap below it sets
#: the block size: 1,024 images on 28x28 models, 64 for five maps on VGG16 at 224x224.
BLOCK_BYTES = 32 << 20
MAX_BLOCK = 1024
#: Score jobs: fewer images per block (each image costs 3 curves per method).
MAX_SCORE_BLOCK = 256
#: Inputs up to this many pixels warm up on a whole batch (see :meth:`BlockWorker._warm`).
WARM_FULL_BATCH_PIXELS = 64 * 64


@dataclass
class ModelRef:
    """A model a worker can load anywhere: a shipped key, ``vgg16``/``vgg16-random``, or a file
    whose bytes travel with the job (so cluster nodes need not see the driver's disk)."""

    spec: str
    data: bytes | None = field(default=None, repr=False)
    name: str = ""
    scaling: str | None = None
    _info: object = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:  # a Ray actor loads its own model
        return dict(self.__dict__, _info=None)

    @classmethod
    def parse(cls, spec: str, scaling: str | None = None) -> ModelRef:
        from vizcore import models

        if spec in models.BUILTIN or spec in ("vgg16", "vgg16-random"):
            return cls(spec, scaling=scaling)
        path = Path(spec).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"--model {spec!r} is neither a shipped model ({', '.join(models.BUILTIN)}, "
                "vgg16, vgg16-random) nor a model file")
        return cls(str(path.resolve()), path.read_bytes(), path.name, scaling)

    def digest(self) -> str:
        """A content hash: the file's bytes, or the shipped weights'."""
        from vizcore import models

        if self.data is not None:
            return models.content_digest(self.data)
        if self.spec in models.BUILTIN:
            path = models.MODELS_DIR / f"{models.BUILTIN[self.spec][0]}.keras"
            return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        if self.spec == "vgg16":
            weights = models.find_vgg16_weights()
            return f"vgg16:{weights.stat().st_size if weights else 'missing'}"
        return "vgg16-random:seed0"

    def load(self):
        """The :class:`~vizcore.models.ModelInfo` (files through the safe upload loader), loaded
        once per process: the driver's checks, block size, sanity check and in-process worker
        share it."""
        from vizcore import models

        if self._info is None:
            if self.data is not None:
                self._info = models.load_user_model(self.data, self.name, scaling=self.scaling)
            elif self.spec in models.BUILTIN:
                self._info = models.load_builtin(self.spec)
            else:
                self._info = models.load_vgg16("auto" if self.spec == "vgg16" else "random")
        return self._info


@dataclass
class Job:
    """Everything that decides a job's results (the manifest's identity) plus how to run it.

    Attributes:
        kind: ``"explain"``, ``"score"`` or ``"embed"``.
        model: The ``--model`` spec; data: the ``--data`` spec; limit: first N images only.
        methods: Registry keys (explain, score); params: parameters per method.
        layer: Conv layer for the CAM family (explain, score) or feature layer (embed).
        steps: Deletion/insertion steps (score).
        seed: Seed of samples (sanity check, projection fit sample, held-out set).
        batch_size: Images per compiled pass (capped by the memory budget).
        block_size: Images per block (0 = from :func:`block_size`); fixed once a job starts.
        sanity_sample: Images of the model-randomisation check (score).
        projections: ``tsne``/``umap`` (embed); fit_sample, heldout: their sample sizes.
    """

    kind: str
    model: str
    data: str
    limit: int | None = None
    methods: list[str] = field(default_factory=list)
    params: dict[str, dict] = field(default_factory=dict)
    layer: str | None = None
    steps: int = 20
    seed: int = 0
    batch_size: int = 256
    block_size: int = 0
    sanity_sample: int = 8
    projections: list[str] = field(default_factory=lambda: ["tsne", "umap"])
    fit_sample: int = 10_000
    heldout: int = 10_000

    def identity(self, model_digest: str) -> dict:
        """The fields that decide the results (not how many workers run them)."""
        keep = asdict(self)
        keep.pop("batch_size")
        keep["model_digest"] = model_digest
        if self.kind == "embed":
            for k in ("methods", "params", "steps", "sanity_sample"):
                keep.pop(k)
        else:
            for k in ("projections", "fit_sample", "heldout"):
                keep.pop(k)
            if self.kind == "explain":
                keep.pop("steps")
                keep.pop("sanity_sample")
        return keep


def block_size(job: Job, input_shape: tuple[int, int, int]) -> int:
    """Images per block: maps (or features) of one block within :data:`BLOCK_BYTES`, at most
    :data:`MAX_BLOCK` (:data:`MAX_SCORE_BLOCK` for scores), a multiple of 16."""
    h, w, _ = input_shape
    per_image = h * w * 2 * max(1, len(job.methods)) if job.kind == "explain" else h * w * 4
    cap = MAX_SCORE_BLOCK if job.kind == "score" else MAX_BLOCK
    return int(max(16, min(cap, BLOCK_BYTES // per_image) // 16 * 16))


def set_threads(n: int) -> None:
    """TensorFlow's (and OpenMP's) thread count for this process; Ray sets OMP_NUM_THREADS=1 in
    its workers, so each actor sets its own before TensorFlow starts."""
    os.environ["OMP_NUM_THREADS"] = str(n)
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(min(n, 2))
    except RuntimeError:  # already initialised in this process (the in-process runner)
        pass


def node_name() -> str:
    """This process's Ray node id (short), or the host name outside Ray."""
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()[:12]
    except ImportError:
        pass
    return socket.gethostname()


class BlockWorker:
    """Computes whole blocks of one job. Ray Data builds one per actor (``ActorPoolStrategy``);
    the in-process runner builds one.

    Args:
        job: The :class:`Job`.
        source: The :class:`~vizcore.batch.sources.Source` (its pixels travel with it).
        model: The :class:`ModelRef`.
        threads: TensorFlow threads for this worker (0 = leave as is).
        warm: Trace (and build kernels) before the first block, so that start-up and work are
            timed apart (Ray actors); the in-process runner skips it.
    """

    def __init__(self, job: Job, source, model: ModelRef, threads: int = 0,
                 warm: bool = True) -> None:
        if threads:
            set_threads(threads)
        from vizcore import explain  # noqa: F401  (registers the methods)

        self.job, self.source = job, source
        self.info = model.load()
        self.node = node_name()
        if warm:
            self._warm()
        self.ready = time.time()

    def _warm(self) -> None:
        """Trace every compiled function before the first block is timed: on one full batch for
        small inputs (oneDNN builds its kernels per batch shape: the first 256-image batch of
        Grad-CAM on the 28x28 CNN took 2.5 s more than the others), on one image for big inputs
        and for scores (whose warm-up would cost real work)."""
        h, w, _ = self.info.input_shape
        n = self.job.batch_size if h * w <= WARM_FULL_BATCH_PIXELS and self.job.kind != "score" \
            else 1
        n = min(n, len(self.source))
        if n:
            self.compute(0, 0, n)

    def __call__(self, batch: dict) -> dict:
        """Ray Data's entry: rows ``block, start, stop`` -> one result row per block."""
        out = [self.run(int(b), int(s), int(e))
               for b, s, e in zip(batch["block"], batch["start"], batch["stop"])]
        return {"block": np.asarray(batch["block"]), "result": np.asarray(out, dtype=object)}

    def run(self, block: int, start: int, stop: int) -> bytes:
        """One block, pickled: ``{"rows": columns, "arrays": {...}, "node", "ready",
        "seconds"}``, or ``{"failed": message}`` when the block itself failed (then the block is
        not written and a rerun tries it again)."""
        t0 = time.perf_counter()
        try:
            rows, arrays = self.compute(block, start, stop)
            res = {"rows": rows, "arrays": arrays}
        except Exception as exc:  # noqa: BLE001  (reported per block, never fatal to the job)
            res = {"failed": f"{type(exc).__name__}: {exc}"}
        res.update(node=self.node, ready=self.ready, seconds=time.perf_counter() - t0,
                   images=stop - start)
        return pickle.dumps(res, protocol=5)

    # -- the three kinds
    def compute(self, block: int, start: int, stop: int) -> tuple[dict, dict]:
        """(row columns, arrays) of images ``start..stop`` of the source."""
        raw, pos, errors = self.source.load(np.arange(start, stop), self.info)
        rows, arrays = getattr(self, f"_{self.job.kind}")(raw, pos)
        good = set(pos.tolist())
        err_pos = [p for p in range(start, stop) if p not in good]
        for p, message in zip(err_pos, errors):
            _append(rows, {"position": p, "id": str(self.source.ids[p]),
                           "label": int(self.source.labels[p]), "error": message})
        return rows, arrays

    def _base(self, raw: np.ndarray, pos: np.ndarray, probs: np.ndarray | None = None) -> dict:
        """Per-image columns every kind writes, and the model input (``probs`` when known)."""
        from vizcore.engine import get_engine

        info = self.info
        x = info.preprocess(raw).astype(np.float32) if len(raw) else np.zeros(
            (0, *info.input_shape), np.float32)
        if probs is None:
            probs = (get_engine(info).probabilities(x, self.job.batch_size) if len(x)
                     else np.zeros((0, info.num_classes), np.float32))
        top = np.argsort(-probs, axis=1)[:, :5]
        return {"x": x, "probs": probs, "columns": {
            "position": pos.tolist(),
            "id": [str(self.source.ids[p]) for p in pos],
            "label": self.source.labels[pos].tolist(),
            "predicted": probs.argmax(axis=1).tolist() if len(x) else [],
            "confidence": probs.max(axis=1).tolist() if len(x) else [],
            "top5": top.tolist(),
            "top5_p": np.take_along_axis(probs, top, axis=1).tolist(),
        }}

    def _maps(self, x: np.ndarray) -> dict[str, list]:
        from vizcore.explain import explain_batch

        return {m: explain_batch(self.info, x, m, layer=self.job.layer,
                                 batch_size=self.job.batch_size, **self.job.params.get(m, {}))
                for m in self.job.methods}

    def _per_method(self, raw, base, exps) -> tuple[dict, np.ndarray]:
        """One row per image and method (image columns repeated), and the maps (M, N, H, W)."""
        from vizcore.batch.analysis import disagreement, object_mask, outside_mass

        n = len(base["x"])
        maps = np.stack([[e.heatmap for e in exps[m]] for m in self.job.methods]) if n else \
            np.zeros((len(self.job.methods), 0, *self.info.input_shape[:2]), np.float32)
        mask = object_mask(raw) if self.source.dark_background else None
        dis = disagreement(maps) if n else np.zeros(0)
        methods = self.job.methods
        rows = {k: list(v) * len(methods) for k, v in base["columns"].items()}
        every = [e for m in methods for e in exps[m]]
        rows.update(
            method=[m for m in methods for _ in range(n)],
            target=[e.target for e in every],
            outside=np.concatenate([outside_mass(maps[mi], mask) if mask is not None
                                    else np.full(n, np.nan) for mi in range(len(methods))]
                                   ).tolist(),
            disagreement=np.tile(dis, len(methods)).tolist(),
            blank=[bool(e.stats.get("blank", False)) for e in every],
            seconds=[e.seconds for e in every],
            error=[""] * len(every))
        return rows, maps

    def _explain(self, raw, pos) -> tuple[dict, dict]:
        base = self._base(raw, pos)
        rows, maps = self._per_method(raw, base, self._maps(base["x"]))
        n = maps.shape[1]
        rows["map_row"] = [mi * n + i for mi in range(len(self.job.methods)) for i in range(n)]
        return rows, {"maps": maps.reshape(-1, *maps.shape[2:]).astype(np.float16)}

    def _score(self, raw, pos) -> tuple[dict, dict]:
        from vizcore.explain.metrics import faithfulness_aucs

        base = self._base(raw, pos)
        exps = self._maps(base["x"])
        rows, _ = self._per_method(raw, base, exps)
        aucs: dict[str, list] = {}
        for m in self.job.methods:
            for x, e in zip(base["x"], exps[m]):
                _append(aucs, faithfulness_aucs(self.info, x, e.heatmap, e.target,
                                                steps=self.job.steps,
                                                batch_size=self.job.batch_size))
        rows.update(aucs)
        return rows, {}

    def _embed(self, raw, pos) -> tuple[dict, dict]:
        from vizcore.embed.features import extract_features

        n = len(raw)
        if not n:
            rows = dict(self._base(raw, pos)["columns"], error=[], feature_row=[])
            return rows, {"features": np.zeros((0, 0), np.float32)}
        fs = extract_features(self.info, raw, [self.job.layer], batch_size=self.job.batch_size)
        base = self._base(raw, pos, fs.probs)
        rows = dict(base["columns"], error=[""] * n, feature_row=list(range(n)))
        return rows, {"features": next(iter(fs.values.values())).astype(np.float32)}


def _append(columns: dict[str, list], row: dict) -> None:
    """Append one row to a dict of columns (a column first seen here is padded with None)."""
    length = len(next(iter(columns.values()))) if columns else 0
    for k in row:
        columns.setdefault(k, [None] * length)
    for k, col in columns.items():
        col.append(row.get(k))


def check(job: Job, info) -> None:
    """Refuse a job that would fail in every block, before anything starts: an unknown or
    inapplicable method, an unknown parameter or value, a layer the model does not have.

    Raises:
        ValueError: naming the problem and the valid choices.
    """
    if job.kind not in KINDS:
        raise ValueError(f"unknown job kind {job.kind!r}; choose one of {', '.join(KINDS)}")
    if job.kind == "embed":
        from vizcore.embed.features import feature_layers

        layers = feature_layers(info.model)
        if job.layer is not None and job.layer not in layers:
            raise ValueError(f"the model has no feature layer {job.layer!r}; choose one of "
                             f"{', '.join(layers)}")
        return
    from vizcore.explain.base import _prepare

    if not job.methods:
        raise ValueError("no method given (--methods gradcam,saliency,...)")
    unknown = set(job.params) - set(job.methods)
    if unknown:
        raise ValueError(f"parameters given for {sorted(unknown)}, which are not in --methods")
    for m in job.methods:
        _prepare(info, info.input_shape, m, None, job.layer, job.params.get(m, {}))

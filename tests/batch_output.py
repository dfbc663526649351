"""A tiny batch-job output folder (explain, score, embed on the first Fashion-MNIST test images),
built once per test session without Ray, for the Dataset results page's tests."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from pathlib import Path

DATA = "fashion-mnist:test"
MODEL = "fashion_vgg"
METHODS = ["gradcam", "saliency"]
N_SCORED = 60  # explain and score
N_EMBEDDED = 300  # embed: more images than were scored (their AUC colour is grey)

_lock = threading.Lock()
_built: dict[str, Path] = {}


def tiny_output() -> Path:
    """The folder (``explain/``, ``score/``, ``embed/``), built on first use."""
    with _lock:
        if "tiny" not in _built:
            out = Path(tempfile.mkdtemp(prefix="vizcore-dr-"))
            atexit.register(shutil.rmtree, out, True)
            build(out)
            _built["tiny"] = out
        return _built["tiny"]


def build(out: Path) -> None:
    from vizcore.batch import Job, open_source, run

    for job, n in ((Job("explain", MODEL, DATA, N_SCORED, methods=METHODS), N_SCORED),
                   (Job("score", MODEL, DATA, N_SCORED, methods=METHODS, sanity_sample=1),
                    N_SCORED),
                   (Job("embed", MODEL, DATA, N_EMBEDDED, projections=["tsne"], fit_sample=200,
                        heldout=50), N_EMBEDDED)):
        outcome = run(job, open_source(DATA, n), out, executor="local")
        assert outcome.complete, outcome.failed

"""Dataset-wide jobs: explain, score and embed every image of a dataset, on Ray.

``python -m vizcore batch explain|score|embed --model M --data D --out DIR`` (see
:mod:`vizcore.batch.cli`). A job is cut into blocks of images (:mod:`~vizcore.batch.work`),
run by Ray Data's ``map_batches`` on a pool of actors that each load the model once
(:mod:`~vizcore.batch.runner`), and written block by block as Parquet plus ``.npy`` shards with a
JSON manifest, so a rerun resumes. The maps come from the same
:func:`vizcore.explain.explain_batch` / :func:`~vizcore.explain.explain` code the app runs, the
AUCs from the page's metric code. :mod:`~vizcore.batch.results` reads an output folder without
Ray; :mod:`~vizcore.batch.analysis` ranks methods and finds "right for the wrong reason" images.
Ray is optional: the runner's ``executor="local"`` runs small jobs in this process (the app's
page does).
"""

from vizcore.batch.results import Results, ResultsError, open_results
from vizcore.batch.runner import JobError, Outcome, run
from vizcore.batch.sources import Source, SourceError, open_source
from vizcore.batch.work import Job, ModelRef

__all__ = ["Job", "JobError", "ModelRef", "Outcome", "Results", "ResultsError", "Source",
           "SourceError", "open_results", "open_source", "run"]

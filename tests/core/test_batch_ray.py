"""Batch jobs on Ray: an embedded local Ray, and a cluster of two nodes simulated on this machine
(Ray's own ``ray.cluster_utils.Cluster``) with the work spread over both; both give the results
of the in-process run.

Each Ray actor runs TensorFlow on one thread, this test process on every core. Grad-CAM's maps
agree to float16 storage; a saliency map's pixels can move where two activations in a max-pooling
window tie to the last bit (another thread count sums a convolution in another order and the
gradient takes the other branch), so saliency is compared by rank correlation and by the share
of pixels that agree.
"""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is installed by `make test` (requirements-dev.txt)")

from vizcore.batch import Job, open_results, open_source, run  # noqa: E402

DATA = "fashion-mnist:test"
N = 48


def job() -> Job:
    return Job("explain", "fashion_vgg", DATA, limit=N, methods=["gradcam", "saliency"],
               block_size=16)


@pytest.fixture(scope="module")
def local_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    assert run(job(), open_source(DATA, N), out, executor="local").complete
    return open_results(out)


def same_results(a, b) -> None:
    cols = ["position", "method", "predicted", "target", "label"]
    ra = a.rows["explain"].sort_values(["position", "method"]).reset_index(drop=True)
    rb = b.rows["explain"].sort_values(["position", "method"]).reset_index(drop=True)
    assert ra[cols].equals(rb[cols])
    np.testing.assert_allclose(ra["confidence"], rb["confidence"], atol=1e-5)
    from vizcore.explain.metrics import spearman

    for pos in range(0, N, 5):
        np.testing.assert_allclose(a.map_of(pos, "gradcam"), b.map_of(pos, "gradcam"),
                                   atol=2e-3)
        sa, sb = a.map_of(pos, "saliency"), b.map_of(pos, "saliency")
        assert spearman(sa, sb) > 0.95
        assert np.mean(np.abs(sa - sb) <= 2e-3) > 0.8


def test_embedded_ray_equals_the_in_process_run(tmp_path, local_result):
    messages = []
    out = run(job(), open_source(DATA, N), tmp_path, executor="ray", workers=2,
              log=messages.append)
    assert out.complete and out.blocks_done == 3
    assert not ray.is_initialized()  # the runner stops the Ray it started
    assert out.manifest["timings"]["ray_start"] > 0
    assert any("2 worker(s) on 1 node(s)" in m for m in messages)
    same_results(open_results(tmp_path), local_result)


def test_two_node_cluster_spreads_the_work_and_matches_one_node(tmp_path, local_result):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "object_store_memory": 150 << 20,
                                      "include_dashboard": False})
    cluster.add_node(num_cpus=1, object_store_memory=150 << 20)
    try:
        messages = []
        out = run(job(), open_source(DATA, N), tmp_path, executor="ray", workers=2,
                  address=cluster.address, log=messages.append)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    assert out.complete, out.failed
    assert any("on 2 node(s)" in m for m in messages)
    nodes = out.manifest["nodes"]
    assert len(nodes) == 2 and sum(nodes.values()) == N and min(nodes.values()) >= 16
    res = open_results(tmp_path)
    assert res.rows["explain"]["node"].nunique() == 2
    same_results(res, local_result)

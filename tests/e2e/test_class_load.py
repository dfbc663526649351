"""Three students at once, over Streamlit's own websocket protocol (no browser).

They open Home on a fresh server, pick the same dataset image, open Explain and ask for
Grad-CAM, all at the same time, so the first use of the model, its traces and the caches
happens concurrently. Every session must finish every step without an exception, and all of
them must receive the same Grad-CAM maps and the same top-5 (same image, same model).
"""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest

from benchmarks.st_client import RunResult, StreamlitClient, element_id, widget_key
from tests.e2e.browser import serve_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SESSIONS = 3
IMAGE = 3  # the 4th "Use" button of Home's thumbnail strip
#: Keyed elements whose content must be identical in every session.
SAME = ("xp_ov_gradcam", "xp_sg_gradcam", "xp_topk")


@pytest.fixture(scope="module")
def app_url():
    """This module's own server (the class must meet a fresh one, with cold caches)."""
    server = serve_app()
    try:
        url = server.__enter__()
    except (RuntimeError, TimeoutError, OSError) as exc:
        pytest.skip(f"the app could not start: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


def use_buttons(res: RunResult) -> list[str]:
    """Keys of Home's "Use" buttons, in page order."""
    keys = [(path, widget_key(element_id(el))) for path, el in res.elements.items()]
    return [k for _, k in sorted(keys) if k and k.startswith("use_")]


async def student(url: str) -> dict[str, RunResult]:
    runs: dict[str, RunResult] = {}
    async with StreamlitClient(url, timeout=80) as st:
        runs["home"] = await st.run()
        if not runs["home"].ok:
            return runs
        runs["pick"] = await st.run(press=[use_buttons(runs["home"])[IMAGE]])
        runs["explain"] = await st.run(page="explain")
        if runs["explain"].ok:
            runs["gradcam"] = await st.run(set={"xp_methods": ["Grad-CAM"]})
    return runs


def content(res: RunResult, key: str):
    el = res.element(key)
    assert el is not None, f"no element {key!r}; keys: {sorted(res.widgets())}"
    return json.loads(el.plotly_chart.spec)


def array(z) -> np.ndarray:
    """A plotly array: a nested list, or plotly's typed array ``{"dtype", "bdata", "shape"}``."""
    if isinstance(z, dict):
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"])
    return np.asarray(z, dtype=float)


async def _class(url: str) -> list[dict[str, RunResult]]:
    return await asyncio.gather(*(student(url) for _ in range(SESSIONS)))


def test_three_concurrent_sessions_get_the_same_gradcam(app_url):
    sessions = asyncio.run(_class(app_url))

    for i, runs in enumerate(sessions):
        assert list(runs) == ["home", "pick", "explain", "gradcam"], (
            f"session {i} stopped after {list(runs)}: "
            f"{[(k, r.status, r.errors) for k, r in runs.items()]}")
        for step, res in runs.items():
            assert res.ok, f"session {i}, {step}: {res.status} {res.errors}"
            assert res.exceptions == [], f"session {i}, {step}: {res.exceptions}"
            assert res.errors == [], f"session {i}, {step}: error boxes {res.errors}"
        assert runs["pick"].reruns >= 1  # the "Use" button reruns the page with the new input
        assert runs["gradcam"].element("xp_ov_smoothgrad") is None  # only Grad-CAM now

    first = sessions[0]["gradcam"]
    heat = content(first, "xp_ov_gradcam")
    z = [array(t["z"]) for t in heat["data"] if t.get("type") == "heatmap"]
    assert z and np.ptp(z[-1]) > 0, "a blank Grad-CAM map"
    explaining = [t for t in first.texts() if t.startswith("Explaining")]
    predicted = [t for t in sessions[0]["pick"].texts() if t.startswith("Predicted")]
    assert explaining and predicted
    for i, runs in enumerate(sessions[1:], start=1):
        for key in SAME:
            assert content(runs["gradcam"], key) == content(first, key), (
                f"session {i} got another {key} than session 0")
        assert [t for t in runs["gradcam"].texts() if t.startswith("Explaining")] == explaining
        assert [t for t in runs["pick"].texts() if t.startswith("Predicted")] == predicted

"""The occlusion editor in a real browser: the canvas is there, and drawing on it changes the
probabilities of the occluded image.

Served by ``streamlit run streamlit_app.py`` (the page at ``/occlusion``); set
``VIZCORE_E2E_URL`` to drive an app that is already running instead.
"""

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e.browser import CHROMIUM, browser_page, exceptions, serve_app, shoot, wait_idle

pytestmark = pytest.mark.e2e

if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)",
                allow_module_level=True)

COVERED = re.compile(r"(\d+)% of the pixels covered; p\((.+?)\) ([\d.]+)% → ([\d.]+)%")


@pytest.fixture(scope="module")
def app_url():
    if os.environ.get("VIZCORE_E2E_URL"):
        yield os.environ["VIZCORE_E2E_URL"].rstrip("/")
        return
    with serve_app() as url:
        yield url


def _covered(page) -> tuple[int, float]:
    text = page.locator('[data-testid="stMain"]').get_by_text("of the pixels covered").first
    m = COVERED.search(text.inner_text())
    assert m, text.inner_text()
    return int(m.group(1)), float(m.group(4))


def _canvas(page):
    """Bounding box of the drawing canvas (fabric.js's upper canvas takes the mouse)."""
    upper = page.locator('[data-testid="stMain"] canvas.upper-canvas').first
    upper.wait_for(timeout=60_000)
    upper.scroll_into_view_if_needed()
    return upper.bounding_box()


def test_canvas_is_present_and_drawing_changes_the_probabilities(app_url):
    """Draw a rectangle over the middle: the covered share and the occluded probability
    change; the canvas's Undo brings both back."""
    with browser_page() as page:
        page.goto(f"{app_url}/occlusion")
        wait_idle(page, heading="Occlusion")
        assert exceptions(page) == []
        share0, p0 = _covered(page)
        assert share0 == 0
        box = _canvas(page)
        assert box and box["width"] >= 250 and box["height"] >= 250
        # drag a rectangle over the middle of the image (rectangle is the default tool)
        x0, y0 = box["x"] + 0.2 * box["width"], box["y"] + 0.2 * box["height"]
        page.mouse.move(x0, y0)
        page.mouse.down()
        for i in range(1, 11):
            page.mouse.move(x0 + 0.06 * box["width"] * i, y0 + 0.06 * box["height"] * i)
        page.mouse.up()
        deadline = time.time() + 90
        share, p = share0, p0
        while time.time() < deadline and share == 0:
            time.sleep(1.0)
            try:
                share, p = _covered(page)
            except AssertionError:
                continue
        wait_idle(page, heading="Occlusion")
        share, p = _covered(page)
        assert exceptions(page) == []
        assert 20 <= share <= 50, f"the rectangle covers {share}% of the image"
        assert p != p0, "covering the middle of the image must change the probability"
        shoot(page, "occlusion_editor")
        # the canvas's own toolbar (shown on hover) undoes the rectangle
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.get_by_role("button", name="Undo").first.click(timeout=30_000)
        deadline = time.time() + 90
        while time.time() < deadline and share != 0:
            time.sleep(1.0)
            share, p = _covered(page)
        wait_idle(page, heading="Occlusion")
        assert _covered(page) == (0, p0)
        assert exceptions(page) == []

"""The Embeddings page in a real browser: both maps render with every point, and clicking a
point on the feature map shows that image (linked selection).

Served by ``serve_app`` (streamlit_app.py, URL path ``/embeddings``). To check a page served
another way (e.g. a development wrapper), set ``VIZCORE_EMBEDDINGS_URL`` to its full URL.
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

HEADING = "Embeddings"
# the page's default run (2,000 images, two t-SNE maps) can take a minute on a busy machine
TIMEOUT = 400


@pytest.fixture(scope="module")
def page_url():
    url = os.environ.get("VIZCORE_EMBEDDINGS_URL")
    if url:
        yield url
        return
    with serve_app() as base:
        yield f"{base}/embeddings"


def test_scatter_renders_and_a_click_selects_the_image(page_url):
    with browser_page() as page:
        page.goto(page_url)
        wait_idle(page, timeout=TIMEOUT, heading=HEADING)
        assert exceptions(page) == []
        plots = page.locator('[data-testid="stMain"] .js-plotly-plot')
        plots.nth(2).wait_for(timeout=60_000)  # the browser draws them after the script ends
        assert plots.count() >= 3  # pixel map, feature map, prediction bars (+ animation)
        points = plots.nth(1).locator(".scatterlayer .trace .points path")
        # every one of the 2,000 sampled images is drawn (plus the selection ring)
        assert points.count() >= 2000
        shoot(page, "embeddings")

        caption = page.locator('[data-testid="stMain"] [data-testid="stImageCaption"]').first
        before = caption.inner_text()
        assert re.match(r"#\d+: true class", before)
        points.nth(700).click(force=True)
        deadline = time.time() + 120
        while caption.inner_text() == before and time.time() < deadline:
            time.sleep(0.5)
        wait_idle(page, timeout=TIMEOUT, heading=HEADING)
        assert exceptions(page) == []
        after = caption.inner_text()
        assert after != before and re.match(r"#\d+: true class", after)
        # the ring is drawn on both maps at the clicked image
        rings = page.locator(".js-plotly-plot .legend .traces", has_text="selected")
        assert rings.count() == 2
        shoot(page, "embeddings_selected")

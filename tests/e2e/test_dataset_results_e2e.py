"""The Dataset results page in a real browser, opened by a link to a tiny batch output: the
ranking chart and the embedding are drawn, and clicking a dot shows that image and its maps."""

import re
import shutil
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.batch_output import METHODS, N_EMBEDDED, tiny_output
from tests.e2e.browser import CHROMIUM, exceptions, shoot, wait_idle

pytestmark = pytest.mark.e2e

if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)",
                allow_module_level=True)

HEADING = "Dataset results"
TIMEOUT = 240
SELECTED = re.compile(r"#(\d+) \(position (\d+)\): true class")


def selected_caption(page) -> str:
    loc = page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]',
                       has_text="(position ")
    return loc.first.inner_text() if loc.count() else ""


def test_link_opens_the_results_and_a_click_shows_an_image_with_its_maps(app_url, page):
    folder = tiny_output()
    page.goto(f"{app_url}/dataset_results?dir={quote(str(folder))}")
    wait_idle(page, timeout=TIMEOUT, heading=HEADING)
    assert exceptions(page) == []
    plots = page.locator('[data-testid="stMain"] .js-plotly-plot')
    plots.nth(2 + len(METHODS)).wait_for(timeout=60_000)  # drawn after the script ends
    # the ranking chart: a dot and an error bar per method in each panel (insertion minus
    # deletion, deletion, insertion)
    ranking = plots.nth(0)
    assert ranking.locator(".scatterlayer .trace .points path").count() == 3 * len(METHODS)
    assert ranking.locator(".errorbar").count() >= 3 * len(METHODS)
    # the embedding: every embedded image is a dot (plus the ring of the selected one)
    dots = plots.nth(1).locator(".scatterlayer .trace .points path")
    assert dots.count() >= N_EMBEDDED
    # twelve thumbnails of the sorted images, and the selected image's maps
    assert page.get_by_role("button", name="Inspect").count() == 12
    before = selected_caption(page)
    assert SELECTED.match(before), before

    # a click on a dot far from the selected one selects that image
    dots.nth(N_EMBEDDED // 2).click(force=True)
    deadline = time.time() + 120
    while selected_caption(page) == before and time.time() < deadline:
        time.sleep(0.5)
    wait_idle(page, timeout=TIMEOUT, heading=HEADING)
    assert exceptions(page) == []
    after = selected_caption(page)
    assert SELECTED.match(after) and after != before, (before, after)
    plots.nth(2 + len(METHODS)).wait_for(timeout=60_000)
    maps = page.locator('[data-testid="stMain"] .js-plotly-plot .heatmaplayer')
    assert maps.count() == len(METHODS)
    assert f"pos={SELECTED.match(after).group(2)}" in page.url
    shoot(page, "dataset_results")

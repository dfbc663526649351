"""Class mode in a real browser (issue 14): a view changed by hand reopens from its URL in a
fresh browser context with the same maps; both lessons' tours walk end to end (screenshots of
every step in artifacts/screenshots/); a hidden-controls link hides them; the downloaded report
opens offline with every figure embedded."""

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e.browser import CHROMIUM, SCREENSHOTS, exceptions, shoot, wait_idle
from vizcore import lessons

pytestmark = pytest.mark.e2e

if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)",
                allow_module_level=True)

_CHARTS = """() => Array.from(document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot'))
  .map(g => JSON.stringify((g.data || []).map(t => [t.type, t.z || null, t.x || null,
                                                   t.y || null])))"""


def charts(page) -> list[str]:
    """A content hash of every plotly chart's data on the page (in order)."""
    return [hashlib.sha1(s.encode()).hexdigest()[:12] for s in page.evaluate(_CHARTS)]


def charts_when_drawn(page, expected: list[str], seconds: float = 90) -> list[str]:
    """The page's chart hashes once they equal ``expected`` (or after ``seconds``):
    the browser draws plotly charts after the script run ends, later on a loaded machine."""
    deadline = time.time() + seconds
    got = charts(page)
    while got != expected and time.time() < deadline:
        time.sleep(0.5)
        got = charts(page)
    return got


def settle(page, heading: str) -> None:
    wait_idle(page, heading=heading)
    time.sleep(0.5)
    wait_idle(page, heading=heading)


def reopen(page, url: str, heading: str):
    """``url`` in a new browser context (no cookies, no session): its page."""
    ctx = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    fresh = ctx.new_page()
    fresh.goto(url)
    settle(fresh, heading)
    return fresh


def pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the selectbox labelled ``label``."""
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=False).first.click()


def nudge(page, label: str, key: str, times: int) -> None:
    """Move the slider labelled ``label`` by ``times`` keyboard steps."""
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text=label).first.locator(
        'input[type="range"], [role="slider"]').first
    thumb.focus()
    for _ in range(times):
        thumb.press(key)


def test_explain_view_reopens_from_its_link(app_url, page):
    page.goto(f"{app_url}/explain")
    settle(page, "Explain a prediction")
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Methods").first
    box.locator("input").click()
    box.locator("input").fill("Saliency (vanilla")
    box.locator("input").press("Enter")
    page.keyboard.press("Escape")
    settle(page, "Explain a prediction")
    pick(page, "Explain which class?", "Trouser")
    settle(page, "Explain a prediction")
    page.get_by_text("Method parameters").first.click()
    page.locator('[data-testid="stSlider"]').filter(has_text="noise").first.wait_for()
    nudge(page, "noise", "ArrowRight", 3)
    nudge(page, "Heatmap opacity", "ArrowLeft", 2)
    settle(page, "Explain a prediction")
    url = page.url
    assert "methods=" in url and "saliency" in url and "class=1" in url
    assert "smoothgrad.noise=" in url and "opacity=0.4" in url, url
    before = charts(page)
    text = page.get_by_text("Explaining").first.inner_text()
    fresh = reopen(page, url, "Explain a prediction")
    assert exceptions(fresh) == []
    assert fresh.get_by_text("Explaining").first.inner_text() == text
    assert charts_when_drawn(fresh, before) == before
    shoot(fresh, "link_explain_reopened")
    fresh.context.close()


@pytest.mark.parametrize("path,heading,change", [
    ("occlusion", "Occlusion", lambda p: (nudge(p, "Patch size", "ArrowLeft", 2),
                                          pick(p, "Fill", "blur"))),
    ("unit_viz", "What a unit wants to see", lambda p: pick(p, "Layer", "block2_conv1")),
    # PCA of 300 images: the same link mechanics as t-SNE's, without its minute of compute
    ("embeddings?method=pca&n=300", "Embeddings",
     lambda p: nudge(p, "Neighbours k", "ArrowLeft", 3)),
])
def test_other_views_reopen_from_their_links(app_url, page, path, heading, change):
    page.goto(f"{app_url}/{path}")
    settle(page, heading)
    change(page)
    settle(page, heading)
    url = page.url
    assert "?" in url, url
    before = charts(page)
    assert before, "no chart on the page"
    fresh = reopen(page, url, heading)
    assert exceptions(fresh) == []
    assert charts_when_drawn(fresh, before) == before
    assert fresh.url.split("?")[1] == url.split("?")[1]
    fresh.context.close()


@pytest.mark.parametrize("name", sorted(lessons.available()))
def test_walk_the_tour(app_url, page, name):
    lesson = lessons.load(name)
    page.goto(f"{app_url}/tour?lesson={name}")
    for i, step in enumerate(lesson.steps, start=1):
        settle(page, "Guided tour")
        page.get_by_text(f"Step {i} of {len(lesson.steps)}").first.wait_for(timeout=300_000)
        settle(page, "Guided tour")
        assert exceptions(page) == [], (name, step)
        assert f"step={i}" in page.url or i == 1
        page.get_by_text("Reveal").first.click()
        shoot(page, f"tour_{name}_{i:02d}_{step}")
        if i < len(lesson.steps):
            page.get_by_role("button", name="Next").click()
    assert (SCREENSHOTS / f"tour_{name}_01_{lesson.steps[0]}.png").stat().st_size > 10_000


def test_hidden_controls_link(app_url, page):
    page.goto(f"{app_url}/explain?hide=methods,params,checks&methods=saliency")
    settle(page, "Explain a prediction")
    assert exceptions(page) == []
    assert page.locator('[data-testid="stMultiSelect"]').count() == 0
    assert page.get_by_text("Method parameters").count() == 0
    assert page.get_by_text("How faithful is each map?").count() == 0
    page.locator("h3", has_text="Saliency").first.wait_for()  # the map is there
    shoot(page, "link_hidden_controls")


def test_report_opens_offline_with_every_figure(app_url, page, tmp_path):
    page.goto(f"{app_url}/explain")
    settle(page, "Explain a prediction")
    with page.expect_download(timeout=240_000) as dl:
        page.get_by_role("button", name="Download report (HTML)").click()
    path = tmp_path / "report.html"
    dl.value.save_as(path)
    html = path.read_text()
    assert html.count('<img src="data:image/png;base64,') >= 6
    ctx = page.context.browser.new_context(offline=True)
    offline = ctx.new_page()
    failed = []
    offline.on("requestfailed", lambda r: failed.append(r.url))
    offline.goto(path.as_uri())
    state = offline.evaluate("""() => Array.from(document.images).map(
        i => [i.complete, i.naturalWidth, i.alt])""")
    assert len(state) >= 6 and all(c and w > 0 for c, w, _ in state), json.dumps(state)
    assert failed == []
    offline.screenshot(path=str(SCREENSHOTS / "report_offline.png"), full_page=True)
    ctx.close()

"""Serving the app on a free port and driving it with Debian's headless Chromium (Playwright)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("VIZCORE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_app(timeout: float = 120.0):
    """Run ``streamlit run streamlit_app.py`` on a free port; yield its base URL."""
    port = free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", STREAMLIT_SERVER_HEADLESS="true",
               STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    log = open(ROOT / "artifacts" / f"streamlit-{port}.log", "w") if (
        ROOT / "artifacts").is_dir() else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {proc.returncode}")
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise TimeoutError(f"streamlit did not answer on {url} within {timeout} s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": width, "height": height})
        try:
            yield page
        finally:
            browser.close()


def wait_idle(page, timeout: float = 240.0, heading: str | None = None) -> None:
    """Wait until the page's script has finished: its title (h1) is shown and the app reports
    ``data-test-script-state=notRunning`` (with no spinner) for a second."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)
    sel = "h1" if heading is None else f'h1:has-text("{heading}")'
    page.locator('[data-testid="stMain"]').locator(sel).first.wait_for(timeout=timeout * 1000)
    deadline = time.time() + timeout
    quiet_since = None
    while time.time() < deadline:
        busy = (page.locator('[data-testid="stApp"][data-test-script-state="running"]').count()
                + page.locator('[data-testid="stSpinner"]').count())
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.time()
        elif time.time() - quiet_since > 1.0:
            return
        time.sleep(0.2)
    raise TimeoutError("the app kept running for more than the timeout")


def exceptions(page) -> list[str]:
    return [e.inner_text() for e in page.locator('[data-testid="stException"]').all()]


def shoot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # Streamlit scrolls inside its main container, so grow the viewport to the content first
    size = page.viewport_size
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
        " return m ? m.scrollHeight + 120 : document.body.scrollHeight; }")
    page.set_viewport_size({"width": size["width"], "height": min(max(height, 600), 8000)})
    time.sleep(0.8)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def upload_file(page, label: str, path: Path) -> None:
    """Set a file on the st.file_uploader whose label is ``label``."""
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text=label).first
    uploader.locator('input[type="file"]').set_input_files(str(path))


def load_model_file(page, app_url: str, model, path: Path) -> None:
    """Save ``model`` to ``path`` and load it through the Home page's model uploader."""
    model.save(path)
    page.goto(app_url)
    wait_idle(page, heading="vizcore")
    page.get_by_text("Use your own model").click()
    upload_file(page, "Model file", path)
    page.get_by_role("button", name="Load model").click()

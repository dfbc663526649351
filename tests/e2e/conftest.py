"""Browser-test fixtures: the app served on a free port and one headless Chromium page, each
once per test module (a module may override ``app_url``, e.g. to reuse a running server)."""

import pytest

from tests.e2e.browser import browser_page, serve_app


@pytest.fixture(scope="module")
def app_url():
    with serve_app() as url:
        yield url


@pytest.fixture(scope="module")
def page():
    with browser_page() as p:
        yield p

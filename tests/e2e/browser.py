"""A real browser for the dashboard's tests and bench: Debian's chromium (installed by
scripts/test, see scripts/lib/chromium.sh), driven by Playwright's driver (its own browser
downloads are not used)."""

import contextlib
import importlib.util
import shutil
from collections.abc import Iterator
from typing import Any

CHROMIUM = "/usr/bin/chromium"
# As root chromium needs --no-sandbox; the others keep it from reaching out to the network
# (there is none to reach here), which would only slow it.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]


def browser_missing() -> str:
    """Why no browser can be started here, or "" when one can."""
    if shutil.which(CHROMIUM) is None:
        return (
            f"no Chromium at {CHROMIUM}: scripts/test installs Debian's chromium (as root, "
            "with apt-get); it could not here"
        )
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return ""


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright's Browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()

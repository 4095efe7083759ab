"""Checking report pages in headless Chromium where one is installed (``make test`` installs it)."""

import re
import shutil
import subprocess

import pytest

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")


def dump_dom(page):
    """(the DOM after the page's scripts ran, Chromium's log); the time budget stays below the
    live page's 5 s refresh."""
    exe = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if exe is None:
        pytest.skip("no Chromium installed (make test installs chromium-headless-shell)")
    result = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=2000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


def check_in_browser(page):
    """(images decoded/total as the page's own script counts them, console errors)."""
    dom, log = dump_dom(page)
    counted = re.search(r'data-images="(\d+)/(\d+)"', dom)
    assert counted, "the page's script did not run"
    errors = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return int(counted[1]), int(counted[2]), errors


@pytest.fixture
def browser_check():
    """``browser_check(page)``: (images decoded, images, console errors) of a page in Chromium."""
    return check_in_browser


@pytest.fixture
def browser_dom():
    """``browser_dom(page)``: (the DOM after the page's scripts ran, Chromium's log)."""
    return dump_dom

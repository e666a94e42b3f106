"""report.html as a browser shows it: headless Chromium, no network, renders a real page.

Skipped when no `chromium` is installed (`apt-get install -y chromium` provides one).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

import pytest
from test_report import tiny_run

from harness.reports.markdown import write_reports

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

# No network, no background services: the page must render from the file alone.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-extensions", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]


def _chromium(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, timeout=timeout)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    return write_reports(tiny_run(tmp_path_factory.mktemp("shot"), n=16))[1]


def test_screenshot_is_a_real_render(page, tmp_path):
    png = tmp_path / "report.png"
    done = _chromium("--window-size=1280,2400", "--hide-scrollbars", f"--screenshot={png}", page.as_uri())
    assert png.exists(), done.stderr.decode(errors="replace")[-2000:]
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG")
    # A blank or broken page compresses to a few KB; text, tables and figures do not.
    assert len(data) > 100_000


def test_dom_renders_and_a_sample_link_opens_its_details(page):
    # Following a row's #anchor opens that sample's <details> in the browser, with no script.
    done = _chromium("--dump-dom", page.as_uri() + "#s-3")
    dom = done.stdout.decode(errors="replace")
    opened = re.findall(r'<details class="sample" open="">\s*<summary>#(\d+) ', dom)
    assert opened == ["3"], dom[-1000:]
    assert dom.count("<img ") >= 6 and "<script" not in dom.lower()

"""Headless Chromium for the dashboard tests (as tests/integration/test_report_browser.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def dump_dom(profile: Path, url: str, budget_ms: int = 5000) -> str:
    """The page's DOM after `budget_ms` of virtual time (its scripts have run and polled)."""
    done = chromium(profile, f"--virtual-time-budget={budget_ms}", "--dump-dom", url)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def attributes(dom: str, element_id: str) -> dict[str, str]:
    """The attributes of the element with this id, from the dumped DOM."""
    tag = re.search(rf'<[a-z0-9]+[^>]*\sid="{re.escape(element_id)}"[^>]*>', dom)
    assert tag is not None, f"#{element_id} not on the page"
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(0)))


def text_of(dom: str, element_id: str, cls: str) -> str:
    """The text of the first `.cls` inside the element with this id."""
    found = re.search(
        rf'id="{re.escape(element_id)}".*?class="{cls}"[^>]*>([^<]*)<', dom, flags=re.S
    )
    assert found is not None, f"#{element_id} .{cls} not on the page"
    return found.group(1)

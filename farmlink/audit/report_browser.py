"""A report page as a reader's browser sees it: loaded in headless Chromium (Debian's, /usr/bin/chromium), its DOM
after the load event, its charts and whether each drew a mark, the load time the page measured itself, what it
logged, and a screenshot. Used by the report's tests and by `farmlink bench audit` at a million events."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
HEADLESS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
"""How every page is loaded: no window, no network of the browser's own, nothing kept between runs but the profile."""


class BrowserError(RuntimeError):
    """Chromium did not load or draw the page: its exit code and the end of what it logged."""


class Dom(HTMLParser):
    """The body's attributes, the charts (svg.chart) with whether each has a drawn mark, the ids and the in-page links."""

    MARKS = {"rect", "path", "circle", "line"}

    def __init__(self, text: str):
        super().__init__()
        self.body: dict[str, str] = {}
        self.charts: dict[str, bool] = {}
        self.ids: list[str] = []
        self.links: list[str] = []
        self._chart: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        if attributes.get("id"):
            self.ids.append(attributes["id"])
        if tag == "a" and attributes.get("href", "").startswith("#"):
            self.links.append(attributes["href"][1:])
        if tag == "body":
            self.body = attributes
        elif tag == "svg" and "chart" in attributes.get("class", "").split():
            self._chart = attributes.get("data-chart", "")
            if self._chart in self.charts:
                raise BrowserError(f"two charts named {self._chart}")
            self.charts[self._chart] = False
        elif self._chart is not None and tag in self.MARKS:
            self.charts[self._chart] = True

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag == "svg":
            self._chart = None


def chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"chromium-profile-{page.stem}"
    return subprocess.run(
        [str(CHROMIUM), *HEADLESS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=180,
    )


def browse(page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """Chromium's DOM after the load event (real time, no virtual clock) and its log lines."""
    result = chromium(page, tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom")
    if result.returncode != 0 or "<body" not in result.stdout:
        raise BrowserError(f"chromium exited {result.returncode}: {result.stderr[-3000:]}")
    return result.stdout, result.stderr.splitlines()


def screenshot(page: Path, tmp_path: Path, height: int = 6_000) -> Path:
    shot = tmp_path / f"{page.stem}.png"
    result = chromium(page, tmp_path, f"--window-size=1280,{height}", f"--screenshot={shot}")
    if result.returncode != 0 or not shot.exists():
        raise BrowserError(f"chromium exited {result.returncode}: {result.stderr[-3000:]}")
    if shot.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n" or shot.stat().st_size <= 50_000:
        raise BrowserError(f"{shot}: not a drawn page ({shot.stat().st_size} bytes)")
    if os.environ.get("FARMLINK_REPORT_SHOTS"):
        Path(os.environ["FARMLINK_REPORT_SHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(os.environ["FARMLINK_REPORT_SHOTS"]) / shot.name)
    return shot


def page_console(lines: list[str], page: Path) -> list[str]:
    """Console messages of the page, and uncaught errors (Chromium 156 logs every level as INFO:CONSOLE: the page logs nothing)."""
    uri = page.resolve().as_uri()
    return [line for line in lines if "Uncaught" in line or ":CONSOLE" in line and (uri in line or "ERROR:CONSOLE" in line)]


@dataclass(frozen=True)
class Look:
    """What a reader's browser made of a report page."""

    charts: int
    drawn: int
    load_ms: int
    errors: str
    console: list[str]


def look(page: Path, directory: Path) -> Look:
    """The page loaded once in headless Chromium (its profile under `directory`)."""
    dom, stderr = browse(page, directory)
    parsed = Dom(dom)
    return Look(
        len(parsed.charts),
        sum(parsed.charts.values()),
        int(parsed.body.get("data-load-ms", "-1")),
        parsed.body.get("data-errors", "?"),
        page_console(stderr, page),
    )

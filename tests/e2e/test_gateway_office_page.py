"""The pairing office's page, served by the gateway at `/`, in headless Chromium against the real broker, database,
services and gateway (as `farmlink up` starts them): the demo's offers, fills, commitments, households and plans
drawn in Chinese and English, nothing fetched from anywhere but the gateway, no console error, and a fill published
during the test appearing on the open page without a reload (over the office's Server-Sent Events stream).

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: no extra dependency, no port);
tests/integration/test_audit_report.py drives the same /usr/bin/chromium from its command line.
"""

import asyncio
import base64
import json
import os
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from farmlink.audit.report_browser import CHROMIUM, HEADLESS
from farmlink.operations.gateway import gateway_port
from farmlink.producers.keyring import Keyring
from farmlink.producers.offline import simulate
from farmlink.producers.publisher import publish_lines
from farmlink.producers.scenario import parse_line, read_scenario
from services.gateway.office import office_token
from services.gateway.office_routes import CSP

pytestmark = pytest.mark.e2e

DEMO = Path(__file__).parents[2] / "farmlink" / "producers" / "scenarios" / "yanhe-2020.jsonl"
KEYS = Keyring(Path(tempfile.mkdtemp(prefix="farmlink-office-page-keys-")))
BOUND_S = 180.0
"""Generous: the page must get there; a loaded 2-core machine may be slow."""

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (apt-get install -y chromium)"
)


class Chromium:
    """Headless Chromium spoken to over the DevTools protocol on fds 3 and 4 (NUL-separated JSON)."""

    def __init__(self, profile: Path):
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()

        def wire() -> None:  # in the child: its fd 3 reads our messages, its fd 4 writes its own
            os.dup2(to_browser, 100)
            os.dup2(from_browser, 101)
            os.dup2(100, 3)
            os.dup2(101, 4)

        self.process = subprocess.Popen(
            [str(CHROMIUM), *HEADLESS, "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=wire,
            pass_fds=(3, 4),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._next = 0
        self._replies: dict[int, dict] = {}
        self._arrived = threading.Condition()
        self.events: list[dict] = []
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self) -> None:
        buffer = b""
        while chunk := os.read(self._read, 1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._arrived:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._replies[message["id"]] = message
                    else:
                        self.events.append(message)
                self._arrived.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = BOUND_S) -> dict:
        self._next += 1
        ask = self._next
        message = {"id": ask, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        with self._arrived:
            if not self._arrived.wait_for(lambda: ask in self._replies, timeout):
                raise TimeoutError(f"{method}: no answer within {timeout:.0f} s")
            reply = self._replies.pop(ask)
        assert "error" not in reply, (method, reply["error"])
        return reply["result"]

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=30)
        except Exception:
            self.process.kill()
        self.process.wait(timeout=60)
        os.close(self._write)


class Page:
    """One tab: evaluate, wait for a condition, capture the whole page."""

    def __init__(self, browser: Chromium, fresh: bool = False):
        """A tab; `fresh`: in a browser context of its own (no cookie of another tab)."""
        self.browser = browser
        context = {"browserContextId": browser.send("Target.createBrowserContext")["browserContextId"]} if fresh else {}
        target = browser.send("Target.createTarget", {"url": "about:blank", **context})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Runtime.enable", "Log.enable", "Page.enable", "Network.enable"):
            self.send(method)
        self.send("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False})

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def until(self, expression: str, timeout: float = BOUND_S):
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not within {timeout:.0f} s: {expression}")
            time.sleep(0.2)
        return value

    def screenshot(self, path: Path) -> Path:
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            },
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 30_000  # a drawn page, not a blank one
        return path

    def _events(self, *methods: str) -> list[dict]:
        return [e for e in self.browser.events if e.get("sessionId") == self.session and e["method"] in methods]

    def console_errors(self) -> list[str]:
        """Uncaught exceptions, console.error calls and the browser's own error entries (failed loads, blocked content)."""
        errors = [e["params"]["exceptionDetails"].get("text", "") for e in self._events("Runtime.exceptionThrown")]
        errors += [
            str(e["params"]["args"])
            for e in self._events("Runtime.consoleAPICalled")
            if e["params"]["type"] in ("error", "assert", "warning")
        ]
        errors += [
            e["params"]["entry"]["text"] for e in self._events("Log.entryAdded") if e["params"]["entry"]["level"] == "error"
        ]
        return errors

    def requested(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self._events("Network.requestWillBeSent")]


SNAPSHOT = """JSON.stringify({
  ready: document.body.dataset.ready, errors: document.body.dataset.errors, lang: document.documentElement.lang,
  h1: document.querySelector("h1").textContent, charts: [...document.querySelectorAll("svg[data-chart]")].map((c) => c.dataset.chart),
  drawn: [...document.querySelectorAll("svg[data-chart]")].filter((c) => c.querySelector("rect, circle, polygon")).length,
  fills: [...document.querySelectorAll("#fills tr[data-fill-id]")].map((r) => r.dataset.fillId),
  offers: document.querySelectorAll("#offers tbody tr").length, villages: document.querySelectorAll("#coverage tbody tr").length,
  plans: document.querySelectorAll("#plans tbody tr").length,
  pairings: [...document.querySelectorAll("#pairings tr[data-pairing-id]")].map((r) => r.dataset.pairingId),
  projects: [...document.querySelectorAll("#pairings tr[data-project-id]")].map((r) => r.dataset.projectId)})"""


async def until(check, timeout: float = BOUND_S, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout:.0f} s")
        await asyncio.sleep(every)
    return result


@needs_chromium
async def test_the_office_page_draws_the_demo_in_both_languages_and_a_new_fill_appears_without_a_reload(gateway_system, tmp_path):
    base = f"http://127.0.0.1:{gateway_port()}"
    token = office_token(gateway_system)
    lines = read_scenario(DEMO)
    expected_fills = len(simulate(lines))
    summary = await publish_lines(gateway_system.bootstrap, lines, keyring=KEYS)
    assert summary.rejected == [], summary.rejected

    async with httpx.AsyncClient(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as office:

        async def demo_in():
            view = (await office.get("/v1/office")).json()
            paid = sum(v["paid_fen"] for v in view["villages"])
            pairings_in = len(view["pairings"]) == 2 and len(view["projects"]) == 2
            return view if len(view["fills"]) == expected_fills and view["plans"] and paid and pairings_in else None

        view = await until(demo_in)
        async with httpx.AsyncClient(base_url=base, timeout=60) as anyone:
            assert (await anyone.get("/v1/office")).status_code == 401  # office data needs the office
            assert (await anyone.get("/v1/offers")).status_code == 200  # offers stay public
            page = await anyone.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
            assert page.headers["content-security-policy"] == CSP and '<html lang="zh">' in page.text

        commitments = {f"commitment-{c['commitment_id']}" for c in view["commitments"] if c["fills"]}
        assert commitments and any(c["activations"] and int(c["above_market_fen"]) > 0 for c in view["commitments"])
        expected_charts = {"coverage", "plans-area", "plans-income", *commitments}

        browser = Chromium(tmp_path / "chromium-profile")
        try:
            tab = Page(browser)
            tab.send("Network.setExtraHTTPHeaders", {"headers": {"Accept-Language": "zh-CN,zh;q=0.9"}})
            tab.send("Page.navigate", {"url": f"{base}/#office={token}"})
            tab.until("document.body && document.body.dataset.ready === '1' && document.querySelector('#fills') !== null")
            shown = json.loads(tab.evaluate(SNAPSHOT))
            assert shown["lang"] == "zh" and "沿河土家族自治县" in shown["h1"], shown[
                "h1"
            ]  # the log's "Yanhe", in the county's own name
            assert set(shown["charts"]) == expected_charts and shown["drawn"] == len(expected_charts), shown["charts"]
            assert len(shown["fills"]) == expected_fills and shown["offers"] == len(view["offers"])
            assert shown["villages"] == len(view["villages"]) and shown["plans"] == len(view["plans"])
            assert shown["pairings"] == ["tongxin-fengjia", "yuping-oiltea"]  # the demo's pairings, with their support
            assert sorted(shown["projects"]) == ["ketian-chili-2020", "yuping-oiltea-base"]
            yuping = next(p for p in view["pairings"] if p["pairing_id"] == "yuping-oiltea")
            assert yuping["support_fen"] == 350_000_000 and yuping["deliveries"] == 2
            print(
                f"\noffice page: {len(expected_charts)} charts, {expected_fills} fills, {shown['offers']} offers, "
                f"{shown['villages']} villages, {shown['plans']} plans; screenshot {tab.screenshot(tmp_path / 'office-zh.png')}"
            )

            tab.evaluate("document.querySelector('button[data-lang=en]').click()")
            tab.until("document.documentElement.lang === 'en' && document.querySelector('h1').textContent.includes('Yanhe')")
            tab.screenshot(tmp_path / "office-en.png")

            tab.evaluate("window.sameDocument = 'yes'")  # a reload would forget it
            offer = view["offers"][0]
            buyer = f"office-test-{uuid.uuid4().hex[:8]}"
            limit = max((f["unit_price_fen"] for f in view["fills"] if f["product"] == offer["product"]), default=1_000)
            order = {
                "order_id": f"{buyer}-order",
                "buyer_id": buyer,
                "product": offer["product"],
                "min_grade": offer["grade"],
                "quantity": offer["quantity_left"],
                "limit_price_fen": limit,
                "deliver_from": offer["available_from"],
                "deliver_to": offer["expires_on"],
                "regions": [],
            }
            more = [
                parse_line(
                    1, json.dumps({"type": "buyer.registered", "payload": {"buyer_id": buyer, "name": "Office test canteen"}})
                ),
                parse_line(2, json.dumps({"type": "order.placed", "payload": order})),
            ]
            published = time.monotonic()
            await publish_lines(gateway_system.bootstrap, more, keyring=KEYS)

            async def filled():
                fills = (await office.get("/v1/office")).json()["fills"]
                return next((f["fill_id"] for f in fills if f["buyer_id"] == buyer), None)

            fill_id = await until(filled)
            await asyncio.to_thread(tab.until, f"document.querySelector('#fills tr[data-fill-id=\"{fill_id}\"]') !== null")
            print(
                f"the new fill {fill_id} was on the open page {time.monotonic() - published:.1f} s after its order was published"
            )
            assert tab.evaluate("window.sameDocument") == "yes"  # no reload: the stream brought it
            assert tab.evaluate("document.body.dataset.lastFill") == fill_id
            tab.screenshot(tmp_path / "office-new-fill.png")

            assert tab.evaluate("document.body.dataset.errors") == ""
            assert tab.console_errors() == []
            outside = [url for url in tab.requested() if not url.startswith(base + "/")]
            assert outside == [], outside  # nothing but the gateway itself

            public = Page(browser, fresh=True)  # someone without the office token: the offers and a sign-in form
            public.send("Page.navigate", {"url": f"{base}/?lang=en"})
            public.until("document.body && document.body.dataset.ready === '1'")
            offers = (await office.get("/v1/offers")).json()["offers"]
            seen = json.loads(public.evaluate(SNAPSHOT))
            assert seen["offers"] == len(offers) and seen["fills"] == [] and seen["charts"] == [] and seen["villages"] == 0
            assert public.evaluate("document.querySelector('#sign-in') !== null")
            public.screenshot(tmp_path / "office-public.png")
            assert public.evaluate("document.body.dataset.errors") == "" and public.console_errors() == []
        finally:
            browser.close()

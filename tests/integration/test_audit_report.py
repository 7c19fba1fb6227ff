"""The audit's HTML report renders in a real headless browser: every chart drawn, no script error, nothing fetched.

Uses Debian's Chromium (/usr/bin/chromium, `apt-get install -y chromium`); skipped only when it is absent.
"""

import re
import subprocess
from collections import defaultdict
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from farmlink.audit.model import Finding
from farmlink.audit.report import ReportData, render_report, write_report

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (Debian: apt-get install -y chromium); the report is checked in a real browser"
)

COMMITMENT = "yuping-oiltea-2020"
ALL_CHARTS = {
    "volume-kg",
    "revenue",
    f"commitment-{COMMITMENT}",
    "income-histogram",
    "coverage-villages",
    "coverage-counties",
    "plans-area",
    "plans-income",
}


# ----------------------------------------------------------------------------- realistic inputs


def _fill(position, product, business_date, lot, coop, grade, outlet_kind, outlet_id, buyer, qty, unit_price, basis, shares,
          floor=None, market=None, as_of=None):
    revenue = int(Decimal(qty) * unit_price)
    whole = sum(shares.values())
    income = {h: revenue * w // whole for h, w in shares.items()}
    for h in list(shares)[: revenue - sum(income.values())]:
        income[h] += 1
    return {
        "fill_id": f"fill-{product}-{position}",
        "product": product,
        "position": position,
        "journal_seq": position + 10,
        "lot_id": lot,
        "cooperative_id": coop,
        "grade": grade,
        "outlet_kind": outlet_kind,
        "outlet_id": outlet_id,
        "buyer_id": buyer,
        "quantity": str(qty),
        "unit_price_fen": unit_price,
        "price_basis": basis,
        "revenue_fen": revenue,
        "household_income_fen": income,
        "floor_price_fen": floor,
        "market_price_fen": market,
        "price_as_of": as_of,
        "business_date": business_date,
    }


def yanhe_report_data(findings: list[Finding] | None = None) -> ReportData:
    """Two products over three months, Yuping's oil-tea floor commitment with floor and market fills, ten households."""
    fj = {"fj-01": 5, "fj-02": 3, "fj-03": 2}  # contributions to the lots
    tb = {"tb-01": 4, "tb-02": 3, "tb-03": 2, "tb-04": 1}
    fills = [
        _fill(1, "chili", "2020-09-08", "fj-chili-1", "fengjia-coop", "A", "order", "tongren-canteen-chili", "tongren-school-canteens", "1200", 650, "order_limit", fj),
        _fill(2, "chili", "2020-09-22", "fj-chili-2", "fengjia-coop", "B", "order", "dalong-supermarket-chili", "dalong-supermarket", "800", 600, "order_limit", fj),
        _fill(3, "chili", "2020-10-12", "fj-chili-3", "fengjia-coop", "A", "order", "tongren-canteen-chili", "tongren-school-canteens", "1500", 650, "order_limit", fj),
        _fill(1, "oil_tea_fruit", "2020-10-10", "tb-oiltea-1", "tangba-oiltea-coop", "B", "commitment", COMMITMENT, "yuping-oil-tea-co",
              "6000", 400, "floor", tb, floor=400, market=360, as_of="2020-10-01"),
        _fill(2, "oil_tea_fruit", "2020-10-20", "tb-oiltea-2", "tangba-oiltea-coop", "A", "commitment", COMMITMENT, "yuping-oil-tea-co",
              "2500.5", 400, "floor", tb, floor=400, market=380, as_of="2020-10-01"),
        _fill(3, "oil_tea_fruit", "2020-11-08", "tb-oiltea-3", "tangba-oiltea-coop", "B", "commitment", COMMITMENT, "yuping-oil-tea-co",
              "9000", 460, "market", tb, floor=400, market=460, as_of="2020-11-05"),
        _fill(4, "oil_tea_fruit", "2020-11-15", "tb-oiltea-4", "tangba-oiltea-coop", "A", "commitment", COMMITMENT, "yuping-oil-tea-co",
              "4000", 520, "market", tb, floor=400, market=520, as_of="2020-11-05"),
        _fill(4, "chili", "2020-11-03", "fj-chili-4", "fengjia-coop", "A", "order", "tongren-canteen-chili", "tongren-school-canteens", "900", 700, "order_limit", fj),
    ]
    commitments = [{"commitment_id": COMMITMENT, "buyer_id": "yuping-oil-tea-co", "product": "oil_tea_fruit", "floor_price_fen": 400,
                    "reference_market": "Tongren", "valid_from": "2020-10-01", "valid_to": "2020-12-31"}]
    market_prices = [
        {"product": "oil_tea_fruit", "grade": grade, "market": "Tongren", "price_fen": price, "observed_on": day}
        for day, grade, price in [("2020-09-15", "A", 450), ("2020-09-15", "B", 420), ("2020-10-01", "A", 380), ("2020-10-01", "B", 360),
                                  ("2020-11-05", "A", 520), ("2020-11-05", "B", 460)]
    ] + [{"product": "oil_tea_fruit", "grade": "B", "market": "Chongqing", "price_fen": 999, "observed_on": "2020-10-01"}]
    where = {"fj": ("Fengjia (冯家村)", "Ketian (客田镇)"), "tb": ("Tangba paired village (塘坝镇结对村)", "Tangba (塘坝镇)"),
             "kt": ("Ketian community (客田社区)", "Ketian (客田镇)")}
    paid: dict[str, int] = defaultdict(int)
    for fill in fills:
        for household, fen in fill["household_income_fen"].items():
            paid[household] += fen
    paid.update({"kt-01": 0, "kt-02": 0, "kt-03": 0})  # Ketian community: members, no income yet
    poor = {"fj-01", "fj-02", "fj-03", "tb-01", "tb-02", "kt-01", "kt-03"}
    incomes = [
        {"household_id": h, "village": where[h[:2]][0], "township": where[h[:2]][1], "county": "Yanhe (沿河)", "registered_poor": h in poor,
         "product": "chili" if h.startswith("fj") else "oil_tea_fruit", "paid_fen": fen}
        for h, fen in paid.items()
    ]
    villages = []
    for prefix in ("fj", "kt", "tb"):
        rows = [i for i in incomes if i["household_id"].startswith(prefix)]
        villages.append({
            "county": "Yanhe (沿河)", "township": where[prefix][1], "village": where[prefix][0],
            "registered_poor": sum(i["registered_poor"] for i in rows),
            "with_income": sum(i["registered_poor"] and i["paid_fen"] > 0 for i in rows),
            "without_income": sum(i["registered_poor"] and i["paid_fen"] == 0 for i in rows),
            "paid_fen": sum(i["paid_fen"] for i in rows),
        })
    counties = [{"county": "Yanhe (沿河)", **{k: sum(v[k] for v in villages) for k in ("registered_poor", "with_income", "without_income", "paid_fen")}}]
    plans = [
        {"plan_id": "ketian-chili-2020", "county": "Yanhe (沿河)", "township": "Ketian (客田镇)", "product": "chili", "planned_area_mu": "2000",
         "planted_area_mu": "1350.5", "target_household_income_fen": 2_400_000, "earning_households": 3, "average_household_income_fen": 955_000},
        {"plan_id": "ketian-sorghum-2020", "county": "Yanhe (沿河)", "township": "Ketian (客田镇)", "product": "sorghum", "planned_area_mu": "4000",
         "planted_area_mu": "0", "target_household_income_fen": 924_000, "earning_households": 0, "average_household_income_fen": 0},
    ]
    findings = list(findings or [])
    summary = {"events_audited": 1873, "source": "postgres", "clean": not findings,
               "state_hash": "9f2c4e1b7a0d3c5e8f6a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcd", "scenario": "yanhe-2020.jsonl"}
    return ReportData(findings=findings, fills=fills, commitments=commitments, market_prices=market_prices, incomes=incomes,
                      coverage={"villages": villages, "counties": counties, "plans": plans}, summary=summary)


A_FINDING = Finding(
    check="hash_chain",
    where="matching/market-oil_tea_fruit@7 (position 42, event 3f1c2a9e-0000-5000-8000-000000000042)",
    message="stored hash does not match sha256(prev_hash || event): the event was edited after it was written",
    schema="matching", stream_id="market-oil_tea_fruit", stream_version=7, global_position=42,
    event_id="3f1c2a9e-0000-5000-8000-000000000042",
)


# ----------------------------------------------------------------------------- the browser


class _Dom(HTMLParser):
    """The body's attributes and the charts (svg.chart) of a dumped DOM, with whether each has a drawn mark."""

    MARKS = {"rect", "path", "circle", "line"}

    def __init__(self, text: str):
        super().__init__()
        self.body: dict[str, str] = {}
        self.charts: dict[str, bool] = {}
        self.ids: set[str] = set()
        self._chart: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag == "body":
            self.body = attributes
        elif tag == "svg" and "chart" in attributes.get("class", "").split():
            self._chart = attributes.get("data-chart", "")
            assert self._chart not in self.charts, f"two charts named {self._chart}"
            self.charts[self._chart] = False
        elif self._chart is not None and tag in self.MARKS:
            self.charts[self._chart] = True

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag == "svg":
            self._chart = None


def _browse(page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """Chromium's DOM after load (5 s of virtual time) and its stderr lines."""
    profile = tmp_path / f"chromium-profile-{page.stem}"
    result = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
         "--enable-logging=stderr", "--v=0", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "<body" in result.stdout, result.stderr[-3000:]
    return result.stdout, result.stderr.splitlines()


def _page_console(lines: list[str], page: Path) -> list[str]:
    """Console messages of the page, and uncaught errors.

    Chromium 156 logs every console message as INFO:CONSOLE whatever its level, so the level cannot be
    told from the log: the report logs nothing, so any console line from the page counts (older
    versions say ERROR:CONSOLE for errors, caught the same way).
    """
    uri = page.resolve().as_uri()
    return [line for line in lines if "Uncaught" in line or ":CONSOLE" in line and (uri in line or "ERROR:CONSOLE" in line)]


def _external_references(html: str) -> list[str]:
    return re.findall(r"""(?:src|href|xlink:href|action)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]*|url\(\s*["']?(?:https?:)?//[^)]*\)|@import""", html, re.I)


def _check_page(html: str, dom: str, stderr: list[str], page: Path) -> _Dom:
    assert _external_references(html) == []
    assert "http://" not in html and "https://" not in html  # not even the SVG namespace: inline SVG needs none
    parsed = _Dom(dom)
    assert parsed.body.get("data-errors") == "", parsed.body.get("data-errors")
    assert parsed.body.get("data-charts") == str(len(parsed.charts))
    assert parsed.body.get("data-charts-drawn") == str(sum(parsed.charts.values())), (parsed.body, parsed.charts)
    assert _page_console(stderr, page) == []
    return parsed


# ----------------------------------------------------------------------------- tests


@needs_chromium
def test_a_clean_audit_renders_every_chart_in_a_real_browser(tmp_path):
    data = yanhe_report_data()
    page = write_report(data, tmp_path / "report.html")
    html = page.read_text(encoding="utf-8")
    dom, stderr = _browse(page, tmp_path)

    parsed = _check_page(html, dom, stderr, page)
    assert set(parsed.charts) == ALL_CHARTS
    assert parsed.body["data-charts-drawn"] == str(len(ALL_CHARTS))
    assert "audit-clean" in parsed.ids and "audit-findings" not in parsed.ids
    # UTF-8 survives the round trip, money is in yuan with two decimals.
    for text in ("沿河", "冯家村", "客田镇", "建档立卡", "4.00", "38,480.80", "14,325.00"):
        assert text in dom, text
    # Floor activations are marked apart from market fills: two diamonds titled "floor".
    commitment = dom.split(f'data-chart="commitment-{COMMITMENT}"', 1)[1].split("</svg>", 1)[0]
    assert commitment.count("(floor; market as of 2020-10-01") == 2
    assert commitment.count("(market; market as of 2020-11-05") == 2
    assert "Chongqing" not in commitment  # only the commitment's reference market


@needs_chromium
def test_an_audit_with_a_finding_shows_it_first(tmp_path):
    data = yanhe_report_data([A_FINDING])
    page = write_report(data, tmp_path / "report.html")
    html = page.read_text(encoding="utf-8")
    dom, stderr = _browse(page, tmp_path)

    parsed = _check_page(html, dom, stderr, page)
    assert set(parsed.charts) == ALL_CHARTS
    assert parsed.body["data-charts-drawn"] == str(len(ALL_CHARTS))
    assert "audit-findings" in parsed.ids and "audit-clean" not in parsed.ids
    box = dom.split('id="audit-findings"', 1)[1]
    for text in ("hash_chain", "matching/market-oil_tea_fruit@7 (position 42", "the event was edited after it was written"):
        assert text in box.split("</ol>", 1)[0], text
    assert dom.index('id="audit-findings"') < dom.index('class="chart')  # at the top, before any chart


@needs_chromium
def test_empty_inputs_give_a_valid_page_whose_charts_say_no_data(tmp_path):
    page = write_report(ReportData(), tmp_path / "empty.html")
    html = page.read_text(encoding="utf-8")
    dom, stderr = _browse(page, tmp_path)

    parsed = _check_page(html, dom, stderr, page)
    assert parsed.charts and not any(parsed.charts.values())
    assert parsed.body["data-charts-drawn"] == "0"
    assert dom.count("no data") >= len(parsed.charts)


@needs_chromium
def test_the_checks_see_a_script_error(tmp_path):
    """The page's error collection and the stderr check are not vacuous: a broken script is seen by both."""
    html = render_report(yanhe_report_data()).replace("</body>", "<script>notAFunction();</script></body>")
    page = tmp_path / "broken.html"
    page.write_text(html, encoding="utf-8")
    dom, stderr = _browse(page, tmp_path)

    parsed = _Dom(dom)
    assert "notAFunction" in parsed.body.get("data-errors", "")
    assert any("Uncaught" in line for line in _page_console(stderr, page))
    assert parsed.body["data-charts-drawn"] == str(len(ALL_CHARTS))


def test_render_needs_no_browser_for_the_basics():
    html = render_report(yanhe_report_data([A_FINDING]))
    assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html
    assert html.count('class="chart"') == len(ALL_CHARTS)
    assert "Content-Security-Policy" in html
    hostile = Finding(check="invariant", where="settlement/lot-<x>@1", message='<script>alert("x")</script> & <img src="https://example.org/x">')
    html = render_report(ReportData(findings=[hostile]))
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert _external_references(html) == []

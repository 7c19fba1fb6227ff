"""The report page: findings first and linked to their events, a title from the log's counties, Chinese with --lang zh,
readable seconds per phase, a strict policy and no network, a size that does not grow with the fills; small modules."""

import ast
import re
from pathlib import Path

import pytest

from farmlink.audit.model import AuditLog, Record
from farmlink.audit.report import policy, render_report, static
from farmlink.audit.report_collect import report_data
from farmlink.audit.report_format import quantity, seconds, yuan
from farmlink.audit.report_rows import AuditSummary, Coverage, Phase, ReportData
from farmlink.audit.report_text import Words
from tests.report_helpers import Result, finding_at_event, in_memory

pytestmark = pytest.mark.unit

AUDIT = Path(__file__).resolve().parents[2] / "farmlink" / "audit"


@pytest.fixture(scope="module")
def log():
    return in_memory(1_000)


def charts_in(html: str) -> list[str]:
    return re.findall(r'<svg class="chart" data-chart="([^"]+)"', html)


def test_money_quantities_and_seconds_read_as_people_write_them():
    assert (yuan(123456), yuan(5), quantity("38000.500"), quantity(12)) == ("1,234.56", "0.05", "38,000.5", "12")
    assert [seconds(s) for s in (0.004, 7.25, 59.96, 137.2)] == ["4 ms", "7.2 s", "60.0 s", "2 min 17 s"]


def test_the_title_names_the_counties_of_the_log():
    def title(counties, lang):
        return Words(lang).title(counties)

    assert title(["Yanhe"], "en") == "farmlink audit report: Yanhe county"
    assert title(["Yanhe"], "zh").startswith("沿河土家族自治县")
    assert title(["Yanhe", "Yuping"], "en") == "farmlink audit report: Yanhe and Yuping counties"
    assert title(["Yanhe (沿河)", "Yuping"], "zh").startswith("沿河土家族自治县、玉屏侗族自治县")
    assert title(["Dejiang"], "en") == "farmlink audit report: Dejiang county" and "Yanhe" not in title(["Dejiang"], "en")
    assert title([], "en") == "farmlink audit report"


def test_a_page_for_a_yanhe_only_log_says_so_in_both_languages():
    data = ReportData(
        counties=[Coverage("Yanhe", "", "", 3, 2, 1, 900)], villages=[Coverage("Yanhe", "Ketian", "Fengjia", 3, 2, 1, 900)]
    )
    english, chinese = render_report(data, "en"), render_report(data, "zh")
    assert "<title>farmlink audit report: Yanhe county</title>" in english and "Yuping" not in english
    assert "<title>沿河土家族自治县产销对接审计报告</title>" in chinese and '<html lang="zh-CN">' in chinese


def test_findings_come_first_and_each_links_to_the_event_it_names(log):
    findings = [finding_at_event(log, "matching", 40), finding_at_event(log, "settlement", 2, "invariant")]
    html = render_report(report_data(Result(log, findings)))
    assert html.index('id="audit-findings"') < html.index('<svg class="chart"')
    for finding in findings:
        assert f'href="#event-{finding.event_id}"' in html
        anchor = html.index(f'id="event-{finding.event_id}"')
        assert finding.stream_id in html[anchor : anchor + 600]
    assert html.index('id="audit-findings"') < html.index('id="audit"')


def test_a_clean_audit_says_so_at_the_top(log):
    html = render_report(report_data(Result(log)))
    assert 'id="audit-clean"' in html and 'id="audit-findings"' not in html
    assert html.index('id="audit-clean"') < html.index('<svg class="chart"')


def test_seconds_per_phase_are_a_table_and_a_bar_per_phase_not_a_raw_dict():
    data = ReportData(
        summary=AuditSummary(
            events_audited=200_000,
            phases=(
                Phase("read postgres", 7.31),
                Phase("signatures", 10.2),
                Phase("re-execution", 6.0),
                Phase("hash chains", 0.041),
            ),
            workers=2,
            worker_cpu=(Phase("signatures", 9.5), Phase("re-execution", 11.25)),
        )
    )
    html = render_report(data)
    assert "On 2 worker processes" in html and "signatures 9.5 s · re-execution 11.2 s" in html
    for text in ("7.3 s", "10.2 s", "6.0 s", "41 ms", "23.6 s", "43.3 %"):
        assert f">{text}<" in html, text
    assert "{" not in html.split('id="audit"', 1)[1].split("</section>", 1)[0]
    assert "audit-phases" in charts_in(html)
    assert "签名" in render_report(data, "zh")


def test_an_incremental_audit_says_what_it_checked_against_the_checkpoint(log):
    class Incremental(Result):
        def summary(self):
            return super().summary() | {
                "since_checkpoint": {"positions": {"matching": 700}, "events_before": 900, "events_after": 104}
            }

    data = report_data(Incremental(log))
    assert data.summary.since == (900, 104)
    assert "900 events checked against the checkpoint, the 104 after it audited in full" in render_report(data)
    assert "增量审计" in render_report(data, "zh")


def test_the_charts_are_chosen_for_what_they_show(log):
    data = report_data(Result(log, timings={"read postgres": 1.0}))
    names = charts_in(render_report(data))
    assert [n for n in names if n.startswith("volume-")] == [f"volume-{p}" for p in data.products]  # small multiples per product
    assert "revenue" in names and "income-histogram" in names
    assert {"coverage-villages", "coverage-counties"} <= set(names)
    assert any(n.startswith("commitment-") for n in names)
    villages = render_report(data).split('data-chart="coverage-villages"', 1)[1].split("</svg>", 1)[0]
    assert villages.count('class="rowlabel"') == len(data.villages)  # a bar per village
    assert "plans-area" not in names  # no plans in this log: no empty chart


def test_the_chinese_page_speaks_chinese(log):
    html = render_report(report_data(Result(log)), "zh")
    for text in (
        "审计通过",
        "按月成交量与收入",
        "保底收购承诺",
        "建档立卡",
        "辣椒",
        "油茶果",
        "沿河土家族自治县",
        "玉屏侗族自治县",
    ):
        assert text in html, text
    assert charts_in(html) == charts_in(render_report(report_data(Result(log))))


def test_the_policy_allows_only_the_pages_own_style_and_script_and_nothing_from_the_network(log):
    html = render_report(report_data(Result(log, [finding_at_event(log, "matching", 3)])))
    assert policy(static("report.css"), static("report.js")) in html
    assert "unsafe-inline" not in html and "default-src 'none'" in html
    assert f"<style>{static('report.css')}</style>" in html and f"<script>{static('report.js')}</script>" in html
    assert html.count("<script") == 1 and html.count("<style") == 1
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(|@import|style\s*=""", html, re.I)
    assert "http://" not in html and "https://" not in html


def test_hostile_text_in_a_finding_is_escaped():
    record = Record("matching", 1, "e<1>", "FillMade", 1, "market-<x>", 1, None, "p", "c", None, {"a": "<script>"}, "", "")  # type: ignore[arg-type]
    from farmlink.audit.model import finding_at

    finding = finding_at("invariant", record, '<script>alert("x")</script> & <img src="https://example.org/x">')
    html = render_report(report_data(Result(AuditLog("postgres", {"matching": [record]}), [finding])))
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html and "<img" not in html


def test_the_page_does_not_grow_with_the_fills(log):
    small = render_report(report_data(Result(log)))
    large_log = in_memory(8_000)
    large_data = report_data(Result(large_log))
    large = render_report(large_data)
    fills = [r for r in large_log.by_schema["matching"] if r.event_type == "FillMade"]
    assert len(fills) > 1_000
    assert not any(f.payload["fill_id"] in large for f in fills[:200])  # fills are summed, not listed
    assert len(large.encode()) < 600_000, len(large.encode())
    assert len(large.encode()) < 5 * len(small.encode())


def test_no_report_module_is_over_400_lines_nor_any_function_over_60():
    modules = [*AUDIT.glob("report*.py"), AUDIT / "charts.py"]
    assert len(modules) >= 8
    for module in modules:
        source = module.read_text(encoding="utf-8")
        assert source.count("\n") <= 400, module.name
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno + 1 <= 60, f"{module.name}: {node.name}"

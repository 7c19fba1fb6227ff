"""The audit's HTML report: one self-contained page, sized for the data, in English or Chinese.

`write_audit_report(result, path, lang, export)` is what `farmlink audit --report FILE [--lang zh]
[--export DIR]` calls: it sums the audited log into typed rows (`report_collect.py`), renders the
page (`render_report`) and, with `export`, writes the full ledgers beside it (`report_export.py`).

The page holds summaries and top lists, never one row per event, so it stays a few hundred KB
at a million events. Nothing is fetched at view time: the stylesheet and the script
(`static/report.css`, `static/report.js`, read at build time) are inlined, the charts are inline
SVG drawn in Python (`charts.py`), and the Content-Security-Policy allows only that stylesheet and
that script, by their sha256 hashes (no 'unsafe-inline', no network).

Sections, in order: findings (each linking to the event it names), the audit and its seconds per
phase, volume and revenue by month, floor commitments, household income, coverage of
registered-poor households, plans. The title names the log's own counties.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from farmlink.audit.report_collect import iter_fills, read_journal, report_data
from farmlink.audit.report_commitments import commitments_section
from farmlink.audit.report_coverage import coverage_section, plans_section
from farmlink.audit.report_export import write_exports
from farmlink.audit.report_format import esc, whole
from farmlink.audit.report_rows import ReportData
from farmlink.audit.report_sections import audit_section, findings_section, incomes_section, series_section
from farmlink.audit.report_text import Words

SECTIONS = (
    ("findings", findings_section),
    ("audit", audit_section),
    ("series", series_section),
    ("commitments", commitments_section),
    ("incomes", incomes_section),
    ("coverage", coverage_section),
    ("plans", plans_section),
)


@cache
def static(name: str) -> str:
    """A file of farmlink/audit/static, as text."""
    return resources.files("farmlink.audit").joinpath("static", name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def policy(css: str, script: str) -> str:
    """Nothing from the network; only this page's own stylesheet and script, by hash."""
    return (
        f"default-src 'none'; style-src '{_sha256(css)}'; script-src '{_sha256(script)}'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


def _scope(data: ReportData, w: Words) -> str:
    counties = data.county_names
    if not counties:
        return ""
    townships = {(v.county, v.township) for v in data.villages}
    products = ", ".join(w.product(p) for p in data.products) or "—"
    text = w(
        "scope",
        counties=w.scope(counties),
        townships=whole(len(townships)),
        villages=whole(len(data.villages)),
        households=whole(sum(c.households for c in data.counties)),
        poor=whole(sum(c.registered_poor for c in data.counties)),
        buyers=whole(data.buyers),
        products=products,
        first=data.first_day or "—",
        last=data.last_day or "—",
    )
    return f'<p class="scope">{esc(text)}</p>'


def render_report(data: ReportData, lang: str = "en") -> str:
    """The whole report as one self-contained HTML page (UTF-8, no external resources)."""
    w = Words(lang)
    css, script = static("report.css"), static("report.js")
    title = w.title(data.county_names)
    nav = "".join(f'<a href="#{anchor}">{esc(w(anchor))}</a>' for anchor, _ in SECTIONS)
    body = "\n".join(render(data, w) for _, render in SECTIONS)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{"zh-CN" if w.zh else "en"}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy(css, script)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{css}</style><script>{script}</script></head>\n"
        f'<body data-errors=""><header><h1>{esc(title)}</h1><p class="subtitle">{esc(w("subtitle"))}</p>{_scope(data, w)}'
        f'<nav class="contents">{esc(w("nav"))}: {nav}</nav><p class="note">{esc(w("exports_note"))}</p></header>\n'
        f"{body}\n</body></html>\n"
    )


def write_report(data: ReportData, path: str | Path, lang: str = "en") -> Path:
    """Render the report and write it as UTF-8; returns the path."""
    target = Path(path)
    target.write_text(render_report(data, lang), encoding="utf-8")
    return target


def write_audit_report(
    result: Any, path: str | Path | None, lang: str = "en", export: str | Path | None = None
) -> dict[str, int]:
    """The report of an `AuditResult` to `path` (when given) and its ledgers to `export` (when given); rows written per export file."""
    data = report_data(result)
    if path is not None:
        write_report(data, path, lang)
    if export is None:
        return {}
    return write_exports(export, data, iter_fills(result.log, read_journal(result.log)))

"""The report's sections: findings first, the audit and its phases, volume and revenue, household income."""

from __future__ import annotations

import statistics
from collections import Counter
from decimal import Decimal

from contracts.catalogue import UNITS
from farmlink.audit import charts
from farmlink.audit.charts import BarRow, Series
from farmlink.audit.report_format import esc, percent, quantity, seconds, whole, yuan, yuan_short
from farmlink.audit.report_html import details, figure, note, section, table
from farmlink.audit.report_rows import HouseholdIncome, ReportData
from farmlink.audit.report_text import Words

FINDINGS_SHOWN = 200  # findings listed in the page; the rest in findings.json
LIST_ROWS = 50  # rows of a top list


def colours(keys: list[str]) -> dict[str, str]:
    return {key: charts.PALETTE[i % len(charts.PALETTE)] for i, key in enumerate(sorted(keys))}


def unit_of(product: str) -> str:
    return UNITS.get(product, "unit")


# ----------------------------------------------------------------------------- findings


def _finding_item(index: int, finding, w: Words, cited: bool) -> str:
    link = f' <a class="goto" href="#event-{esc(finding.event_id)}">{esc(w("see_event"))} →</a>' if cited else ""
    code = f' <code class="code">{esc(finding.check)}</code>' if w.zh else ""
    return (
        f'<li class="finding" id="finding-{index}"><span class="check">{esc(w.word(finding.check))}</span>{code}{link}<div class="where">{esc(finding.where)}</div>'
        f'<div class="message">{esc(finding.message)}</div></li>'
    )


def _cited_event(event, w: Words) -> str:
    head = w(
        "event_at",
        type=event.event_type,
        schema=event.schema,
        stream=event.stream_id,
        version=event.stream_version,
        position=whole(event.global_position),
        at=event.occurred_at,
    )
    return (
        f'<article class="event" id="event-{esc(event.event_id)}"><h3>{esc(event.event_id)}</h3>'
        f'<p class="where">{esc(head)}</p><pre>{esc(event.payload)}</pre></article>'
    )


def findings_section(data: ReportData, w: Words) -> str:
    """A green banner when clean; else the findings, counted per check, each linking to the event it names."""
    findings = data.findings
    if not findings and data.summary.clean:
        return (
            f'<section id="findings"><div class="banner clean" id="audit-clean"><strong>'
            f"{esc(w('clean', events=whole(data.summary.events_audited)))}</strong></div></section>"
        )
    shown = findings[:FINDINGS_SHOWN]
    counts = Counter(f.check for f in findings)
    if w.zh:
        by_check = table(
            [w("check"), "code", w("count")], [(w.word(c), c, whole(k)) for c, k in sorted(counts.items())], numeric=(2,)
        )
    else:
        by_check = table([w("check"), w("count")], [(c, whole(k)) for c, k in sorted(counts.items())], numeric=(1,))
    items = "".join(_finding_item(i + 1, f, w, f.event_id in data.cited) for i, f in enumerate(shown))
    if not findings:
        items = f'<li class="finding">{esc(w("not_clean_none"))}</li>'
    more = note(w("findings_shown", shown=len(shown), n=whole(len(findings)))) if len(findings) > len(shown) else ""
    wanted = [data.cited[f.event_id] for f in shown if f.event_id in data.cited]
    events = "".join(_cited_event(e, w) for e in {e.event_id: e for e in wanted}.values())
    cited = f'<h3>{esc(w("cited"))}</h3><div class="events">{events}</div>' if events else ""
    return (
        f'<section id="findings"><div class="banner findings" id="audit-findings"><h2>{esc(w("findings_head", n=whole(len(findings))))}</h2>'
        f'{by_check}{more}<ol class="findings">{items}</ol></div>{cited}</section>'
    )


# ----------------------------------------------------------------------------- the audit


def audit_section(data: ReportData, w: Words) -> str:
    """The verdict and figures, and the seconds per phase as a table and a bar per phase."""
    s = data.summary
    verdict = w("verdict_clean") if s.clean else w("verdict_findings", n=whole(s.findings))
    rows = [
        (w("events_audited"), whole(s.events_audited)),
        (w("source"), w.word(s.source)),
        (w("verdict"), verdict),
        (w("journal_inputs"), whole(s.journal_inputs)),
        (w("fills"), whole(s.fills)),
        (w("reconciled"), w("yes") if s.reconciled else w("no")),
        (w("state_hash"), s.state_hash),
    ]
    if s.since is not None:
        rows.insert(1, (w("since"), w("since_value", before=whole(s.since[0]), after=whole(s.since[1]))))
    body = [table([w("item"), w("value")], rows)]
    if s.phases:
        total = s.seconds
        phase_rows = [
            (w.word(p.name), seconds(p.seconds), percent(Decimal(str(p.seconds)), Decimal(str(total)))) for p in s.phases
        ]
        phase_rows.append((w("total"), seconds(total), "100.0 %"))
        bars = [
            BarRow(w.word(p.name), w.word(p.name), (Decimal(str(round(p.seconds, 3))),), seconds(p.seconds)) for p in s.phases
        ]
        chart = charts.hbars(
            "audit-phases", w("phases_chart"), bars, [(w("seconds"), "#3182bd")], lambda v: f"{v:f} s", "s", width=640
        )
        cpu = " · ".join(f"{w.word(p.name)} {seconds(p.seconds)}" for p in s.worker_cpu)
        body += [
            f"<h3>{esc(w('phases'))}</h3>",
            note(w("workers", n=s.workers, cpu=cpu)) if cpu else "",
            '<div class="pair">',
            table([w("phase"), w("seconds"), w("share")], phase_rows, numeric=(1, 2), classes=[""] * len(s.phases) + ["total"]),
            figure(w("phases"), chart),
            "</div>",
        ]
    return section("audit", w("audit"), *body)


# ----------------------------------------------------------------------------- volume and revenue


def series_section(data: ReportData, w: Words) -> str:
    """Volume: small multiples, one per product in its unit; revenue: one line per product; totals."""
    months = sorted({m.month for m in data.months})
    products = data.products
    if not products:
        return section("series", w("series"), note(w("no_data")))
    colour = colours(products)
    by_key = {(m.product, m.month): m for m in data.months}
    panels = []
    for product in products:
        unit = w.word(unit_of(product))
        values = [by_key[(product, m)].quantity if (product, m) in by_key else Decimal(0) for m in months]
        chart = charts.line_chart(
            f"volume-{product}",
            w("volume_chart", product=w.product(product), unit=unit),
            months,
            [Series(w.product(product), colour[product], values)],
            quantity,
            unit,
            width=360,
            height=200,
            show_legend=False,
        )
        panels.append(figure(f"{w.product(product)} ({unit})", chart))
    revenue = [
        Series(w.product(p), colour[p], [Decimal(by_key[(p, m)].revenue_fen) if (p, m) in by_key else Decimal(0) for m in months])
        for p in products
    ]
    revenue_chart = charts.line_chart(
        "revenue", w("revenue_chart"), months, revenue, yuan_short, w.word("yuan"), width=960, height=320
    )
    return section(
        "series",
        w("series"),
        f'<h3>{esc(w("volume_caption"))}</h3><div class="multiples">{"".join(panels)}</div>',
        figure(w("revenue_caption"), revenue_chart),
        _totals(data, w),
        _month_table(data, w),
    )


def _totals(data: ReportData, w: Words) -> str:
    rows = []
    for product in data.products:
        rows_of = [m for m in data.months if m.product == product]
        rows.append(
            (
                w.product(product),
                whole(sum(m.fills for m in rows_of)),
                f"{quantity(sum((m.quantity for m in rows_of), Decimal(0)))} {w.word(unit_of(product))}",
                yuan(sum(m.revenue_fen for m in rows_of)),
                whole(sum(m.floor_activations for m in rows_of)),
            )
        )
    headers = [w("product"), w("fills"), w("quantity"), w("revenue"), w("activations")]
    return f"<h3>{esc(w('totals_by_product'))}</h3>" + table(headers, rows, numeric=(1, 2, 3, 4))


def _month_table(data: ReportData, w: Words) -> str:
    rows = [
        (
            m.month,
            w.product(m.product),
            whole(m.fills),
            f"{quantity(m.quantity)} {w.word(unit_of(m.product))}",
            yuan(m.revenue_fen),
            whole(m.floor_activations),
        )
        for m in sorted(data.months, key=lambda m: (m.month, m.product))
    ]
    headers = [w("month"), w("product"), w("fills"), w("quantity"), w("revenue"), w("activations")]
    return details(w("by_month", n=len(rows)), table(headers, rows, numeric=(2, 3, 4, 5)))


# ----------------------------------------------------------------------------- household income


def _bins(households: list[HouseholdIncome]) -> tuple[list[str], list[tuple[int, int]], list[str]]:
    top = max(h.paid_fen for h in households)
    step = max(charts.nice_step(Decimal(top) / 100, 10) * 100, Decimal(100))  # fen, a round number of yuan
    count = int(Decimal(top) // step) + 1
    poor, other = [0] * count, [0] * count
    for h in households:
        (poor if h.registered_poor else other)[min(int(Decimal(h.paid_fen) // step), count - 1)] += 1
    edges = [yuan_short(step * i) for i in range(count + 1)]
    tips = [f"{edges[i]} – {edges[i + 1]}" for i in range(count)]
    return edges, list(zip(poor, other)), tips


def _stats(label: str, paid: list[int]) -> tuple:
    if not paid:
        return (label, 0, yuan(0), "—", "—", "—", "—")
    return (
        label,
        whole(len(paid)),
        yuan(sum(paid)),
        yuan(min(paid)),
        yuan(statistics.median(paid)),
        yuan(Decimal(sum(paid)) / len(paid)),
        yuan(max(paid)),
    )


def incomes_section(data: ReportData, w: Words) -> str:
    """The distribution of income paid per household, the figures per group, the registered-poor households still without income."""
    households = data.households
    if not households:
        return section("incomes", w("incomes"), note(w("no_data")))
    edges, counts, tips = _bins(households)
    series = [(w("poor"), "#e6550d"), (w("other"), "#6baed6")]
    chart = charts.histogram(
        "income-histogram", w("histogram_chart"), edges, counts, series, w("income_axis"), w("households"), tips
    )
    poor = [h.paid_fen for h in households if h.registered_poor]
    other = [h.paid_fen for h in households if not h.registered_poor]
    stats = table(
        [w("group"), w("households"), w("paid"), w("min"), w("median"), w("mean"), w("max")],
        [_stats(w("poor"), poor), _stats(w("other"), other), _stats(w("all"), poor + other)],
        numeric=(1, 2, 3, 4, 5, 6),
    )
    unpaid = [h for h in households if h.registered_poor and h.paid_fen == 0]
    rows = [(h.household_id, h.cooperative_id, h.village, h.township, w.county(h.county)) for h in unpaid[:LIST_ROWS]]
    listed = table([w("household"), w("cooperative"), w("village"), w("township"), w("county")], rows)
    if len(unpaid) > LIST_ROWS:
        listed = note(w("first_rows", shown=LIST_ROWS, n=whole(len(unpaid)), file="households.csv")) + listed
    return section(
        "incomes",
        w("incomes"),
        figure(w("histogram_caption"), chart),
        stats,
        f"<h3>{esc(w('unpaid_poor', n=whole(len(unpaid))))}</h3>",
        listed,
    )

"""Coverage of registered-poor households (a bar per village, a bar per county) and plans beside actuals."""

from __future__ import annotations

from decimal import Decimal

from farmlink.audit import charts
from farmlink.audit.charts import BarRow
from farmlink.audit.report_format import esc, percent, quantity, whole, yuan, yuan_short
from farmlink.audit.report_html import figure, note, section, table
from farmlink.audit.report_rows import Coverage, ReportData
from farmlink.audit.report_text import Words

GAP_ROWS = 100  # villages with a gap listed in the page


def _bar(c: Coverage, label: str, tip: str) -> BarRow:
    return BarRow(label, tip, (Decimal(c.with_income), Decimal(c.without_income)), f"{c.with_income}/{c.registered_poor}")


def _villages_chart(data: ReportData, w: Words) -> str:
    """A bar per village, grouped by county, the least covered first within each county."""
    villages = sorted(
        data.villages, key=lambda v: (v.county, -v.without_income * 1000 // max(v.registered_poor, 1), v.township, v.village)
    )
    rows, groups = [], []
    for v in villages:
        if not groups or groups[-1][1] != w.county(v.county):
            groups.append((len(rows), w.county(v.county)))
        rows.append(_bar(v, f"{v.village}, {v.township}", f"{v.village}, {v.township}, {w.county(v.county)}"))
    series = [(w("with_income"), charts.GOOD), (w("without_income"), charts.BAD)]
    bar = 14.0 if len(rows) <= 120 else 8.0
    return charts.hbars(
        "coverage-villages",
        w("villages_chart"),
        rows,
        series,
        lambda t: f"{t:f}",
        w("poor_axis"),
        bar=bar,
        whole=True,
        groups=groups if len(groups) > 1 else (),
    )


def coverage_section(data: ReportData, w: Words) -> str:
    """Per village and per county: registered-poor households with and without income; the villages with a gap."""
    if not data.villages:
        return section("coverage", w("coverage"), note(w("no_data")))
    series = [(w("with_income"), charts.GOOD), (w("without_income"), charts.BAD)]
    counties = charts.hbars(
        "coverage-counties",
        w("counties_chart"),
        [_bar(c, w.county(c.county), w.county(c.county)) for c in data.counties],
        series,
        lambda t: f"{t:f}",
        w("poor_axis"),
        whole=True,
    )
    county_rows = [
        (
            w.county(c.county),
            whole(c.households),
            whole(c.registered_poor),
            whole(c.with_income),
            whole(c.without_income),
            percent(c.with_income, c.registered_poor),
            yuan(c.paid_fen),
        )
        for c in data.counties
    ]
    headers = [w("households"), w("registered_poor"), w("with_income"), w("without_income"), w("covered"), w("paid")]
    gaps = [v for v in data.villages if v.without_income]
    gap_rows = [
        (
            w.county(v.county),
            v.township,
            v.village,
            whole(v.households),
            whole(v.registered_poor),
            whole(v.with_income),
            whole(v.without_income),
            percent(v.with_income, v.registered_poor),
            yuan(v.paid_fen),
        )
        for v in gaps[:GAP_ROWS]
    ]
    more = note(w("first_rows", shown=GAP_ROWS, n=whole(len(gaps)), file="villages.csv")) if len(gaps) > GAP_ROWS else ""
    return section(
        "coverage",
        w("coverage"),
        note(w("goal")),
        figure(w("by_county"), counties),
        table([w("county"), *headers], county_rows, numeric=(1, 2, 3, 4, 5, 6)),
        figure(w("by_village", n=whole(len(data.villages))), _villages_chart(data, w)),
        f"<h3>{esc(w('gap_villages', n=whole(len(gaps))))}</h3>",
        more,
        table(
            [w("county"), w("township"), w("village"), *headers],
            gap_rows,
            numeric=(3, 4, 5, 6, 7, 8),
            classes=["gap"] * len(gap_rows),
        ),
    )


def plans_section(data: ReportData, w: Words) -> str:
    """Each township plan: planned against planted area, target against average household income."""
    plans = data.plans
    if not plans:
        return section("plans", w("plans"), note(w("no_plans")))
    area, income = _plans_charts(plans, w)
    rows = [
        (
            p.plan_id,
            w.county(p.county),
            p.township,
            w.product(p.product),
            quantity(p.planned_area_mu),
            quantity(p.planted_area_mu),
            percent(p.planted_area_mu, p.planned_area_mu),
            yuan(p.target_household_income_fen),
            yuan(p.average_household_income_fen),
            whole(p.earning_households),
            percent(p.average_household_income_fen, p.target_household_income_fen),
        )
        for p in plans
    ]
    headers = [
        w("plan"),
        w("county"),
        w("township"),
        w("product"),
        w("planned"),
        w("planted"),
        "%",
        w("target"),
        w("average"),
        w("earning"),
        "%",
    ]
    return section(
        "plans",
        w("plans"),
        f'<div class="pair">{figure(w("plans_area"), area)}{figure(w("plans_income"), income)}</div>',
        table(headers, rows, numeric=(4, 5, 6, 7, 8, 9, 10)),
    )


def _plans_charts(plans, w: Words) -> tuple[str, str]:
    """The two charts of the plans section: planned against planted area, target against average income."""
    labels = [
        (f"{p.township} {w.product(p.product)}", f"{p.plan_id}: {w.county(p.county)}, {p.township}, {w.product(p.product)}")
        for p in plans
    ]
    area = charts.hbars(
        "plans-area",
        w("plans_area"),
        [
            BarRow(
                label,
                tip,
                (p.planned_area_mu, p.planted_area_mu),
                f"{quantity(p.planted_area_mu)} / {quantity(p.planned_area_mu)}",
            )
            for (label, tip), p in zip(labels, plans)
        ],
        [(w("planned"), "#9ecae1"), (w("planted"), "#3182bd")],
        quantity,
        w.word("mu"),
        width=560,
        grouped=True,
    )
    income = charts.hbars(
        "plans-income",
        w("plans_income"),
        [
            BarRow(
                label,
                tip,
                (Decimal(p.target_household_income_fen), Decimal(p.average_household_income_fen)),
                f"{yuan_short(p.average_household_income_fen)} / {yuan_short(p.target_household_income_fen)}",
            )
            for (label, tip), p in zip(labels, plans)
        ],
        [(w("target"), "#fdae6b"), (w("average"), "#e6550d")],
        yuan_short,
        w("per_household"),
        width=560,
        grouped=True,
    )
    return area, income

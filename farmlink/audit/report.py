"""The audit's HTML report: one self-contained page (inline CSS, inline SVG charts, a tiny inline script).

`render_report(ReportData(...))` returns the page as a string; `write_report` writes it as UTF-8.
Nothing is fetched at view time: no CDN, no web fonts, no external scripts or images, and a
Content-Security-Policy that forbids them. Charts are drawn here, in Python, as SVG; the inline
script only counts the drawn charts (`document.body.dataset.chartsDrawn`) and collects JavaScript
errors (`document.body.dataset.errors`, empty when none) so that a headless browser can check the page.

Money arrives in integer fen and is shown in yuan with two decimals; quantities are exact decimals.
Every chart is an `<svg class="chart" data-chart="NAME">`; a chart without data holds only a
"no data" text (no rect, path, circle or line), so it does not count as drawn.

Chart names: `volume-<unit>` (one per unit among the fills: kg, head; `volume` when there are no
fills), `revenue`, `commitment-<commitment_id>` (one per commitment; `commitments` when there is
none), `income-histogram`, `coverage-villages`, `coverage-counties`, `plans-area`, `plans-income`.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from html import escape
from pathlib import Path
from typing import Any

from contracts.catalogue import UNITS
from farmlink.audit.model import Finding

# ----------------------------------------------------------------------------- inputs


@dataclass
class ReportData:
    """Plain inputs of the report, as the audit reads them from the log.

    - findings: what the audit found wrong (empty when clean).
    - fills: FillMade payloads, each plus `business_date` (ISO date) and `product`.
    - commitments: commitment_id, buyer_id, product, floor_price_fen, reference_market
      (valid_from / valid_to are drawn too when present).
    - market_prices: product, grade, market, price_fen, observed_on.
    - incomes: household_id, village, township, county, registered_poor, paid_fen; several rows
      of one household (one per product, as `farmlink incomes` gives them) are added up.
    - coverage: as `farmlink.reports.coverage()` returns it: villages, counties, plans.
    - summary: events audited, source, clean, state hash, ... shown as given.
    """

    findings: list[Finding] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    commitments: list[dict[str, Any]] = field(default_factory=list)
    market_prices: list[dict[str, Any]] = field(default_factory=list)
    incomes: list[dict[str, Any]] = field(default_factory=list)
    coverage: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    title: str = "farmlink audit report: Yanhe county (沿河土家族自治县)"


# ----------------------------------------------------------------------------- formatting

_CENT = Decimal("0.01")


def _e(value: Any) -> str:
    """Text or attribute value, escaped for HTML."""
    return escape("" if value is None else str(value), quote=True)


def yuan(fen: Any) -> str:
    """Integer (or exact decimal) fen as yuan with two decimals and thousands separators: 123456 -> 1,234.56."""
    amount = (Decimal(str(fen)) / 100).quantize(_CENT, rounding=ROUND_HALF_UP)
    return f"{amount:,.2f}"


def _dec(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):  # never expected (money and quantities are exact); read as its shortest text
        return Decimal(repr(value))
    return Decimal(str(value))


def quantity(value: Any) -> str:
    """An exact quantity without trailing zeros, with thousands separators: 38000.500 -> 38,000.5."""
    number = _dec(value)
    if number == number.to_integral_value():
        return f"{number.quantize(Decimal(1)):,f}"
    return f"{number.normalize():,f}"


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _month(value: Any) -> str:
    day = _as_date(value)
    return day.strftime("%Y-%m") if day else "unknown"


def _unit(product: str) -> str:
    return UNITS.get(product, "unit")


def _text_width(text: str, size: float = 12) -> float:
    """A rough width in px: wide (CJK) characters count double."""
    return sum(size * (1.0 if ord(ch) > 0x2E80 else 0.58) for ch in text)


def _clip(text: str, width: float, size: float = 12) -> str:
    if _text_width(text, size) <= width:
        return text
    out = ""
    for ch in text:
        if _text_width(out + ch + "…", size) > width:
            break
        out += ch
    return out + "…"


def _n(x: float) -> str:
    return f"{x:.1f}"


# ----------------------------------------------------------------------------- scales

PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#ff7f0e", "#d62728")
GRADE_COLOURS = {"A": "#6a3d9a", "B": "#ff7f0e", "C": "#8c564b"}
FLOOR_COLOUR = "#d62728"
MARKET_FILL_COLOUR = "#1f77b4"
GOOD = "#2ca02c"
PAIRED_WIDTH = 560.0  # two charts side by side on a wide screen
FULL_WIDTH = 960.0
BAD = "#d62728"


def _nice_step(span: Decimal, target: int) -> Decimal:
    """A 1-2-2.5-5 step that cuts `span` into about `target` pieces."""
    if span <= 0:
        return Decimal(1)
    raw = span / target
    base = Decimal(1).scaleb(raw.adjusted())
    for factor in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
        if base * factor >= raw:
            return _plain(base * factor)
    return _plain(base * 10)


def _plain(number: Decimal) -> Decimal:
    """Without trailing zeros and without an exponent: 1.0 -> 1, 1E+1 -> 10."""
    number = number.normalize()
    return number.quantize(Decimal(1)) if number == number.to_integral_value() else number


def _ticks(low: Decimal, high: Decimal, target: int = 5, whole: bool = False) -> list[Decimal]:
    """Nice ticks covering [low, high]; the first is <= low, the last >= high; whole: integer steps (counts)."""
    if high <= low:
        high = low + (abs(low) if low else Decimal(1))
    step = _nice_step(high - low, target)
    if whole:
        step = max(step.to_integral_value(rounding="ROUND_CEILING"), Decimal(1))
    start = (low / step).to_integral_value(rounding="ROUND_FLOOR") * step
    ticks = [start]
    while ticks[-1] < high:
        ticks.append(ticks[-1] + step)
    return ticks


class _Linear:
    def __init__(self, d0: Decimal, d1: Decimal, r0: float, r1: float):
        self.d0, self.d1, self.r0, self.r1 = float(d0), float(d1), r0, r1

    def __call__(self, value: Any) -> float:
        span = (self.d1 - self.d0) or 1.0
        return self.r0 + (float(value) - self.d0) / span * (self.r1 - self.r0)


# ----------------------------------------------------------------------------- SVG pieces


def _svg_open(name: str, width: float, height: float, label: str) -> str:
    return (
        f'<svg class="chart" data-chart="{_e(name)}" viewBox="0 0 {_n(width)} {_n(height)}" width="{_n(width)}" '
        f'height="{_n(height)}" role="img" aria-label="{_e(label)}"><title>{_e(label)}</title>'
    )


def empty_chart(name: str, label: str, reason: str = "no data", width: float = 760) -> str:
    """A valid chart with nothing drawn: only a text saying why."""
    return (
        _svg_open(name, width, 80, label).replace('class="chart"', 'class="chart empty"', 1)
        + f'<text x="{_n(width / 2)}" y="45" text-anchor="middle" class="nodata">{_e(reason)}</text></svg>'
    )


def _legend(items: Sequence[tuple[str, str]], x: float, y: float, max_x: float) -> tuple[str, float]:
    """items: (svg symbol drawn at 0,0 in a 14x10 box, label). Returns the SVG and the y below it."""
    parts, cx, cy = [], x, y
    for symbol, label in items:
        width = 20 + _text_width(label, 11) + 16
        if cx + width > max_x and cx > x:
            cx, cy = x, cy + 16
        parts.append(f'<g transform="translate({_n(cx)},{_n(cy - 9)})">{symbol}</g>')
        parts.append(f'<text x="{_n(cx + 19)}" y="{_n(cy)}" class="legend">{_e(label)}</text>')
        cx += width
    return "".join(parts), cy + 12


def _swatch(colour: str) -> str:
    return f'<rect x="0" y="0" width="12" height="10" fill="{colour}"/>'


def _y_axis(scale: _Linear, ticks: list[Decimal], left: float, right: float, fmt: Callable[[Decimal], str]) -> str:
    parts = []
    for tick in ticks:
        y = scale(tick)
        parts.append(f'<line x1="{_n(left)}" x2="{_n(right)}" y1="{_n(y)}" y2="{_n(y)}" class="grid"/>')
        parts.append(f'<text x="{_n(left - 6)}" y="{_n(y + 4)}" text-anchor="end" class="tick">{_e(fmt(tick))}</text>')
    return "".join(parts)


def _axis_title(text: str, x: float, y: float, rotate: bool = True) -> str:
    if rotate:
        return f'<text transform="translate({_n(x)},{_n(y)}) rotate(-90)" text-anchor="middle" class="axis-title">{_e(text)}</text>'
    return f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="middle" class="axis-title">{_e(text)}</text>'


def vertical_bars(
    name: str,
    label: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, str]],
    value: Callable[[str, str], Decimal],
    fmt: Callable[[Decimal], str],
    axis_title: str,
    stacked: bool = False,
    width: float = 760,
    height: float = 300,
) -> str:
    """Grouped (or stacked) vertical bars: one group per category, one bar per series (label, colour)."""
    if not categories or not series:
        return empty_chart(name, label, width=width)
    totals = [sum((value(c, s) for s, _ in series), Decimal(0)) if stacked else max(value(c, s) for s, _ in series) for c in categories]
    ticks = _ticks(Decimal(0), max(max(totals), Decimal(0)))
    tick_width = max(_text_width(fmt(t), 11) for t in ticks)
    left, right, top = 24 + tick_width + 10, width - 12, 16.0
    legend, top = _legend([(_swatch(c), s) for s, c in series], left, top + 4, right)
    top += 6
    group = (right - left) / len(categories)
    label_width = max(_text_width(c, 11) for c in categories)
    rotate = label_width > group - 6
    below = 16 + label_width * 0.7 if rotate else 26
    height += max(0.0, below - 26)
    bottom = height - below
    y = _Linear(ticks[0], ticks[-1], bottom, top)
    parts = [_svg_open(name, width, height, label), legend, _y_axis(y, ticks, left, right, fmt)]
    parts.append(_axis_title(axis_title, 12, (top + bottom) / 2))
    bar_area = group * 0.78
    bar = bar_area if stacked else bar_area / len(series)
    for i, category in enumerate(categories):
        x0 = left + i * group + (group - bar_area) / 2
        base = Decimal(0)
        for j, (s, colour) in enumerate(series):
            v = value(category, s)
            if stacked:
                y_top, y_bottom, x = y(base + v), y(base), x0
                base += v
            else:
                y_top, y_bottom, x = y(v), y(0), x0 + j * bar
            if v > 0:
                parts.append(
                    f'<rect x="{_n(x)}" y="{_n(y_top)}" width="{_n(max(bar - 1, 1))}" height="{_n(max(y_bottom - y_top, 0.5))}" '
                    f'fill="{colour}"><title>{_e(category)} · {_e(s)}: {_e(fmt(v))}</title></rect>'
                )
        cx = left + (i + 0.5) * group
        if rotate:
            parts.append(f'<text transform="translate({_n(cx + 4)},{_n(bottom + 10)}) rotate(-40)" text-anchor="end" class="tick">{_e(category)}</text>')
        else:
            parts.append(f'<text x="{_n(cx)}" y="{_n(bottom + 16)}" text-anchor="middle" class="tick">{_e(category)}</text>')
    parts.append(f'<line x1="{_n(left)}" x2="{_n(right)}" y1="{_n(y(0))}" y2="{_n(y(0))}" class="axis"/>')
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bars(
    name: str,
    label: str,
    rows: Sequence[tuple[str, str]],
    series: Sequence[tuple[str, str]],
    value: Callable[[int, str], Decimal],
    fmt: Callable[[Decimal], str],
    axis_title: str,
    stacked: bool = False,
    width: float = FULL_WIDTH,
    whole: bool = False,
) -> str:
    """One row per (label, tooltip); grouped or stacked horizontal bars, the value written at each bar's end."""
    if not rows or not series:
        return empty_chart(name, label, width=width)
    totals = [sum((value(i, s) for s, _ in series), Decimal(0)) if stacked else max(value(i, s) for s, _ in series) for i in range(len(rows))]
    ticks = _ticks(Decimal(0), max(max(totals), Decimal(0)), whole=whole)
    left = min(max(_text_width(r, 12) for r, _ in rows) + 14, width * 0.42)
    value_room = max(_text_width(fmt(t), 11) for t in [*ticks, *totals]) + 12
    right = width - value_room
    legend, top = _legend([(_swatch(c), s) for s, c in series], left, 20, right)
    top += 4
    bar = 16.0
    row_height = (bar + 8) if stacked else (bar * len(series) + 10)
    bottom = top + row_height * len(rows)
    height = bottom + 40
    x = _Linear(ticks[0], ticks[-1], left, right)
    parts = [_svg_open(name, width, height, label), legend]
    for tick in ticks:
        px = x(tick)
        parts.append(f'<line x1="{_n(px)}" x2="{_n(px)}" y1="{_n(top)}" y2="{_n(bottom)}" class="grid"/>')
        parts.append(f'<text x="{_n(px)}" y="{_n(bottom + 15)}" text-anchor="middle" class="tick">{_e(fmt(tick))}</text>')
    parts.append(_axis_title(axis_title, (left + right) / 2, bottom + 32, rotate=False))
    for i, (row, tip) in enumerate(rows):
        y0 = top + i * row_height + 4
        parts.append(
            f'<text x="{_n(left - 8)}" y="{_n(y0 + (row_height - 8) / 2 + 4)}" text-anchor="end" class="rowlabel">'
            f"<title>{_e(tip)}</title>{_e(_clip(row, left - 14))}</text>"
        )
        base = Decimal(0)
        for j, (s, colour) in enumerate(series):
            v = value(i, s)
            if stacked:
                x0, x1, yy = x(base), x(base + v), y0
                base += v
            else:
                x0, x1, yy = x(0), x(v), y0 + j * bar
            if v > 0:
                parts.append(
                    f'<rect x="{_n(x0)}" y="{_n(yy)}" width="{_n(max(x1 - x0, 0.5))}" height="{_n(bar - 2)}" fill="{colour}">'
                    f"<title>{_e(tip)} · {_e(s)}: {_e(fmt(v))}</title></rect>"
                )
            if not stacked:
                parts.append(f'<text x="{_n(x1 + 4)}" y="{_n(yy + bar - 5)}" class="value">{_e(fmt(v))}</text>')
        if stacked:
            parts.append(f'<text x="{_n(x(base) + 4)}" y="{_n(y0 + bar - 5)}" class="value">{_e(fmt(base))}</text>')
    parts.append(f'<line x1="{_n(left)}" x2="{_n(left)}" y1="{_n(top)}" y2="{_n(bottom)}" class="axis"/>')
    parts.append("</svg>")
    return "".join(parts)


# ----------------------------------------------------------------------------- HTML pieces


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Iterable[int] = (), classes: Sequence[str] | None = None) -> str:
    right = set(numeric)
    head = "".join(f'<th{" class=num" if i in right else ""}>{_e(h)}</th>' for i, h in enumerate(headers))
    body = []
    for k, row in enumerate(rows):
        css = f' class="{classes[k]}"' if classes and classes[k] else ""
        cells = "".join(f'<td{" class=num" if i in right else ""}>{_e(v)}</td>' for i, v in enumerate(row))
        body.append(f"<tr{css}>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}" class="nodata">no data</td></tr>')
    return f'<table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _figure(title: str, chart: str, note: str = "") -> str:
    note_html = f'<p class="note">{note}</p>' if note else ""
    return f'<figure><figcaption>{_e(title)}</figcaption>{note_html}<div class="chartbox">{chart}</div></figure>'


def _colours(keys: Iterable[str]) -> dict[str, str]:
    return {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(sorted(set(keys)))}


# ----------------------------------------------------------------------------- 0. summary and 1. findings


def _summary_section(data: ReportData) -> str:
    summary = data.summary or {}
    preferred = ["events_audited", "source", "clean", "state_hash"]
    keys = [k for k in preferred if k in summary] + [k for k in summary if k not in preferred]
    rows = []
    for key in keys:
        value = summary[key]
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        rows.append((key.replace("_", " "), value))
    return f'<section id="summary"><h2>Audit</h2>{_table(["item", "value"], rows)}</section>'


def _findings_section(data: ReportData) -> str:
    findings = list(data.findings)
    clean_flag = data.summary.get("clean") if data.summary else None
    if not findings and clean_flag is not False:
        events = data.summary.get("events_audited") if data.summary else None
        detail = f" — {_e(events)} events checked, no findings" if events is not None else " — no findings"
        return f'<section id="findings"><div class="banner clean" id="audit-clean"><strong>Audit clean</strong>{detail}.</div></section>'
    by_check = Counter(f.check for f in findings)
    counts = ", ".join(f"{_e(check)}: {n}" for check, n in sorted(by_check.items()))
    items = "".join(
        f'<li class="finding"><span class="check">{_e(f.check)}</span> <span class="where">{_e(f.where)}</span>'
        f'<div class="message">{_e(f.message)}</div></li>'
        for f in findings
    )
    if not findings:
        items = '<li class="finding">the audit says the log is not clean, but listed no finding</li>'
    return (
        f'<section id="findings"><div class="banner findings" id="audit-findings"><h2>Findings: {len(findings)}</h2>'
        f'<p>{counts}</p><ol class="findings">{items}</ol></div></section>'
    )


# ----------------------------------------------------------------------------- 2. volume and revenue


def _fills_section(data: ReportData) -> str:
    fills = data.fills
    months = sorted({_month(f.get("business_date")) for f in fills})
    products = sorted({str(f.get("product")) for f in fills})
    colours = _colours(products)
    qty: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    revenue: dict[tuple[str, str], int] = defaultdict(int)
    count: Counter[tuple[str, str]] = Counter()
    floors: Counter[tuple[str, str]] = Counter()
    for fill in fills:
        key = (_month(fill.get("business_date")), str(fill.get("product")))
        qty[key] += _dec(fill.get("quantity"))
        revenue[key] += int(fill.get("revenue_fen") or 0)
        count[key] += 1
        floors[key] += fill.get("price_basis") == "floor"
    charts = []
    units = sorted({_unit(p) for p in products})
    if not units:
        charts.append(_figure("Volume by product and month", empty_chart("volume", "volume by product and month", width=PAIRED_WIDTH)))
    for unit in units:
        unit_products = [p for p in products if _unit(p) == unit]
        chart = vertical_bars(
            f"volume-{unit}",
            f"volume by product and month ({unit})",
            months,
            [(p, colours[p]) for p in unit_products],
            lambda m, p: qty.get((m, p), Decimal(0)),
            quantity,
            unit,
            width=PAIRED_WIDTH,
        )
        charts.append(_figure(f"Volume by product and month ({unit})", chart))
    chart = vertical_bars(
        "revenue",
        "revenue by product and month (yuan)",
        months,
        [(p, colours[p]) for p in products],
        lambda m, p: Decimal(revenue.get((m, p), 0)),
        yuan,
        "yuan",
        width=PAIRED_WIDTH,
    )
    charts.append(_figure("Revenue by product and month (yuan)", chart))
    rows = [
        (m, p, count[(m, p)], f"{quantity(qty[(m, p)])} {_unit(p)}", yuan(revenue[(m, p)]), floors[(m, p)])
        for m in months
        for p in products
        if count[(m, p)]
    ]
    for p in products:
        total_q = sum((v for (m, pp), v in qty.items() if pp == p), Decimal(0))
        total_r = sum(v for (m, pp), v in revenue.items() if pp == p)
        rows.append(("total", p, sum(n for (m, pp), n in count.items() if pp == p), f"{quantity(total_q)} {_unit(p)}", yuan(total_r),
                     sum(n for (m, pp), n in floors.items() if pp == p)))
    classes = [""] * (len(rows) - len(products)) + ["total"] * len(products)
    table = _table(["month", "product", "fills", "quantity", "revenue (yuan)", "floor activations"], rows, numeric=(2, 3, 4, 5), classes=classes)
    return f'<section id="fills"><h2>Volume and revenue by product and month</h2><div class="pair">{"".join(charts)}</div>{table}</section>'


# ----------------------------------------------------------------------------- 3. commitments


def _date_ticks(d0: date, d1: date) -> list[tuple[date, str]]:
    span = (d1 - d0).days
    if span > 50:
        ticks, day = [], date(d0.year, d0.month, 1)
        while day <= d1:
            if day >= d0:
                ticks.append((day, day.strftime("%Y-%m-%d")))
            day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
        return ticks
    step = 1 if span <= 10 else 7 if span <= 50 else 14
    return [(d0 + timedelta(days=k), (d0 + timedelta(days=k)).strftime("%m-%d")) for k in range(0, span + 1, step)]


def _diamond(x: float, y: float, r: float, colour: str, tip: str) -> str:
    return (
        f'<path d="M{_n(x)},{_n(y - r)} L{_n(x + r)},{_n(y)} L{_n(x)},{_n(y + r)} L{_n(x - r)},{_n(y)} Z" fill="{colour}" '
        f'stroke="#fff" stroke-width="1"><title>{_e(tip)}</title></path>'
    )


def commitment_chart(commitment: dict[str, Any], fills: list[dict[str, Any]], prices: list[dict[str, Any]]) -> str:
    """Unit price paid at each fill's business date, the floor, and the reference market's prices per grade."""
    cid = str(commitment.get("commitment_id"))
    name = f"commitment-{cid}"
    product = str(commitment.get("product"))
    unit = _unit(product)
    market = commitment.get("reference_market")
    floor = commitment.get("floor_price_fen")
    label = f"commitment {cid}: unit price paid against the floor and the {market} market price"
    dated_fills = [(d, f) for f in fills if (d := _as_date(f.get("business_date"))) is not None]
    observations = sorted(
        ((d, p) for p in prices if (d := _as_date(p.get("observed_on"))) is not None),
        key=lambda item: item[0],
    )
    if not dated_fills and not observations:
        return empty_chart(name, label, f"no data: no fills and no {market} market prices for {product}")
    valid_from, valid_to = _as_date(commitment.get("valid_from")), _as_date(commitment.get("valid_to"))
    days = [d for d, _ in dated_fills] + [d for d, _ in observations] + [d for d in (valid_from, valid_to) if d]
    d0, d1 = min(days) - timedelta(days=3), max(days) + timedelta(days=3)
    prices_fen = [Decimal(int(f.get("unit_price_fen") or 0)) for _, f in dated_fills]
    prices_fen += [Decimal(int(p.get("price_fen") or 0)) for _, p in observations]
    if floor is not None:
        prices_fen.append(Decimal(int(floor)))
    low, high = min(prices_fen), max(prices_fen)
    pad = max((high - low) / 8, Decimal(10))
    ticks = _ticks(max(low - pad, Decimal(0)), high + pad, 5)
    width, height = FULL_WIDTH, 340.0
    tick_width = max(_text_width(yuan(t), 11) for t in ticks)
    left, right = 24 + tick_width + 10, width - 16
    grades = sorted({str(p.get("grade")) for _, p in observations})
    items: list[tuple[str, str]] = []
    if valid_from and valid_to:
        items.append(('<rect x="0" y="0" width="12" height="10" class="valid"/>', "commitment valid"))
    if floor is not None:
        items.append((f'<line x1="0" x2="14" y1="5" y2="5" stroke="{FLOOR_COLOUR}" stroke-width="2" stroke-dasharray="4 2"/>', f"floor {yuan(floor)}"))
    for grade in grades:
        colour = GRADE_COLOURS.get(grade, "#555")
        items.append((f'<path d="M0,8 H6 V2 H14" fill="none" stroke="{colour}" stroke-width="2"/>', f"{market} market, grade {grade}"))
    items.append((f'<circle cx="6" cy="5" r="4.5" fill="{MARKET_FILL_COLOUR}"/>', "fill at market price"))
    items.append((_diamond(6, 5, 6, FLOOR_COLOUR, "floor activation"), "floor activation (fill at floor)"))
    legend, top = _legend(items, left, 20, right)
    top += 6
    bottom = height - 34
    x = _Linear(Decimal(0), Decimal((d1 - d0).days), left, right)
    y = _Linear(ticks[0], ticks[-1], bottom, top)

    def px(day: date) -> float:
        return x((day - d0).days)

    parts = [_svg_open(name, width, height, label), legend]
    if valid_from and valid_to:
        a, b = px(max(valid_from, d0)), px(min(valid_to, d1))
        parts.append(f'<rect x="{_n(a)}" y="{_n(top)}" width="{_n(max(b - a, 0.5))}" height="{_n(bottom - top)}" class="valid">'
                     f"<title>commitment valid {valid_from} to {valid_to}</title></rect>")
    parts.append(_y_axis(y, ticks, left, right, yuan))
    parts.append(_axis_title(f"yuan per {unit}", 12, (top + bottom) / 2))
    for day, text in _date_ticks(d0, d1):
        parts.append(f'<line x1="{_n(px(day))}" x2="{_n(px(day))}" y1="{_n(bottom)}" y2="{_n(bottom + 4)}" class="axis"/>')
        parts.append(f'<text x="{_n(px(day))}" y="{_n(bottom + 17)}" text-anchor="middle" class="tick">{_e(text)}</text>')
    parts.append(f'<line x1="{_n(left)}" x2="{_n(right)}" y1="{_n(bottom)}" y2="{_n(bottom)}" class="axis"/>')
    for grade in grades:
        colour = GRADE_COLOURS.get(grade, "#555")
        points = [(d, int(p.get("price_fen") or 0)) for d, p in observations if str(p.get("grade")) == grade]
        path = f"M{_n(px(points[0][0]))},{_n(y(points[0][1]))}"
        for day, price in points[1:]:
            path += f" H{_n(px(day))} V{_n(y(price))}"
        path += f" H{_n(right)}"
        parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2" opacity="0.85"/>')
        for day, price in points:
            parts.append(f'<circle cx="{_n(px(day))}" cy="{_n(y(price))}" r="3" fill="#fff" stroke="{colour}" stroke-width="1.5">'
                         f"<title>{_e(market)} grade {_e(grade)} observed {day}: {yuan(price)} yuan/{unit}</title></circle>")
    if floor is not None:
        fy = y(int(floor))
        parts.append(f'<line x1="{_n(left)}" x2="{_n(right)}" y1="{_n(fy)}" y2="{_n(fy)}" stroke="{FLOOR_COLOUR}" stroke-width="2" '
                     f'stroke-dasharray="6 3"><title>floor {yuan(floor)} yuan/{unit}</title></line>')
    for day, fill in dated_fills:
        price = int(fill.get("unit_price_fen") or 0)
        tip = (f"{day} lot {fill.get('lot_id')} grade {fill.get('grade')}: {quantity(fill.get('quantity'))} {unit} at "
               f"{yuan(price)} yuan/{unit} ({fill.get('price_basis')}; market as of {fill.get('price_as_of')}: "
               f"{yuan(fill['market_price_fen']) if fill.get('market_price_fen') is not None else 'none'})")
        if fill.get("price_basis") == "floor":
            parts.append(_diamond(px(day), y(price), 7, FLOOR_COLOUR, tip))
        else:
            parts.append(f'<circle cx="{_n(px(day))}" cy="{_n(y(price))}" r="5" fill="{MARKET_FILL_COLOUR}" stroke="#fff" stroke-width="1">'
                         f"<title>{_e(tip)}</title></circle>")
    parts.append("</svg>")
    return "".join(parts)


def _commitments_section(data: ReportData) -> str:
    if not data.commitments:
        chart = empty_chart("commitments", "floor commitments", "no data: no floor commitments")
        return f'<section id="commitments"><h2>Floor commitments</h2>{_figure("Floor commitments", chart)}</section>'
    blocks = []
    for commitment in data.commitments:
        cid = commitment.get("commitment_id")
        fills = [f for f in data.fills if f.get("outlet_kind") == "commitment" and f.get("outlet_id") == cid]
        fills.sort(key=lambda f: (str(f.get("business_date")), int(f.get("position") or 0)))
        prices = [p for p in data.market_prices
                  if p.get("product") == commitment.get("product") and p.get("market") == commitment.get("reference_market")]
        unit = _unit(str(commitment.get("product")))
        floor = commitment.get("floor_price_fen")
        activations = sum(f.get("price_basis") == "floor" for f in fills)
        title = (f"{cid}: {commitment.get('buyer_id')} buys {commitment.get('product')} at max(market, floor "
                 f"{yuan(floor) if floor is not None else '—'} yuan/{unit}), reference market {commitment.get('reference_market')}")
        note = f"{len(fills)} fills, {activations} at the floor (floor activations), {len(fills) - activations} at the market price."
        rows = [
            (f.get("business_date"), f.get("lot_id"), f.get("cooperative_id"), f.get("grade"), f"{quantity(f.get('quantity'))} {unit}",
             f.get("price_as_of") or "—", yuan(f["market_price_fen"]) if f.get("market_price_fen") is not None else "none",
             yuan(f["floor_price_fen"]) if f.get("floor_price_fen") is not None else "—", yuan(f.get("unit_price_fen") or 0),
             f.get("price_basis"), yuan(f.get("revenue_fen") or 0))
            for f in fills
        ]
        classes = ["floor" if f.get("price_basis") == "floor" else "" for f in fills]
        table = _table(["business date", "lot", "cooperative", "grade", "quantity", "market as of", "market (yuan)", "floor (yuan)",
                        "paid (yuan)", "basis", "revenue (yuan)"], rows, numeric=(4, 6, 7, 8, 10), classes=classes)
        blocks.append(_figure(title, commitment_chart(commitment, fills, prices), _e(note)) + table)
    return f'<section id="commitments"><h2>Floor commitments: price paid against floor and market</h2>{"".join(blocks)}</section>'


# ----------------------------------------------------------------------------- 4. household incomes


def _households(incomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Income rows added up per household (rows may be per household and product)."""
    out: dict[str, dict[str, Any]] = {}
    for row in incomes:
        hid = str(row.get("household_id"))
        house = out.setdefault(hid, {**{k: row.get(k) for k in ("household_id", "village", "township", "county")},
                                     "registered_poor": bool(row.get("registered_poor")), "paid_fen": 0})
        house["paid_fen"] += int(row.get("paid_fen") or 0)
    return sorted(out.values(), key=lambda h: (-h["paid_fen"], str(h["household_id"])))


def income_histogram(households: list[dict[str, Any]]) -> str:
    name, label = "income-histogram", "households by income paid (yuan), registered-poor and other"
    if not households:
        return empty_chart(name, label, "no data: no household income")
    top_fen = max(h["paid_fen"] for h in households)
    step = _nice_step(Decimal(top_fen) / 100, 8) * 100  # in fen, a nice number of yuan
    step = max(step, Decimal(100))
    bins = int(Decimal(top_fen) // step) + 1
    poor, other = [0] * bins, [0] * bins
    for house in households:
        index = min(int(Decimal(house["paid_fen"]) // step), bins - 1)
        (poor if house["registered_poor"] else other)[index] += 1
    width, height = FULL_WIDTH, 300.0
    counts = [p + o for p, o in zip(poor, other)]
    ticks = _ticks(Decimal(0), Decimal(max(counts)), 5, whole=True)
    left, right = 60.0, width - 12 - _text_width(yuan(step * bins), 11) / 2
    series = [("registered poor (建档立卡)", "#e6550d"), ("other households", "#6baed6")]
    legend, top = _legend([(_swatch(c), s) for s, c in series], left, 20, right)
    top += 6
    bottom = height - 46
    x = _Linear(Decimal(0), Decimal(bins), left, right)
    y = _Linear(ticks[0], ticks[-1], bottom, top)
    parts = [_svg_open(name, width, height, label), legend, _y_axis(y, ticks, left, right, lambda t: f"{t:f}")]
    parts.append(_axis_title("households", 14, (top + bottom) / 2))
    for i in range(bins):
        lo, hi = step * i, step * (i + 1)
        base = 0
        for n, (s, colour) in zip((poor[i], other[i]), series):
            if n:
                parts.append(
                    f'<rect x="{_n(x(i) + 1)}" y="{_n(y(base + n))}" width="{_n(x(i + 1) - x(i) - 2)}" height="{_n(y(base) - y(base + n))}" '
                    f'fill="{colour}"><title>{yuan(lo)} to under {yuan(hi)} yuan: {n} {_e(s)}</title></rect>'
                )
            base += n
    every = max(1, math.ceil(bins / 8))
    for i in range(0, bins + 1, every):
        parts.append(f'<line x1="{_n(x(i))}" x2="{_n(x(i))}" y1="{_n(bottom)}" y2="{_n(bottom + 4)}" class="axis"/>')
        parts.append(f'<text x="{_n(x(i))}" y="{_n(bottom + 17)}" text-anchor="middle" class="tick">{yuan(step * i)}</text>')
    parts.append(f'<line x1="{_n(left)}" x2="{_n(right)}" y1="{_n(bottom)}" y2="{_n(bottom)}" class="axis"/>')
    parts.append(_axis_title("income paid per household (yuan)", (left + right) / 2, bottom + 36, rotate=False))
    parts.append("</svg>")
    return "".join(parts)


def _income_section(data: ReportData) -> str:
    households = _households(data.incomes)
    chart = _figure("Household income distribution (paid income per household)", income_histogram(households))
    rows = []
    for group, members in (("registered poor", [h for h in households if h["registered_poor"]]),
                           ("other", [h for h in households if not h["registered_poor"]]), ("all", households)):
        paid = [h["paid_fen"] for h in members]
        if paid:
            rows.append((group, len(paid), yuan(sum(paid)), yuan(min(paid)), yuan(statistics.median(paid)),
                         yuan(Decimal(sum(paid)) / len(paid)), yuan(max(paid))))
        else:
            rows.append((group, 0, yuan(0), "—", "—", "—", "—"))
    stats = _table(["households", "count", "total paid (yuan)", "min", "median", "mean", "max"], rows, numeric=(1, 2, 3, 4, 5, 6))
    detail = _table(
        ["household", "village", "township", "county", "registered poor", "paid (yuan)"],
        [(h["household_id"], h["village"], h["township"], h["county"], "yes" if h["registered_poor"] else "no", yuan(h["paid_fen"])) for h in households],
        numeric=(5,),
    )
    return (f'<section id="incomes"><h2>Household income</h2>{chart}{stats}'
            f"<details><summary>every household ({len(households)})</summary>{detail}</details></section>")


# ----------------------------------------------------------------------------- 5. coverage and plans


def _coverage_section(data: ReportData) -> str:
    coverage = data.coverage or {}
    villages = list(coverage.get("villages") or [])
    counties = list(coverage.get("counties") or [])
    plans = list(coverage.get("plans") or [])
    series = [("registered poor with income", GOOD), ("registered poor without income", BAD)]
    keys = {"registered poor with income": "with_income", "registered poor without income": "without_income"}

    def counts(rows: list[dict[str, Any]]) -> Callable[[int, str], Decimal]:
        return lambda i, s: Decimal(int(rows[i].get(keys[s]) or 0))

    count_text = lambda v: f"{v:f}"  # noqa: E731 - counts are whole numbers
    village_chart = horizontal_bars(
        "coverage-villages", "registered-poor households with and without industry income, by village",
        [(f"{v.get('village')}, {v.get('township')}", f"{v.get('village')}, {v.get('township')}, {v.get('county')}") for v in villages],
        series, counts(villages), count_text, "registered-poor households", stacked=True, whole=True)
    county_chart = horizontal_bars(
        "coverage-counties", "registered-poor households with and without industry income, by county",
        [(str(c.get("county")), str(c.get("county"))) for c in counties], series, counts(counties), count_text,
        "registered-poor households", stacked=True, whole=True)
    village_rows = [(v.get("county"), v.get("township"), v.get("village"), v.get("registered_poor"), v.get("with_income"),
                     v.get("without_income"), yuan(v.get("paid_fen") or 0)) for v in villages]
    village_classes = ["gap" if int(v.get("without_income") or 0) else "" for v in villages]
    village_table = _table(["county", "township", "village", "registered poor", "with income", "without income", "paid (yuan)"],
                           village_rows, numeric=(3, 4, 5, 6), classes=village_classes)
    county_table = _table(["county", "registered poor", "with income", "without income", "paid (yuan)"],
                          [(c.get("county"), c.get("registered_poor"), c.get("with_income"), c.get("without_income"),
                            yuan(c.get("paid_fen") or 0)) for c in counties], numeric=(1, 2, 3, 4))
    plan_rows = [(f"{p.get('township')} {p.get('product')}", f"{p.get('plan_id')}: {p.get('county')}, {p.get('township')}, {p.get('product')}") for p in plans]
    area_chart = horizontal_bars(
        "plans-area", "planned against planted area (mu)", plan_rows,
        [("planned area", "#9ecae1"), ("planted area", "#3182bd")],
        lambda i, s: _dec(plans[i].get("planned_area_mu" if s == "planned area" else "planted_area_mu")), quantity, "mu",
        width=PAIRED_WIDTH)
    income_chart = horizontal_bars(
        "plans-income", "target against average household income (yuan)", plan_rows,
        [("target household income", "#fdae6b"), ("average household income", "#e6550d")],
        lambda i, s: Decimal(int(plans[i].get("target_household_income_fen" if s == "target household income" else "average_household_income_fen") or 0)),
        yuan, "yuan per household", width=PAIRED_WIDTH)

    def share(actual: Decimal, target: Decimal) -> str:
        return f"{(actual * 100 / target).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} %" if target else "—"

    plan_table = _table(
        ["plan", "county", "township", "product", "planned (mu)", "planted (mu)", "planted / planned", "target (yuan)",
         "average (yuan)", "earning households", "average / target"],
        [(p.get("plan_id"), p.get("county"), p.get("township"), p.get("product"), quantity(p.get("planned_area_mu")),
          quantity(p.get("planted_area_mu")), share(_dec(p.get("planted_area_mu")), _dec(p.get("planned_area_mu"))),
          yuan(p.get("target_household_income_fen") or 0), yuan(p.get("average_household_income_fen") or 0), p.get("earning_households", 0),
          share(_dec(p.get("average_household_income_fen")), _dec(p.get("target_household_income_fen")))) for p in plans],
        numeric=(4, 5, 6, 7, 8, 9, 10))
    return (
        '<section id="coverage"><h2>Coverage of registered-poor households</h2>'
        '<p class="note">Goal: every poor household has industry income (贫困户户户有产业收入). '
        "Red: registered-poor households without any income paid.</p>"
        f'{_figure("By village", village_chart)}{village_table}{_figure("By county", county_chart)}{county_table}'
        '<h2>Plans beside actuals</h2>'
        f'<div class="pair">{_figure("Planned against planted area (mu)", area_chart)}'
        f'{_figure("Target against average household income (yuan)", income_chart)}</div>{plan_table}</section>'
    )


# ----------------------------------------------------------------------------- the page

CSS = """
:root { color-scheme: light; }
body { font-family: "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei",
  "WenQuanYi Micro Hei", "Helvetica Neue", Arial, sans-serif; margin: 0 auto; max-width: 1180px; padding: 16px 24px 48px;
  color: #222; background: #fff; line-height: 1.4; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.subtitle { color: #555; margin: 0 0 12px; }
.banner { border-radius: 6px; padding: 12px 16px; margin: 12px 0; }
.banner.clean { background: #e8f5e9; border: 2px solid #2e7d32; color: #1b5e20; font-size: 16px; }
.banner.findings { background: #fdecea; border: 2px solid #c62828; color: #7f0000; }
.banner.findings h2 { border: 0; margin: 0 0 4px; color: #b71c1c; }
ol.findings { margin: 8px 0 0; padding-left: 24px; max-height: 480px; overflow: auto; }
li.finding { margin: 4px 0; } .check { font-weight: bold; background: #c62828; color: #fff; padding: 0 6px; border-radius: 3px; }
.where { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; } .message { margin-left: 4px; }
figure { margin: 12px 0; } figcaption { font-weight: bold; margin-bottom: 4px; }
.pair { display: flex; flex-wrap: wrap; gap: 16px; } .pair figure { flex: 1 1 520px; min-width: 0; }
.chartbox { overflow-x: auto; } svg.chart { max-width: 100%; height: auto; display: block; font-size: 12px; }
svg.chart text { fill: #333; } svg.chart .tick { font-size: 11px; fill: #555; } svg.chart .legend { font-size: 11px; }
svg.chart .axis-title { font-size: 11px; fill: #666; } svg.chart .value { font-size: 11px; fill: #333; }
svg.chart .nodata { font-size: 14px; fill: #888; font-style: italic; }
svg.chart .grid { stroke: #e5e5e5; stroke-width: 1; } svg.chart .axis { stroke: #888; stroke-width: 1; }
svg.chart .valid { fill: #f1f8e9; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; } th { background: #f5f5f5; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; } td.nodata { color: #888; font-style: italic; }
tr.total td { font-weight: bold; background: #fafafa; } tr.floor td { background: #fff3f3; } tr.gap td { background: #fdecea; }
.note { color: #555; font-size: 13px; margin: 2px 0 6px; } details { margin-bottom: 16px; }
@media print { .chartbox { overflow: visible; } ol.findings { max-height: none; } }
"""

SCRIPT = """
(function () {
  "use strict";
  var errors = [];
  function publish() {
    if (document.body) { document.body.dataset.errors = errors.join(" | "); }
  }
  function record(text) { errors.push(String(text)); publish(); }
  window.onerror = function (message, source, line, column) {
    record(message + " (" + (source || "page") + ":" + line + ":" + column + ")");
  };
  window.addEventListener("unhandledrejection", function (event) {
    var reason = event && event.reason;
    record("unhandled rejection: " + (reason && reason.message ? reason.message : reason));
  });
  var consoleError = console.error;
  console.error = function () {
    record("console.error: " + Array.prototype.map.call(arguments, String).join(" "));
    return consoleError.apply(console, arguments);
  };
  function countCharts() {
    try {
      var charts = document.querySelectorAll("svg.chart");
      var drawn = 0;
      for (var i = 0; i < charts.length; i++) {
        if (charts[i].querySelector("rect, path, circle, line")) { drawn++; }
      }
      document.body.dataset.charts = String(charts.length);
      document.body.dataset.chartsDrawn = String(drawn);
    } catch (error) {
      record("counting charts: " + error);
    }
    publish();
  }
  window.addEventListener("load", countCharts);
})();
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def render_report(data: ReportData) -> str:
    """The whole report as one self-contained HTML page (UTF-8, no external resources)."""
    sections = [
        _findings_section(data),
        _summary_section(data),
        _fills_section(data),
        _commitments_section(data),
        _income_section(data),
        _coverage_section(data),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(data.title)}</title><style>{CSS}</style><script>{SCRIPT}</script></head>\n"
        '<body data-errors="">'
        f'<header><h1>{_e(data.title)}</h1><p class="subtitle">Tongren, Guizhou · money in yuan (fen / 100), quantities exact · '
        "every chart below is drawn from the audited log</p></header>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def write_report(data: ReportData, path: str | Path) -> Path:
    """Render the report and write it as UTF-8; returns the path."""
    target = Path(path)
    target.write_text(render_report(data), encoding="utf-8")
    return target

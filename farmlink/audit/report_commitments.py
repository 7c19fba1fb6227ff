"""Floor commitments: per commitment, the reference market's price against the floor over time, and its fills.

A floor activation is a fill paid at the floor because the market price as of its date was below it.
The page charts the commitments with the most activations (small multiples) and lists the top ones;
every commitment and every fill is in the export.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from farmlink.audit.charts import FLOOR, Scale, legend, line_symbol, n, svg_open, ticks, y_axis
from farmlink.audit.report_format import esc, quantity, whole, yuan, yuan_short
from farmlink.audit.report_html import figure, note, section, table
from farmlink.audit.report_rows import Commitment, FillRow, PricePoint, ReportData
from farmlink.audit.report_sections import unit_of
from farmlink.audit.report_text import Words

CHARTED = 12  # commitments drawn
LISTED = 50  # commitments in the table
GRADE_COLOURS = {"A": "#6a3d9a", "B": "#ff7f0e", "C": "#8c564b"}
MARKET_FILL = "#1f77b4"
DENSE = 40  # market observations in a chart's window above which they are drawn as dots, not steps


def ranked(commitments: list[Commitment]) -> list[Commitment]:
    """Most floor activations first, then most paid above the market, then by id."""
    return sorted(commitments, key=lambda c: (-c.activations, -c.above_market_fen, -len(c.fills), c.commitment_id))


def _window(c: Commitment) -> tuple[date, date] | None:
    days = [f.business_date for f in c.fills if f.business_date] + [d for d in (c.valid_from, c.valid_to) if d]
    if not days:
        return None
    return min(days) - timedelta(days=5), max(days) + timedelta(days=5)


def _steps(points: list[PricePoint], d0: date, d1: date) -> dict[str, list[tuple[date, int]]]:
    """Per grade, the price in force at d0 (the last observed before it) and each change up to d1."""
    lines: dict[str, list[tuple[date, int]]] = {}
    for p in points:
        if p.observed_on > d1:
            break
        line = lines.setdefault(p.grade, [])
        if p.observed_on <= d0:
            line[:] = [(d0, p.price_fen)]
        else:
            line.append((p.observed_on, p.price_fen))
    return lines


def _market(lines: dict[str, list[tuple[date, int]]], x: Scale, y: Scale, right: float, c: Commitment, w: Words) -> str:
    """The market price per grade: steps where prices change now and then, dots where they are dense (a step line would be a thicket)."""
    dense = sum(len(line) for line in lines.values()) > DENSE
    parts = []
    for grade, line in sorted(lines.items()):
        colour = GRADE_COLOURS.get(grade, "#555")
        if dense:
            parts += [
                f'<circle cx="{n(x(day.toordinal()))}" cy="{n(y(price))}" r="1.8" fill="{colour}" opacity="0.55"/>'
                for day, price in line
            ]
            continue
        path = (
            f"M{n(x(line[0][0].toordinal()))},{n(y(line[0][1]))}"
            + "".join(f" H{n(x(day.toordinal()))} V{n(y(price))}" for day, price in line[1:])
            + f" H{n(right)}"
        )
        tip = "; ".join(
            w("price_tip", market=c.reference_market, grade=grade, day=day, price=yuan(price)) for day, price in line[-6:]
        )
        parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"><title>{esc(tip)}</title></path>')
    return "".join(parts)


def _date_ticks(d0: date, d1: date) -> list[date]:
    step = max(1, (d1 - d0).days // 5)
    return [d0 + timedelta(days=k) for k in range(step // 2, (d1 - d0).days + 1, step)]


def _diamond(x: float, y: float, r: float, tip: str) -> str:
    return (
        f'<path d="M{n(x)},{n(y - r)} L{n(x + r)},{n(y)} L{n(x)},{n(y + r)} L{n(x - r)},{n(y)} Z" fill="{FLOOR}" stroke="#fff" '
        f'stroke-width="1"><title>{esc(tip)}</title></path>'
    )


def _fill_mark(fill: FillRow, x: float, y: float, c: Commitment, w: Words) -> str:
    unit = w.word(unit_of(c.product))
    market = yuan(fill.market_price_fen) if fill.market_price_fen is not None else "—"
    tip = w(
        "fill_tip",
        day=fill.business_date,
        lot=fill.lot_id,
        grade=fill.grade,
        qty=quantity(fill.quantity),
        unit=unit,
        price=yuan(fill.unit_price_fen),
        basis=w.word(fill.price_basis),
        market=market,
    )
    if fill.at_floor:
        return _diamond(x, y, 6, tip)
    return f'<circle cx="{n(x)}" cy="{n(y)}" r="4.5" fill="{MARKET_FILL}" stroke="#fff" stroke-width="1"><title>{esc(tip)}</title></circle>'


def price_floor_chart(c: Commitment, w: Words, width: float = 540, height: float = 230) -> str:
    """Market price per grade (steps) against the floor (dashed) over the commitment's period; its fills as marks."""
    window = _window(c)
    if window is None:
        return ""
    d0, d1 = window
    grades = {f.grade for f in c.fills}
    lines = {grade: line for grade, line in _steps(c.prices, d0, d1).items() if grade in grades or not grades}
    fills = [f for f in c.fills if f.business_date]
    values = (
        [Decimal(c.floor_price_fen)]
        + [Decimal(p) for line in lines.values() for _, p in line]
        + [Decimal(f.unit_price_fen) for f in fills]
    )
    marks = ticks(max(min(values) - 50, Decimal(0)), max(values) + 50, 4)
    left, right, top, bottom = 58.0, width - 10, 10.0, height - 26
    x, y = Scale(d0.toordinal(), d1.toordinal(), left, right), Scale(marks[0], marks[-1], bottom, top)
    parts = [svg_open(f"commitment-{c.commitment_id}", width, height, w("commitment_chart", cid=c.commitment_id))]
    if c.valid_from and c.valid_to:
        a, b = x(max(c.valid_from, d0).toordinal()), x(min(c.valid_to, d1).toordinal())
        parts.append(
            f'<rect x="{n(a)}" y="{n(top)}" width="{n(max(b - a, 0.5))}" height="{n(bottom - top)}" class="valid">'
            f"<title>{esc(w('legend_valid'))}: {c.valid_from} – {c.valid_to}</title></rect>"
        )
    parts.append(y_axis(y, marks, left, right, yuan_short))
    for day in _date_ticks(d0, d1):
        parts.append(
            f'<text x="{n(x(day.toordinal()))}" y="{n(bottom + 16)}" text-anchor="middle" class="tick">{day:%m-%d}</text>'
        )
    parts.append(f'<line x1="{n(left)}" x2="{n(right)}" y1="{n(bottom)}" y2="{n(bottom)}" class="axis"/>')
    parts.append(_market(lines, x, y, right, c, w))
    fy = y(c.floor_price_fen)
    parts.append(
        f'<line x1="{n(left)}" x2="{n(right)}" y1="{n(fy)}" y2="{n(fy)}" stroke="{FLOOR}" stroke-width="2" stroke-dasharray="6 3">'
        f"<title>{esc(w('legend_floor'))} {yuan(c.floor_price_fen)}</title></line>"
    )
    parts += [_fill_mark(f, x(f.business_date.toordinal()), y(f.unit_price_fen), c, w) for f in fills]  # type: ignore[union-attr]
    return "".join(parts) + "</svg>"


def _legend(charted: list[Commitment], w: Words) -> str:
    markets = sorted({c.reference_market for c in charted})
    items = [
        ('<rect x="0" y="0" width="12" height="10" class="valid"/>', w("legend_valid")),
        (line_symbol(FLOOR, True), w("legend_floor")),
    ]
    items += [
        (line_symbol(colour), w("legend_market", market="/".join(markets), grade=grade))
        for grade, colour in GRADE_COLOURS.items()
    ]
    items += [
        (f'<circle cx="6" cy="5" r="4.5" fill="{MARKET_FILL}"/>', w("legend_fill")),
        (_diamond(6, 5, 6, w("legend_activation")), w("legend_activation")),
    ]
    body, bottom = legend(items, 4, 14, 1100)
    return f'<svg class="key" viewBox="0 0 1100 {n(bottom)}" width="1100" height="{n(bottom)}" role="img">{body}</svg>'


def commitments_section(data: ReportData, w: Words) -> str:
    """The commitments' totals, the most activated drawn one by one, the top ones listed."""
    if not data.commitments:
        return section("commitments", w("commitments"), note(w("no_commitments")))
    order = ranked(data.commitments)
    charted = [c for c in order if c.fills][:CHARTED]
    total_fills = sum(len(c.fills) for c in order)
    above = sum((c.above_market_fen for c in order), Decimal(0))
    head = note(
        w(
            "commitments_note",
            n=whole(len(order)),
            fills=whole(total_fills),
            activations=whole(sum(c.activations for c in order)),
            above=yuan(above),
        )
    )
    panels = []
    for c in charted:
        unit = w.word(unit_of(c.product))
        caption = w(
            "commitment_caption",
            cid=c.commitment_id,
            buyer=c.buyer_id,
            product=w.product(c.product),
            floor=yuan(c.floor_price_fen),
            unit=unit,
            market=c.reference_market,
        )
        panels.append(figure(caption, price_floor_chart(c, w)))
    drawn = (
        note(w("commitments_charts", shown=len(charted)))
        + _legend(charted, w)
        + f'<div class="multiples wide">{"".join(panels)}</div>'
        if charted
        else ""
    )
    return section("commitments", w("commitments"), head, drawn, _commitment_table(order, w))


def _commitment_table(order: list[Commitment], w: Words) -> str:
    rows = [
        (
            c.commitment_id,
            c.buyer_id,
            w.product(c.product),
            yuan(c.floor_price_fen),
            f"{c.valid_from} – {c.valid_to}",
            whole(len(c.fills)),
            whole(c.activations),
            f"{quantity(c.quantity)} {w.word(unit_of(c.product))}",
            yuan(c.revenue_fen),
            yuan(c.above_market_fen),
        )
        for c in order[:LISTED]
    ]
    headers = [
        w("commitment"),
        w("buyer"),
        w("product"),
        w("floor_yuan"),
        w("valid"),
        w("fills"),
        w("activations"),
        w("quantity"),
        w("revenue"),
        w("above_market"),
    ]
    listed = table(headers, rows, numeric=(3, 5, 6, 7, 8, 9), classes=["floor" if c.activations else "" for c in order[:LISTED]])
    more = note(w("commitments_top", shown=LISTED, n=whole(len(order)))) if len(order) > LISTED else ""
    return more + listed

"""Inline SVG charts, drawn in Python: lines over months, horizontal bars, a stacked histogram.

Every chart is an `<svg class="chart" data-chart="NAME">` with a `<title>`; a chart that has
something to show holds at least one mark (path, rect, circle or line), and the page's script
counts the charts drawn. Values are exact (`Decimal`, integer fen); only pixel positions are floats.
No `style` attributes (the page's Content-Security-Policy allows only its own hashed stylesheet).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from farmlink.audit.report_format import clip, esc, text_width

PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#ff7f0e", "#d62728")
GOOD, BAD, FLOOR = "#2e7d32", "#d62728", "#d62728"
Fmt = Callable[[Decimal], str]


def n(x: float) -> str:
    return f"{x:.1f}"


def nice_step(span: Decimal, target: int) -> Decimal:
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
    number = number.normalize()
    return number.quantize(Decimal(1)) if number == number.to_integral_value() else number


def ticks(low: Decimal, high: Decimal, target: int = 5, whole: bool = False) -> list[Decimal]:
    """Nice ticks covering [low, high]; whole: integer steps (counts)."""
    if high <= low:
        high = low + (abs(low) if low else Decimal(1))
    step = nice_step(high - low, target)
    if whole:
        step = max(step.to_integral_value(rounding="ROUND_CEILING"), Decimal(1))
    start = (low / step).to_integral_value(rounding="ROUND_FLOOR") * step
    out = [start]
    while out[-1] < high:
        out.append(out[-1] + step)
    return out


class Scale:
    """A linear map from a domain to pixels."""

    def __init__(self, d0: Decimal | float, d1: Decimal | float, r0: float, r1: float):
        self.d0, self.d1, self.r0, self.r1 = float(d0), float(d1), r0, r1

    def __call__(self, value: Decimal | float | int) -> float:
        span = (self.d1 - self.d0) or 1.0
        return self.r0 + (float(value) - self.d0) / span * (self.r1 - self.r0)


def svg_open(name: str, width: float, height: float, label: str) -> str:
    return (
        f'<svg class="chart" data-chart="{esc(name)}" viewBox="0 0 {n(width)} {n(height)}" width="{n(width)}" '
        f'height="{n(height)}" role="img" aria-label="{esc(label)}"><title>{esc(label)}</title>'
    )


def swatch(colour: str) -> str:
    return f'<rect x="0" y="0" width="12" height="10" fill="{colour}"/>'


def line_symbol(colour: str, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="4 2"' if dashed else ""
    return f'<line x1="0" x2="14" y1="5" y2="5" stroke="{colour}" stroke-width="2"{dash}/>'


def legend(items: Sequence[tuple[str, str]], x: float, y: float, max_x: float) -> tuple[str, float]:
    """items: (an SVG symbol drawn in a 14x10 box, label). Returns the SVG and the y below it."""
    parts, cx, cy = [], x, y
    for symbol, label in items:
        width = 20 + text_width(label, 11) + 16
        if cx + width > max_x and cx > x:
            cx, cy = x, cy + 16
        parts.append(
            f'<g transform="translate({n(cx)},{n(cy - 9)})">{symbol}</g>'
            f'<text x="{n(cx + 19)}" y="{n(cy)}" class="legend">{esc(label)}</text>'
        )
        cx += width
    return "".join(parts), cy + 12


def y_axis(scale: Scale, marks: list[Decimal], left: float, right: float, fmt: Fmt) -> str:
    parts = []
    for tick in marks:
        y = scale(tick)
        parts.append(
            f'<line x1="{n(left)}" x2="{n(right)}" y1="{n(y)}" y2="{n(y)}" class="grid"/>'
            f'<text x="{n(left - 6)}" y="{n(y + 4)}" text-anchor="end" class="tick">{esc(fmt(tick))}</text>'
        )
    return "".join(parts)


def axis_title(text: str, x: float, y: float, rotate: bool = True) -> str:
    if rotate:
        return (
            f'<text transform="translate({n(x)},{n(y)}) rotate(-90)" text-anchor="middle" class="axis-title">{esc(text)}</text>'
        )
    return f'<text x="{n(x)}" y="{n(y)}" text-anchor="middle" class="axis-title">{esc(text)}</text>'


def x_labels(labels: Sequence[str], x: Callable[[int], float], bottom: float, room: float) -> str:
    """Category labels under the axis, thinned so they do not overlap."""
    widest = max((text_width(label, 11) for label in labels), default=0) + 8
    every = max(1, int(widest // max(room, 1)) + 1)
    parts = []
    for i in range(0, len(labels), every):
        parts.append(
            f'<line x1="{n(x(i))}" x2="{n(x(i))}" y1="{n(bottom)}" y2="{n(bottom + 4)}" class="axis"/>'
            f'<text x="{n(x(i))}" y="{n(bottom + 16)}" text-anchor="middle" class="tick">{esc(labels[i])}</text>'
        )
    return "".join(parts)


@dataclass(frozen=True)
class Series:
    """One line: a value per category (None: no point there)."""

    label: str
    colour: str
    values: Sequence[Decimal | None]
    dashed: bool = False


def _polyline(series: Series, x: Callable[[int], float], y: Scale, fmt: Fmt, categories: Sequence[str]) -> str:
    points = [(i, v) for i, v in enumerate(series.values) if v is not None]
    if not points:
        return ""
    dash = ' stroke-dasharray="5 3"' if series.dashed else ""
    path = " ".join(f"{'M' if k == 0 else 'L'}{n(x(i))},{n(y(v))}" for k, (i, v) in enumerate(points))
    parts = [f'<path d="{path}" fill="none" stroke="{series.colour}" stroke-width="2"{dash}/>']
    if len(points) <= 40:
        for i, v in points:
            parts.append(
                f'<circle cx="{n(x(i))}" cy="{n(y(v))}" r="2.5" fill="{series.colour}">'
                f"<title>{esc(series.label)} · {esc(categories[i])}: {esc(fmt(v))}</title></circle>"
            )
    return "".join(parts)


def line_chart(
    name: str,
    label: str,
    categories: Sequence[str],
    series: Sequence[Series],
    fmt: Fmt,
    title: str,
    width: float = 760,
    height: float = 300,
    show_legend: bool = True,
) -> str:
    """Lines over ordered categories (months); one y scale from 0; end labels name each line."""
    values = [v for s in series for v in s.values if v is not None]
    if not categories or not values:
        return ""
    marks = ticks(Decimal(0), max(max(values), Decimal(0)))
    ends = max((text_width(s.label, 11) for s in series), default=0) if show_legend and len(series) > 1 else 0
    left, right, top, bottom = 24 + max(text_width(fmt(t), 11) for t in marks) + 8, width - 12 - ends, 12.0, height - 28
    y = Scale(marks[0], marks[-1], bottom, top)
    step = (right - left) / max(len(categories) - 1, 1)

    def x(i: int) -> float:
        return left + i * step if len(categories) > 1 else (left + right) / 2

    parts = [svg_open(name, width, height, label), y_axis(y, marks, left, right, fmt), axis_title(title, 10, (top + bottom) / 2)]
    parts.append(x_labels(categories, x, bottom, step))
    parts.append(f'<line x1="{n(left)}" x2="{n(right)}" y1="{n(bottom)}" y2="{n(bottom)}" class="axis"/>')
    for s in series:
        parts.append(_polyline(s, x, y, fmt, categories))
    if ends:
        parts.append(_end_labels(series, x, y, right))
    parts.append("</svg>")
    return "".join(parts)


def _end_labels(series: Sequence[Series], x: Callable[[int], float], y: Scale, right: float) -> str:
    """Each line's name after its last point, nudged apart so none overlap."""
    ends = sorted(
        ((y(next(v for v in reversed(s.values) if v is not None)), s) for s in series if any(v is not None for v in s.values)),
        key=lambda item: item[0],
    )
    placed: list[float] = []
    for py, _ in ends:
        placed.append(max(py, placed[-1] + 12) if placed else py)
    overflow = placed[-1] - (y.r0 + 4) if placed else 0  # r0: the bottom of the plot
    if overflow > 0:
        placed = [p - overflow for p in placed]
        for i in range(len(placed) - 2, -1, -1):
            placed[i] = min(placed[i], placed[i + 1] - 12)
    parts = []
    for py, (_, s) in zip(placed, ends):
        parts.append(f'<text x="{n(right + 6)}" y="{n(py + 4)}" class="legend" fill="{s.colour}">{esc(s.label)}</text>')
    return "".join(parts)


@dataclass(frozen=True)
class BarRow:
    """One row of a horizontal bar chart: its label, a tooltip, one value per series, the text after the bar."""

    label: str
    tip: str
    values: tuple[Decimal, ...]
    note: str


def hbars(
    name: str,
    label: str,
    rows: Sequence[BarRow],
    series: Sequence[tuple[str, str]],
    fmt: Fmt,
    title: str,
    width: float = 960,
    bar: float = 14,
    whole: bool = False,
    groups: Sequence[tuple[int, str]] = (),
    grouped: bool = False,
) -> str:
    """Stacked (or, `grouped`, side by side) horizontal bars, one row per item; `groups`: (row index, heading) above that row."""
    if not rows:
        return ""
    top_value = max((max(r.values) if grouped else sum(r.values, Decimal(0))) for r in rows)
    marks = ticks(Decimal(0), max(top_value, Decimal(0)), whole=whole)
    left = min(max(text_width(r.label, 11) for r in rows) + 14, width * 0.4)
    right = width - max(text_width(r.note, 11) for r in rows) - 14
    items, top = legend([(swatch(c), s) for s, c in series], left, 16, right) if len(series) > 1 else ("", 8.0)
    heading = {index: text for index, text in groups}
    row_h = bar * (len(series) if grouped else 1) + 3
    bottom = top + 4 + row_h * len(rows) + 18 * len(heading)
    x = Scale(marks[0], marks[-1], left, right)
    parts = [svg_open(name, width, bottom + 36, label), items]
    for tick in marks:
        parts.append(
            f'<line x1="{n(x(tick))}" x2="{n(x(tick))}" y1="{n(top)}" y2="{n(bottom)}" class="grid"/>'
            f'<text x="{n(x(tick))}" y="{n(bottom + 14)}" text-anchor="middle" class="tick">{esc(fmt(tick))}</text>'
        )
    parts.append(axis_title(title, (left + right) / 2, bottom + 30, rotate=False))
    y0 = top + 4
    for i, row in enumerate(rows):
        if i in heading:
            parts.append(f'<text x="4" y="{n(y0 + 13)}" class="group">{esc(heading[i])}</text>')
            y0 += 18
        parts.append(_bar_row(row, series, x, (left, y0, bar), grouped, fmt))
        y0 += row_h
    parts.append(f'<line x1="{n(left)}" x2="{n(left)}" y1="{n(top)}" y2="{n(bottom)}" class="axis"/></svg>')
    return "".join(parts)


def _bar_row(
    row: BarRow, series: Sequence[tuple[str, str]], x: Scale, place: tuple[float, float, float], grouped: bool, fmt: Fmt
) -> str:
    left, y0, bar = place
    middle = y0 + (bar * len(series) if grouped else bar) / 2 + 4
    parts = [
        f'<text x="{n(left - 6)}" y="{n(middle)}" text-anchor="end" class="rowlabel">'
        f"<title>{esc(row.tip)}</title>{esc(clip(row.label, left - 10, 11))}</text>"
    ]
    base, end = Decimal(0), Decimal(0)
    for j, (value, (s, colour)) in enumerate(zip(row.values, series)):
        start, top = (Decimal(0), y0 + j * bar) if grouped else (base, y0)
        if value > 0:
            parts.append(
                f'<rect x="{n(x(start))}" y="{n(top)}" width="{n(max(x(start + value) - x(start), 0.5))}" '
                f'height="{n(bar - (1 if grouped else 0))}" fill="{colour}"><title>{esc(row.tip)} · {esc(s)}: {esc(fmt(value))}</title></rect>'
            )
        base += value
        end = max(end, start + value)
    parts.append(f'<text x="{n(x(end) + 4)}" y="{n(middle)}" class="value">{esc(row.note)}</text>')
    return "".join(parts)


def histogram(
    name: str,
    label: str,
    edges: Sequence[str],
    counts: Sequence[tuple[int, ...]],
    series: Sequence[tuple[str, str]],
    x_title: str,
    y_title: str,
    tips: Sequence[str],
    width: float = 960,
    height: float = 300,
) -> str:
    """Stacked bins: counts[i] one count per series; edges has one label more than there are bins."""
    if not counts or not any(sum(c) for c in counts):
        return ""
    marks = ticks(Decimal(0), Decimal(max(sum(c) for c in counts)), whole=True)
    left, right = 60.0, width - 12 - text_width(edges[-1], 11) / 2
    items, top = legend([(swatch(c), s) for s, c in series], left, 16, right)
    bottom = height - 46
    x = Scale(0, len(counts), left, right)
    y = Scale(marks[0], marks[-1], bottom, top + 6)
    parts = [
        svg_open(name, width, height, label),
        items,
        y_axis(y, marks, left, right, lambda t: f"{t:f}"),
        axis_title(y_title, 14, (top + bottom) / 2),
    ]
    for i, bin_counts in enumerate(counts):
        base = 0
        for count, (s, colour) in zip(bin_counts, series):
            if count:
                parts.append(
                    f'<rect x="{n(x(i) + 1)}" y="{n(y(base + count))}" width="{n(x(i + 1) - x(i) - 2)}" '
                    f'height="{n(y(base) - y(base + count))}" fill="{colour}"><title>{esc(tips[i])}: {count} {esc(s)}</title></rect>'
                )
            base += count
    parts.append(x_labels(edges, lambda i: x(i), bottom, x(1) - x(0)))
    parts.append(f'<line x1="{n(left)}" x2="{n(right)}" y1="{n(bottom)}" y2="{n(bottom)}" class="axis"/>')
    parts.append(axis_title(x_title, (left + right) / 2, bottom + 36, rotate=False) + "</svg>")
    return "".join(parts)

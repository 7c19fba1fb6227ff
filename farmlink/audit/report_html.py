"""Small HTML pieces of the report: tables, figures, sections."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from farmlink.audit.report_format import esc


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    numeric: Iterable[int] = (),
    classes: Sequence[str] = (),
    empty: str = "—",
) -> str:
    """A table; `numeric` columns align right; `classes` one CSS class per row ("" for none)."""
    right = set(numeric)
    head = "".join(f"<th{' class=num' if i in right else ''}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = []
    for k, row in enumerate(rows):
        css = f' class="{classes[k]}"' if k < len(classes) and classes[k] else ""
        cells = "".join(f"<td{' class=num' if i in right else ''}>{esc(v)}</td>" for i, v in enumerate(row))
        body.append(f"<tr{css}>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}" class="nodata">{esc(empty)}</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(caption: str, chart: str, note: str = "") -> str:
    """A captioned chart; nothing when the chart is empty (no data, no chart)."""
    if not chart:
        return ""
    note_html = f'<p class="note">{esc(note)}</p>' if note else ""
    return f'<figure><figcaption>{esc(caption)}</figcaption>{note_html}<div class="chartbox">{chart}</div></figure>'


def section(anchor: str, heading: str, *body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(heading)}</h2>{"".join(body)}</section>'


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def details(summary: str, body: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"

"""Whether data valid under one JSON Schema is valid under another: Schema Registry's BACKWARD, FORWARD and FULL.

The modes mean what they mean in Confluent Schema Registry, between a published (old) schema and
its replacement (new):

- BACKWARD: a reader on the new schema reads everything written under the old one, so every
  instance the old schema accepts, the new one accepts (old ⊆ new). Breaks it: a field newly
  required, an enum value removed, a tighter bound (smaller maxLength or maximum, larger
  minLength or minimum), a pattern or format added, a type narrowed, a field removed from a
  closed schema (additionalProperties false) that old data may hold, a field added to an open
  schema (old data may already hold that name with any value: Schema Registry's
  PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL).
- FORWARD: a reader on the old schema reads everything written under the new one (new ⊆ old).
  Breaks it: an enum value added, a wider bound, a new field in a closed old schema, a required
  field made optional or removed, a type widened (null allowed as well, say).
- FULL: both.

The check is conservative: what it cannot prove safe is reported as breaking, worded "cannot
prove compatible: ...". Patterns are compared as text (any change breaks both directions), as
are keywords it does not analyse (`not`, `if`, `patternProperties`, ...) when the reader has them.
Annotations (title, description, default, examples) are ignored. pydantic's own constraint
keywords that JSON Schema validators ignore but the models enforce (`gt`, `ge`, `lt`, `le`,
`max_digits`, `decimal_places`) are compared as bounds.

Every problem names the instance path (`$.contributions[*].quantity`) and the mode it breaks:
`$.grade: enum value 'D' added [breaks FORWARD]`.
"""

from enum import StrEnum
from typing import Any

from contracts.compatibility.keywords import SchemaCheck


class Mode(StrEnum):
    """A compatibility mode, as Schema Registry names it."""

    BACKWARD = "BACKWARD"
    """A reader on the new schema reads data written under the old."""
    FORWARD = "FORWARD"
    """A reader on the old schema reads data written under the new."""
    FULL = "FULL"
    """Both."""

    @property
    def halves(self) -> tuple["Mode", ...]:
        """The one-way checks the mode is made of."""
        return (Mode.BACKWARD, Mode.FORWARD) if self is Mode.FULL else (self,)


def compatibility_problems(old: Any, new: Any, mode: Mode | str = Mode.FULL) -> list[str]:
    """Why `new` is not `mode`-compatible with `old` (empty: it is), each naming a path and the mode it breaks.

    `old` and `new` are whole JSON Schemas (their `$ref`s point into their own `$defs`).
    """
    problems: list[str] = []
    for half in Mode(mode).halves:
        writer, reader = (old, new) if half is Mode.BACKWARD else (new, old)
        problems += SchemaCheck(writer, reader, str(half), half is Mode.BACKWARD).run()
    return problems

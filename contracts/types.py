"""Value types shared by the public models: exact quantities, integer fen, ISO dates."""

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: object) -> object:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be an ISO date YYYY-MM-DD")
    return value


def _exact_decimal(value: object) -> object:
    if isinstance(value, bool) or isinstance(value, float):
        # Floats lose fen and grams; the CLI parses JSON numbers as Decimal.
        raise ValueError("must be a decimal string or an exact number, not a float")
    return value


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
"""A business date, given as YYYY-MM-DD."""

Quantity = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    AfterValidator(_finite),
    Field(gt=0, max_digits=18, decimal_places=3, description="exact quantity: kg to 3 places, or whole head"),
]
"""A positive exact quantity (kg to 3 decimal places, livestock in whole head)."""

Area = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    AfterValidator(_finite),
    Field(gt=0, max_digits=12, decimal_places=2, description="land in mu"),
]
"""A positive area in mu (1 mu = 666.7 m²)."""

Fen = Annotated[int, Field(strict=True, ge=0, le=10**15, description="money in integer fen (1 yuan = 100 fen)")]
"""Money in whole fen, never a float."""

PositiveFen = Annotated[int, Field(strict=True, gt=0, le=10**15, description="money in integer fen, above zero")]

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f]+$")]
"""An id chosen by the producer: printable, no spaces."""

Name = Annotated[str, Field(min_length=1, max_length=200)]

Producer = Annotated[str, Field(min_length=1, max_length=256)]
"""Who submitted an input: `cooperative:<id>`, `buyer:<id>`, `market:<market name>`, `settlement`
(contracts/inputs.py `producer_of`); long enough for the longest id or name behind its prefix, and a
market's name may hold spaces."""

Grade = Literal["A", "B", "C"]
"""Produce grade, A best."""

OutletKind = Literal["order", "commitment"]
PriceBasis = Literal["order_limit", "market", "floor"]

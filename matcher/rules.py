"""The rulebook: every rule of docs/matching-rules.md as a small pure function of plain values.

Each function names, in its docstring, the clause of docs/matching-rules.md it implements
(§E1 ... §M3, the labels in that file). The book (matcher/book.py) folds the journal and asks
these functions what may match, at what price and in which order; the index
(matcher/shelves.py) asks them which shelf an item belongs on and which shelves an arriving
item must read, so a rule never lives only in an index key; the reference model
(matcher/reference.py) calls the same clauses in the plainest way and is the executable spec.

A `Rulebook` bundles the functions of one *rules version*. Versions live side by side in
`RULEBOOKS`; a changed rule ships as a new version (a `Rulebook` made with
`dataclasses.replace` of the one before, with `changes` saying what changed) and is
switched on for a product by a rules adoption in its journal (matcher/versions.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from datetime import date
from decimal import Decimal
from typing import NamedTuple, TypeAlias

from matcher.facts import DECIMAL_CONTEXT, GRADE_RANK, Commitment, Lot, Order, OutletKind, PriceBasis, cut_down

# ---------------------------------------------------------------- eligibility (§E)


def grade_meets(lot_grade: str, min_grade: str) -> bool:
    """§E2: the lot's grade is at least the outlet's minimum grade (A > B > C)."""
    return GRADE_RANK[lot_grade] >= GRADE_RANK[min_grade]


def has_room(left: Decimal | None) -> bool:
    """§E3: an outlet (or lot) still has quantity left; None is a commitment without a cap."""
    return left is None or left > 0


def window_reaches(available_from: date, outlet_end: date) -> bool:
    """§E4, first half: the lot is available by the end of the outlet's window. The index archives
    outlets by this half alone: one whose window ended before a lot's `available_from` cannot take it."""
    return available_from <= outlet_end


def windows_overlap(available_from: date, expires_on: date, outlet_start: date, outlet_end: date) -> bool:
    """§E4: `available_from <= outlet end` and `outlet start <= expires_on` (an order runs
    deliver_from..deliver_to, a commitment valid_from..valid_to)."""
    return available_from <= outlet_end and outlet_start <= expires_on


def in_regions(county: str, township: str, regions: tuple[str, ...]) -> bool:
    """§E5: for an order, the lot's county or township is in `regions`, or `regions` is empty."""
    return not regions or county in regions or township in regions


def in_eligibility(
    county: str, cooperative_id: str, counties: tuple[str, ...] | frozenset[str], cooperatives: tuple[str, ...] | frozenset[str]
) -> bool:
    """§E6: for a commitment, the lot's county is in `eligible_counties` or its cooperative in
    `eligible_cooperatives`, or both lists are empty."""
    return not (counties or cooperatives) or county in counties or cooperative_id in cooperatives


def per_mu_room(planted_mu: Decimal, max_quantity_per_mu: Decimal, sold: Decimal, product: str) -> Decimal:
    """§U1 (and §E7): how much more a cooperative may sell under one commitment: its planted area of the
    product x `max_quantity_per_mu` less what it sold under it, cut down to whole units. Zero or less: not eligible."""
    allowance = DECIMAL_CONTEXT.multiply(planted_mu, max_quantity_per_mu)
    return cut_down(DECIMAL_CONTEXT.subtract(allowance, sold), product)


def order_takes(lot: Lot, order: Order) -> bool:
    """§E2, §E4, §E5: whether an order (with quantity left, not cancelled) may take from this lot: the
    three clauses above written out (the book asks this for every candidate; tests/unit/test_rulebook.py
    checks it is exactly `grade_meets and windows_overlap and in_regions`)."""
    regions = order.regions
    return (
        GRADE_RANK[lot.grade] >= GRADE_RANK[order.min_grade]
        and lot.available_from <= order.deliver_to
        and order.deliver_from <= lot.expires_on
        and (not regions or lot.county in regions or lot.township in regions)
    )


def commitment_takes(lot: Lot, commitment: Commitment, counties: frozenset[str], cooperatives: frozenset[str]) -> bool:
    """§E2, §E4, §E6: whether a commitment (with quantity left) may take from this lot, per-mu room aside
    (`counties`, `cooperatives`: its eligibility lists as sets): the three clauses above written out
    (tests/unit/test_rulebook.py checks it is exactly `windows_overlap and grade_meets and in_eligibility`)."""
    return (
        lot.available_from <= commitment.valid_to
        and commitment.valid_from <= lot.expires_on
        and GRADE_RANK[lot.grade] >= GRADE_RANK[commitment.min_grade]
        and (not (counties or cooperatives) or lot.county in counties or lot.cooperative_id in cooperatives)
    )


# ---------------------------------------------------------------- price (§P)


_new_tuple = tuple.__new__
"""Makes a NamedTuple from its values without the Python-level __new__ (a Price is made per quote)."""


class Price(NamedTuple):
    """What an outlet pays for a lot and why; for a commitment also the floor, the market price as of
    the as-of date (None: none known) and that date."""

    unit_price_fen: int
    price_basis: PriceBasis
    floor_price_fen: int | None = None
    market_price_fen: int | None = None
    price_as_of: date | None = None


def order_price(limit_price_fen: int) -> Price:
    """§P1: an order pays its `limit_price_fen`; basis `order_limit`."""
    return _new_tuple(Price, (limit_price_fen, "order_limit", None, None, None))


def as_of_date(available_from: date, valid_from: date) -> date:
    """§P2: the as-of date of a commitment's price is the later of the lot's `available_from` and the
    commitment's `valid_from`."""
    return available_from if available_from > valid_from else valid_from


def market_as_of(observations: list[tuple[date, int, int]], as_of: date) -> int | None:
    """§P3: of the observations (observed_on, journal_seq, price_fen) for the lot's product and grade at the
    commitment's reference market, the price of the one with the latest `observed_on` not after the as-of
    date, ties to the one later in the journal; None if there is none. (The book keeps them indexed by day,
    the later of a day replacing the earlier: matcher/shelves.py PriceSeries.)"""
    seen = [observation for observation in observations if observation[0] <= as_of]
    return max(seen)[2] if seen else None


def commitment_price(floor_price_fen: int, market_price_fen: int | None, as_of: date) -> Price:
    """§P4: a commitment pays max(floor, market): the market price if it is above the floor (basis
    `market`), otherwise the floor (basis `floor`, also when no market price is known)."""
    if market_price_fen is not None and market_price_fen > floor_price_fen:
        return _new_tuple(Price, (market_price_fen, "market", floor_price_fen, market_price_fen, as_of))
    return _new_tuple(Price, (floor_price_fen, "floor", floor_price_fen, market_price_fen, as_of))


def fill_quantity(lot_left: Decimal, outlet_limit: Decimal | None) -> Decimal:
    """§M3: a fill's quantity is min(lot left, what the outlet can take); None: the outlet has no limit."""
    return lot_left if outlet_limit is None or lot_left <= outlet_limit else outlet_limit


# ---------------------------------------------------------------- ranking (§M)


LotPriority: TypeAlias = tuple[date, int, int, str]
"""A sort key: where a resting lot stands for an arriving outlet, smaller first (a plain tuple: it is
made for every lot and compared millions of times). Version 1: (expires_on, 0 if registered-poor else 1,
journal_seq, lot_id); a version that ranks by a key of another shape widens this alias to it."""
OutletRank: TypeAlias = tuple[int, int, int, str]
"""A sort key: where an eligible outlet stands for an arriving lot, smaller first (a plain tuple, made
per lot for every commitment priced): (-unit_price_fen, 0 for an order else 1, journal_seq, outlet_id)."""


def lot_priority(lot: Lot, journal_seq: int) -> LotPriority:
    """§M2: for an arriving outlet, the best resting lot is the one that expires first, then lots with any
    registered-poor contribution before lots without, then earlier in the journal, then the smaller id."""
    return (lot.expires_on, 0 if lot.has_registered_poor else 1, journal_seq, lot.lot_id)


def outlet_rank(unit_price_fen: int, outlet_kind: OutletKind, journal_seq: int, outlet_id: str) -> OutletRank:
    """§M1: for an arriving lot, the best outlet pays the highest unit price, then orders before commitments,
    then earlier in the journal, then the smaller id."""
    return (-unit_price_fen, 0 if outlet_kind == "order" else 1, journal_seq, outlet_id)


# ---------------------------------------------------------------- shelves: where the index looks


ShelfKey: TypeAlias = tuple[str, ...]
"""A lot shelf: (grade, place kind, place name, ...): "anywhere", "county", "township" or "cooperative"."""
OrderShelfKey: TypeAlias = tuple[str, str | None]
"""An order shelf: (minimum grade, region), region None for orders that list none (anywhere)."""

GRADES_AT_LEAST = {grade: tuple(g for g in GRADE_RANK if GRADE_RANK[g] >= rank) for grade, rank in GRADE_RANK.items()}
"""§E2 as a table: the lot grades good enough for an outlet's minimum grade."""
GRADES_AT_MOST = {grade: tuple(g for g in GRADE_RANK if GRADE_RANK[g] <= rank) for grade, rank in GRADE_RANK.items()}
"""§E2 as a table: the outlet minimum grades a lot of this grade is good enough for."""


def lot_shelf_keys(lot: Lot) -> tuple[ShelfKey, ...]:
    """§E2, §E5, §E6 as places: a resting lot sits on the shelves of its grade anywhere, in its county,
    its township and its cooperative (every place an outlet's eligibility can name)."""
    grade = lot.grade
    return (
        (grade, "anywhere", ""),
        (grade, "county", lot.county),
        (grade, "township", lot.township),
        (grade, "cooperative", lot.cooperative_id),
    )


def lot_shelves_for_order(order: Order) -> list[ShelfKey]:
    """§E2, §E5 as places: the lot shelves that hold every lot an order may take: its grade or better,
    anywhere if it lists no region, else in the county or township of each region it lists."""
    grades = GRADES_AT_LEAST[order.min_grade]
    if not order.regions:
        return [(grade, "anywhere", "") for grade in grades]
    regions = dict.fromkeys(order.regions)
    return [(grade, place, region) for grade in grades for region in regions for place in ("county", "township")]


def lot_shelves_for_commitment(commitment: Commitment) -> list[ShelfKey]:
    """§E2, §E6 as places: the lot shelves that hold every lot a commitment may take: its grade or better,
    anywhere if it lists no county or cooperative, else from each listed county and cooperative."""
    grades = GRADES_AT_LEAST[commitment.min_grade]
    if not (commitment.eligible_counties or commitment.eligible_cooperatives):
        return [(grade, "anywhere", "") for grade in grades]
    places = [("county", county) for county in dict.fromkeys(commitment.eligible_counties)]
    places.extend(("cooperative", cooperative) for cooperative in dict.fromkeys(commitment.eligible_cooperatives))
    return [(grade, place, name) for grade in grades for place, name in places]


def order_shelf_keys(order: Order) -> list[OrderShelfKey]:
    """§E2, §E5 as places: an open order sits on the shelf of its minimum grade and each region it lists
    (None: anywhere)."""
    if not order.regions:
        return [(order.min_grade, None)]
    return [(order.min_grade, region) for region in dict.fromkeys(order.regions)]


@lru_cache(maxsize=4096)
def order_shelves_for_lot(grade: str, county: str, township: str) -> tuple[OrderShelfKey, ...]:
    """§E2, §E5 as places: the order shelves that hold every order that may take a lot of this grade, county
    and township: a minimum grade the lot meets, anywhere or in the lot's county or township."""
    places = (None, county) if township == county else (None, county, township)
    return tuple((minimum, place) for minimum in GRADES_AT_MOST[grade] for place in places)


def commitment_shelf_keys(commitment: Commitment) -> list[ShelfKey]:
    """§E2, §E6 as places: an open commitment sits on the shelf of its minimum grade and each county and
    cooperative it lists, or of anywhere."""
    grade = commitment.min_grade
    if not (commitment.eligible_counties or commitment.eligible_cooperatives):
        return [(grade, "anywhere", "")]
    keys: list[ShelfKey] = [(grade, "county", county) for county in dict.fromkeys(commitment.eligible_counties)]
    keys.extend((grade, "cooperative", name) for name in dict.fromkeys(commitment.eligible_cooperatives))
    return keys


def commitment_shelves_for_lot(grade: str, county: str, cooperative_id: str) -> list[ShelfKey]:
    """§E2, §E6 as places: the commitment shelves that hold every commitment that may take a lot of this
    grade from this county and cooperative. (Not cached, unlike the order shelves: one set per cooperative.)"""
    places = (("anywhere", ""), ("county", county), ("cooperative", cooperative_id))
    return [(minimum, place, name) for minimum in GRADES_AT_MOST[grade] for place, name in places]


# ---------------------------------------------------------------- a version of the rules


@dataclass(frozen=True)
class Rulebook:
    """The rules of one version. The book and the index call only these; the index also relies on one
    property every version must keep (tests/unit/test_rulebook.py checks it for each registered version):
    on one lot shelf, lot priority order is `expires_on` order (the index skips lots by expiry)."""

    version: int
    changes: str
    """What this version changed, in a sentence (version 1: the rules as first published)."""
    applies_from: date | None
    """The first day (UTC) of inputs the matching service journals under this version: on a product's first
    input recorded on or after it, the service journals the adoption of this version first
    (matcher/versions.py). None: from each journal's first entry."""
    lot_priority: Callable[[Lot, int], LotPriority]
    outlet_rank: Callable[[int, OutletKind, int, str], OutletRank]
    order_takes: Callable[[Lot, Order], bool]
    commitment_takes: Callable[[Lot, Commitment, frozenset[str], frozenset[str]], bool]
    per_mu_room: Callable[[Decimal, Decimal, Decimal, str], Decimal]
    order_price: Callable[[int], Price]
    as_of_date: Callable[[date, date], date]
    commitment_price: Callable[[int, int | None, date], Price]
    lot_shelf_keys: Callable[[Lot], tuple[ShelfKey, ...]]
    lot_shelves_for_order: Callable[[Order], list[ShelfKey]]
    lot_shelves_for_commitment: Callable[[Commitment], list[ShelfKey]]
    order_shelf_keys: Callable[[Order], list[OrderShelfKey]]
    order_shelves_for_lot: Callable[[str, str, str], tuple[OrderShelfKey, ...]]
    """(lot grade, county, township) -> order shelves."""
    commitment_shelf_keys: Callable[[Commitment], list[ShelfKey]]
    commitment_shelves_for_lot: Callable[[str, str, str], list[ShelfKey]]
    """(lot grade, county, cooperative_id) -> commitment shelves."""


VERSION_1 = Rulebook(
    version=1,
    changes="the rules as first published (docs/matching-rules.md, version 1)",
    applies_from=None,
    lot_priority=lot_priority,
    outlet_rank=outlet_rank,
    order_takes=order_takes,
    commitment_takes=commitment_takes,
    per_mu_room=per_mu_room,
    order_price=order_price,
    as_of_date=as_of_date,
    commitment_price=commitment_price,
    lot_shelf_keys=lot_shelf_keys,
    lot_shelves_for_order=lot_shelves_for_order,
    lot_shelves_for_commitment=lot_shelves_for_commitment,
    order_shelf_keys=order_shelf_keys,
    order_shelves_for_lot=order_shelves_for_lot,
    commitment_shelf_keys=commitment_shelf_keys,
    commitment_shelves_for_lot=commitment_shelves_for_lot,
)

RULEBOOKS: dict[int, Rulebook] = {1: VERSION_1}
"""Every rules version this matcher can decide under, by number. A journal's entries name theirs."""


def rulebook(version: int) -> Rulebook:
    """The rules of a version; ValueError naming the versions known for one this matcher does not have."""
    found = RULEBOOKS.get(version)
    if found is None:
        raise ValueError(f"rules version {version!r} is unknown to this matcher (it knows {sorted(RULEBOOKS)})")
    return found

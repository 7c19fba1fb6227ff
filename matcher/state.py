"""What a book holds about each lot and outlet, what an outlet offers a lot, and the read-only views.

Plain mutable records (slots, no behaviour beyond their constructors) that the book
(matcher/book.py) changes as it folds the journal, the index (matcher/shelves.py) sorts, and
snapshots (matcher/snapshot.py) write out and read back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import Field, dataclass, fields
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple, Protocol, TypeAlias, TypeVar, cast, final

from matcher.facts import Commitment, Fill, Lot, Order, OutletKind
from matcher.money import HouseholdWeights
from matcher.rules import LotPriority, OutletRank, Price, Rulebook

# ---------------------------------------------------------------- read-only views


@dataclass(frozen=True, slots=True)
class RestingLot:
    """An offer on the book: a lot, what is left of it, and where it came in the journal."""

    lot: Lot
    quantity_left: Decimal
    journal_seq: int


@dataclass(frozen=True, slots=True)
class OpenOutlet:
    """An order or commitment that can still take produce, and how much (None: a commitment without cap)."""

    outlet_kind: OutletKind
    outlet: Order | Commitment
    quantity_left: Decimal | None
    journal_seq: int
    filled_by_cooperative: tuple[tuple[str, Decimal], ...]


# ---------------------------------------------------------------- book state


class LotState:
    """A lot in the book, what is left of it, and its priority under the rules in force (§M2)."""

    __slots__ = ("lot", "seq", "left", "priority", "weights")

    def __init__(self, lot: Lot, seq: int, rules: Rulebook) -> None:
        self.lot = lot
        self.seq = seq
        self.left = lot.quantity
        self.priority: LotPriority = rules.lot_priority(lot, seq)
        self.weights: HouseholdWeights | None = None  # its households' weights, made at its first fill


@final
class OrderState:
    """An order in the book, its unfilled rest, and its rank under the rules in force (§M1): an order's
    price does not depend on the lot, so orders can be kept ranked once."""

    __slots__ = ("order", "seq", "left", "cancelled", "rank", "archived")

    def __init__(self, order: Order, seq: int, rules: Rulebook) -> None:
        self.order = order
        self.seq = seq
        self.left: Decimal = order.quantity
        self.cancelled = False
        self.rank: OutletRank = rules.outlet_rank(order.limit_price_fen, "order", seq, order.order_id)
        self.archived = False


@final
class CommitmentState:
    """A commitment in the book: what is left under its cap and what each cooperative sold under it."""

    __slots__ = ("commitment", "seq", "left", "counties", "cooperatives", "filled_by_cooperative", "archived")

    def __init__(self, commitment: Commitment, seq: int) -> None:
        self.commitment = commitment
        self.seq = seq
        self.left: Decimal | None = commitment.cap_quantity
        self.counties = frozenset(commitment.eligible_counties)
        self.cooperatives = frozenset(commitment.eligible_cooperatives)
        self.filled_by_cooperative: dict[str, Decimal] = {}
        self.archived = False


OutletState: TypeAlias = OrderState | CommitmentState
"""An order's or commitment's state in the book. The book tells the two apart by `type(state) is OrderState` (the fastest test); both
classes are final, so the type checker narrows the other branch to CommitmentState."""


class Quote:
    """What an eligible outlet offers a lot: its price (§P) and the most it can take from it (None: no limit)."""

    __slots__ = ("outlet", "outlet_kind", "price", "limit")

    def __init__(self, outlet: OutletState, outlet_kind: OutletKind, price: Price, limit: Decimal | None) -> None:
        self.outlet = outlet
        self.outlet_kind = outlet_kind
        self.price = price
        self.limit = limit


class CommitmentPrice(NamedTuple):
    """What a commitment would pay for a lot and its rank for it (§M1, §P2-§P4); how much it may take is
    settled only if the lot reaches it. Sorted by rank (ranks are unique: they end with the id). Made with
    `tuple.__new__(CommitmentPrice, (...))` where speed matters: one is made per lot per commitment priced."""

    rank: OutletRank
    state: CommitmentState
    price: Price


# ---------------------------------------------------------------- making fills


class _DataclassInstance(Protocol):
    """What `dataclasses.fields` takes: an instance or class of a dataclass (typeshed's own protocol lives in
    `_typeshed`, a module only type checkers have)."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]


_Dataclass = TypeVar("_Dataclass", bound=_DataclassInstance)


def frozen_builder(cls: type[_Dataclass]) -> Callable[..., _Dataclass]:
    """A fast keyword-only constructor for a frozen slots dataclass: every field by name, set directly.
    The generated __init__ goes through object.__setattr__ once per field, which for a Fill costs more
    than the rest of the fill; the object made is the same (tests/unit/test_rulebook.py). Made the way
    dataclasses makes __init__: from source naming the fields."""
    names = [field.name for field in fields(cls)]
    namespace: dict[str, object] = {"new": object.__new__, "cls": cls}
    namespace.update({f"set_{name}": getattr(cls, name).__set__ for name in names})
    source = f"def build(*, {', '.join(names)}):\n    instance = new(cls)\n"
    source += "".join(f"    set_{name}(instance, {name})\n" for name in names)
    source += "    return instance\n"
    exec(source, namespace)  # noqa: S102 (source made above from the dataclass's own field names)
    # Made by the exec above, with the fields of `cls` as its keyword-only parameters.
    build = cast(Callable[..., _Dataclass], namespace["build"])
    build.__qualname__ = build.__name__ = f"new_{cls.__name__.lower()}"
    return build


new_fill = frozen_builder(Fill)
"""Fill(**fields) without the frozen dataclass's per-field cost."""

"""The report's typed rows: what the page shows, already summed up from the log.

Money is integer fen, quantities and areas exact `Decimal`, dates `datetime.date`. Nothing here
holds one row per event of a large log: fills are summed per product and month, commitments
keep their own fills (a small share of all fills), households and villages are few.
The full ledgers go to CSV/JSON files (`report_export.py`), not into the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from farmlink.audit.model import Finding


@dataclass(frozen=True, slots=True)
class Phase:
    """One step of the audit and the seconds it took."""

    name: str
    seconds: float


@dataclass(frozen=True)
class AuditSummary:
    """The audit's verdict and figures, as `AuditResult.summary()` gives them."""

    events_audited: int = 0
    source: str = ""
    clean: bool = True
    state_hash: str = ""
    journal_inputs: int = 0
    fills: int = 0
    findings: int = 0
    reconciled: bool = False
    phases: tuple[Phase, ...] = ()
    workers: int = 1
    worker_cpu: tuple[Phase, ...] = ()  # CPU seconds the worker processes spent per check (they overlap)
    since: tuple[int, int] | None = None  # an incremental audit: events before the checkpoint, events after it

    @property
    def seconds(self) -> float:
        return sum(phase.seconds for phase in self.phases)


@dataclass(frozen=True, slots=True)
class CitedEvent:
    """An event a finding points at, shown in the page so the link lands on it."""

    event_id: str
    schema: str
    stream_id: str
    stream_version: int
    global_position: int
    event_type: str
    occurred_at: str
    payload: str  # pretty JSON, cut to a readable length


@dataclass(frozen=True, slots=True)
class FillRow:
    """One recorded fill with its business date (the later of the lot's and the outlet's start)."""

    global_position: int
    event_id: str
    fill_id: str
    product: str
    business_date: date | None
    lot_id: str
    cooperative_id: str
    grade: str
    outlet_kind: str
    outlet_id: str
    buyer_id: str
    quantity: Decimal
    unit_price_fen: int
    price_basis: str
    revenue_fen: int
    floor_price_fen: int | None
    market_price_fen: int | None
    price_as_of: date | None

    @property
    def at_floor(self) -> bool:
        return self.price_basis == "floor"

    @property
    def above_market_fen(self) -> Decimal:
        """What a floor activation paid above the market price as of its date (all of it when no market price was known)."""
        if not self.at_floor:
            return Decimal(0)
        market = self.market_price_fen or 0
        return (self.unit_price_fen - market) * self.quantity


@dataclass(slots=True)
class ProductMonth:
    """Fills of one product in one month (by business date)."""

    product: str
    month: str  # YYYY-MM, or "unknown"
    fills: int = 0
    quantity: Decimal = Decimal(0)
    revenue_fen: int = 0
    floor_activations: int = 0


@dataclass(frozen=True, slots=True)
class PricePoint:
    """A market price observation."""

    observed_on: date
    grade: str
    price_fen: int


@dataclass
class Commitment:
    """A floor commitment, its fills, and the reference market's prices for its product."""

    commitment_id: str
    buyer_id: str
    product: str
    min_grade: str
    floor_price_fen: int
    reference_market: str
    valid_from: date | None
    valid_to: date | None
    fills: list[FillRow] = field(default_factory=list)
    prices: list[PricePoint] = field(default_factory=list)

    @property
    def activations(self) -> int:
        return sum(fill.at_floor for fill in self.fills)

    @property
    def quantity(self) -> Decimal:
        return sum((fill.quantity for fill in self.fills), Decimal(0))

    @property
    def revenue_fen(self) -> int:
        return sum(fill.revenue_fen for fill in self.fills)

    @property
    def above_market_fen(self) -> Decimal:
        return sum((fill.above_market_fen for fill in self.fills), Decimal(0))


@dataclass(frozen=True, slots=True)
class HouseholdIncome:
    """Fen paid to one household, all products together."""

    household_id: str
    cooperative_id: str
    village: str
    township: str
    county: str
    registered_poor: bool
    paid_fen: int


@dataclass(frozen=True, slots=True)
class Coverage:
    """Registered-poor households with and without industry income, in a village or a county."""

    county: str
    township: str  # "" for a county
    village: str  # "" for a county
    households: int
    registered_poor: int
    with_income: int
    paid_fen: int

    @property
    def without_income(self) -> int:
        return self.registered_poor - self.with_income


@dataclass(frozen=True, slots=True)
class PlanRow:
    """A township's industry plan beside what was planted and paid."""

    plan_id: str
    county: str
    township: str
    product: str
    planned_area_mu: Decimal
    planted_area_mu: Decimal
    target_household_income_fen: int
    earning_households: int
    average_household_income_fen: int


@dataclass
class ReportData:
    """Everything the page shows."""

    summary: AuditSummary = field(default_factory=AuditSummary)
    findings: list[Finding] = field(default_factory=list)
    cited: dict[str, CitedEvent] = field(default_factory=dict)
    months: list[ProductMonth] = field(default_factory=list)
    commitments: list[Commitment] = field(default_factory=list)
    households: list[HouseholdIncome] = field(default_factory=list)
    villages: list[Coverage] = field(default_factory=list)
    counties: list[Coverage] = field(default_factory=list)
    plans: list[PlanRow] = field(default_factory=list)
    buyers: int = 0
    first_day: date | None = None
    last_day: date | None = None

    @property
    def county_names(self) -> list[str]:
        """The log's own counties: those of its cooperatives and plans, in order."""
        return sorted({c.county for c in self.counties} | {p.county for p in self.plans})

    @property
    def products(self) -> list[str]:
        return sorted({m.product for m in self.months})

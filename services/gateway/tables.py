"""The gateway's own tables in schema `gateway` (services/gateway/sql), as the batch unit of work writes them:
each table's name, key and columns. The projection (services/gateway/projection.py) fills them."""

from events.unit import Table

PARTIES = Table(
    "parties",
    ("party",),
    (("party", "text"), ("kind", "text"), ("party_id", "text"), ("name", "text"), ("public_key", "text"), ("revoked", "text")),
)
HOUSEHOLDS = Table(
    "households",
    ("household_id",),
    (
        ("household_id", "text"),
        ("cooperative_id", "text"),
        ("village", "text"),
        ("registered_poor", "boolean"),
        ("county", "text"),
        ("township", "text"),
    ),
)
LOTS = Table(
    "lots",
    ("lot_id",),
    (
        ("lot_id", "text"),
        ("cooperative_id", "text"),
        ("product", "text"),
        ("grade", "text"),
        ("quantity", "numeric"),
        ("available_from", "date"),
        ("expires_on", "date"),
        ("contributions", "jsonb"),
    ),
)
OFFER_ROWS = Table(
    "offers",
    ("lot_id",),
    (
        ("lot_id", "text"),
        ("product", "text"),
        ("grade", "text"),
        ("cooperative_id", "text"),
        ("county", "text"),
        ("township", "text"),
        ("quantity_left", "numeric"),
        ("available_from", "date"),
        ("expires_on", "date"),
        ("open", "boolean"),
    ),
)
FILL_ROWS = Table(
    "fills",
    ("fill_id",),
    (
        ("fill_id", "text"),
        ("buyer_id", "text"),
        ("cooperative_id", "text"),
        ("lot_id", "text"),
        ("product", "text"),
        ("grade", "text"),
        ("outlet_kind", "text"),
        ("outlet_id", "text"),
        ("quantity", "numeric"),
        ("unit_price_fen", "bigint"),
        ("price_basis", "text"),
        ("revenue_fen", "bigint"),
        ("household_income_fen", "jsonb"),
        ("floor_price_fen", "bigint"),
        ("market_price_fen", "bigint"),
        ("price_as_of", "date"),
        ("position", "bigint"),
        ("committed_at", "timestamptz"),
    ),
)
COMMITMENTS = Table(
    "commitments", ("commitment_id",), (("commitment_id", "text"), ("buyer_id", "text"), ("product", "text"), ("terms", "jsonb"))
)
RECEIPT_ROWS = Table(
    "receipts",
    ("message_id", "service", "status"),
    (("message_id", "text"), ("service", "text"), ("status", "text"), ("receipt", "jsonb")),
)
PLANTINGS = Table(
    "plantings",
    ("planting_id",),
    (
        ("planting_id", "text"),
        ("cooperative_id", "text"),
        ("county", "text"),
        ("township", "text"),
        ("product", "text"),
        ("area_mu", "numeric"),
    ),
)
PLANS = Table(
    "plans",
    ("plan_id",),
    (
        ("plan_id", "text"),
        ("county", "text"),
        ("township", "text"),
        ("product", "text"),
        ("area_mu", "numeric"),
        ("target_household_income_fen", "bigint"),
    ),
)
INCOMES = Table("incomes", ("household_id", "product"), (("household_id", "text"), ("product", "text"), ("paid_fen", "bigint")))
PAIRINGS = Table(
    "pairings",
    ("pairing_id",),
    (
        ("pairing_id", "text"),
        ("kind", "text"),
        ("helper", "text"),
        ("helped", "text"),
        ("helped_kind", "text"),
        ("helped_township", "text"),
        ("team", "text"),
    ),
)
SUPPORT = Table(
    "support", ("delivery_id",), (("delivery_id", "text"), ("pairing_id", "text"), ("kind", "text"), ("value_fen", "bigint"))
)
PROJECTS = Table(
    "projects", ("project_id",), (("project_id", "text"), ("name", "text"), ("owner_team", "text"), ("due_on", "date"))
)
MILESTONES = Table(
    "milestones",
    ("project_id", "milestone_id"),
    (("project_id", "text"), ("milestone_id", "text"), ("due_on", "date"), ("reached_on", "date")),
)
DEAD_LETTERS = Table("dead_letters", ("consumer",), (("consumer", "text"), ("count", "bigint")))

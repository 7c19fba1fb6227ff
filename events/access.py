"""Who may do what on Kafka: the principals and their ACLs, as data, in one place.

The local launcher (`farmlink infra up`) creates a SCRAM-SHA-512 credential for every
principal here and exactly these ACLs (`acl_bindings()`); every Kafka client in farmlink
names the principal it acts as (`events.settings.kafka_options`); the integration test
`tests/integration/test_kafka_acls.py` walks the whole matrix against the real broker; the
table in docs/architecture.md is `matrix_table()` (a unit test checks they agree).

Kafka authorises per topic and per consumer group, never per message. So the broker
enforces *which topics* a principal may write and read; it cannot tell one cooperative's
harvest from another's on `farmlink.cooperative.input`, nor one buyer's fills from another's
on `farmlink.matching.fills`. "Only for itself" on input topics is enforced by the services,
which verify each input's signature against the producer it names. "Only its own fills" is
enforced by per-party topics: the feeds service (services/feeds) copies each buyer's fills and
buyer events, and each cooperative's receipts, events and its lots' fills, onto
`farmlink.party.<kind>.<token>` (contracts.topics.party_topic), and every registered buyer and
cooperative gets a principal of its own (`party_principal`) that reads that topic and no other
party's. Those principals are created at run time, when the party registers, by the feeds
service's registrar (services/feeds/registrar.py, as PARTY_REGISTRAR, the one holder of ALTER
on the cluster besides the super user); they are not in PRINCIPALS. The shared `cooperative`
and `buyer` principals stay for the operator's own tools (`farmlink publish`, the demo): they
write inputs and read receipts, and read no fills.
"""

from dataclasses import dataclass
from pathlib import Path

from contracts.topics import (
    BUYER_EVENTS,
    BUYER_INPUT,
    COOPERATIVE_EVENTS,
    COOPERATIVE_INPUT,
    DEAD_LETTER,
    FILLS,
    MARKET_EVENTS,
    MARKET_INPUT,
    MATCHING_JOURNAL,
    OFFERS,
    PAIRING_EVENTS,
    PARTY_TOPIC_PREFIX,
    PAIRING_INPUT,
    RECEIPTS,
    RELAY_CHECKPOINTS,
    SEQUENCE_MARKERS,
    SETTLEMENT_EVENTS,
    SETTLEMENT_INPUT,
    TOPICS,
    party_name,
    party_topic,
)

ADMIN = "admin"
"""The super user (`super.users`): the launcher, the broker's own inter-broker and controller
connections, and test or benchmark harnesses that create scratch topics. No service runs as it."""

AUDITOR = "auditor"
COOPERATIVE = "cooperative"
BUYER = "buyer"
PRICE_FEED = "price-feed"
SETTLEMENT_DESK = "settlement-desk"
PAIRING_OFFICE = "pairing-office"
GATEWAY = "gateway"
"""The HTTP gateway (services/gateway): posts parties' signed inputs, projects what it serves."""
PARTY_REGISTRAR = "party-registrar"
"""The feeds service's admin client (services/feeds/registrar.py): creates party topics, party principals
(SCRAM users) and their ACLs. ALTER on the cluster lets it grant anything: only the feeds process holds it."""
CLUSTER = "kafka-cluster"
"""The name of Kafka's one CLUSTER resource."""

SCRAM_MECHANISM = "SCRAM-SHA-512"

ALL_TOPICS: tuple[str, ...] = tuple(topic.name for topic in TOPICS)
GROUP_PREFIX = "farmlink."
BUYER_GROUP_PREFIX = "buyer."
"""Buyer systems that subscribe to offers and fills with a consumer group name it ``buyer.<anything>``."""


def service_principal(service: str) -> str:
    """The principal a farmlink service connects as: ``service-<name>``."""
    return f"service-{service}"


@dataclass(frozen=True)
class Principal:
    """One Kafka identity and everything it may do; anything not listed is denied."""

    name: str
    who: str
    write: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    """Consumer groups it may join and commit offsets in (READ on the group, literal name)."""
    group_prefix: str | None = None
    """Groups of its own it may join, named with this prefix (READ on PREFIXED groups)."""
    describe_group_prefix: str | None = None
    """Groups whose offsets it may look at (DESCRIBE on groups with this prefix), not join."""
    transactional_ids: tuple[str, ...] = ()
    """Kafka transactional ids it may use (WRITE on TRANSACTIONAL_ID, literal): its outbox relay's."""
    describe: tuple[str, ...] = ()
    """Topics whose offsets it may look at (DESCRIBE on the topic), not read: for consumer lag."""
    write_prefixes: tuple[str, ...] = ()
    """Topics it may write, by name prefix (WRITE on PREFIXED topics): the feeds service's party topics."""
    create_prefixes: tuple[str, ...] = ()
    """Topics it may create, by name prefix (CREATE on PREFIXED topics)."""
    cluster: tuple[str, ...] = ()
    """Operations on the cluster (ALTER: SCRAM users and ACLs; DESCRIBE: read them back)."""


def relay_transactional_id(schema: str) -> str:
    """The transactional id of a schema's outbox relay (events/relay.py)."""
    return f"farmlink.relay.{schema}"


def _service(
    name: str,
    read: tuple[str, ...],
    write: tuple[str, ...],
    groups: tuple[str, ...] = (),
    write_prefixes: tuple[str, ...] = (),
) -> Principal:
    # Every service's relay publishes in Kafka transactions under its own id, with a checkpoint
    # it reads back after a crash (events/relay.py).
    return Principal(
        service_principal(name),
        f"the {name} service",
        write=(*write, RECEIPTS, DEAD_LETTER, RELAY_CHECKPOINTS),
        read=(*read, RELAY_CHECKPOINTS),
        groups=groups or (f"farmlink.{name}",),
        transactional_ids=(relay_transactional_id(name),),
        write_prefixes=write_prefixes,
    )


PRINCIPALS: tuple[Principal, ...] = (
    _service("cooperative", read=(COOPERATIVE_INPUT,), write=(COOPERATIVE_EVENTS, SEQUENCE_MARKERS)),
    _service("buyer", read=(BUYER_INPUT,), write=(BUYER_EVENTS, SEQUENCE_MARKERS)),
    _service("market", read=(MARKET_INPUT,), write=(MARKET_EVENTS, SEQUENCE_MARKERS)),
    _service(
        "matching",
        read=(COOPERATIVE_EVENTS, BUYER_EVENTS, MARKET_EVENTS, SEQUENCE_MARKERS),
        write=(MATCHING_JOURNAL, FILLS, OFFERS),
    ),
    _service(
        "settlement",
        read=(SETTLEMENT_INPUT, COOPERATIVE_EVENTS, FILLS),
        write=(SETTLEMENT_EVENTS,),
        groups=("farmlink.settlement.input", "farmlink.settlement.events"),
    ),
    _service(
        "pairing",
        read=(PAIRING_INPUT, COOPERATIVE_EVENTS, BUYER_EVENTS, FILLS, SETTLEMENT_EVENTS, PAIRING_EVENTS),
        write=(PAIRING_EVENTS,),
        groups=("farmlink.pairing", "farmlink.pairing.facts"),
    ),
    _service(
        "feeds",
        read=(COOPERATIVE_EVENTS, BUYER_EVENTS, FILLS, RECEIPTS),
        write=(),
        write_prefixes=(PARTY_TOPIC_PREFIX,),
    ),
    Principal(
        PARTY_REGISTRAR,
        "the feeds service's admin client: party topics, party principals and their ACLs",
        create_prefixes=(PARTY_TOPIC_PREFIX,),
        cluster=("ALTER", "DESCRIBE"),
    ),
    Principal(
        COOPERATIVE,
        "the operator's cooperative inputs (farmlink publish): plantings, harvests",
        write=(COOPERATIVE_INPUT,),
        read=(RECEIPTS,),
    ),
    Principal(
        BUYER,
        "the operator's buyer inputs (farmlink publish): orders, commitments; offers",
        write=(BUYER_INPUT,),
        read=(OFFERS, RECEIPTS),
        group_prefix=BUYER_GROUP_PREFIX,
    ),
    Principal(PRICE_FEED, "the market price feed", write=(MARKET_INPUT,), read=(RECEIPTS,)),
    Principal(SETTLEMENT_DESK, "the settlement desk: deliveries, payments, plans", write=(SETTLEMENT_INPUT,), read=(RECEIPTS,)),
    Principal(
        PAIRING_OFFICE,
        "the pairing office: pairings, support, projects, supervision rounds (reads the facts' topics for a round's cut-off)",
        write=(PAIRING_INPUT,),
        read=(RECEIPTS, COOPERATIVE_EVENTS, BUYER_EVENTS, FILLS, SETTLEMENT_EVENTS, PAIRING_EVENTS),
    ),
    Principal(AUDITOR, "auditors: read everything, write nothing", read=ALL_TOPICS, describe_group_prefix=GROUP_PREFIX),
    Principal(
        GATEWAY,
        "the HTTP gateway: posts parties' signed inputs; projects registrations, plantings, lots, commitments, fills, "
        "offers, plans, payments, pairings, support and projects (the pairing office's page), receipts and dead letters (counted); "
        "looks at the groups' offsets",
        write=(COOPERATIVE_INPUT, BUYER_INPUT, DEAD_LETTER, RELAY_CHECKPOINTS),
        read=(
            COOPERATIVE_EVENTS,
            BUYER_EVENTS,
            FILLS,
            OFFERS,
            SETTLEMENT_EVENTS,
            PAIRING_EVENTS,
            RECEIPTS,
            DEAD_LETTER,
            RELAY_CHECKPOINTS,
        ),
        groups=("farmlink.gateway",),
        describe_group_prefix=GROUP_PREFIX,
        transactional_ids=(relay_transactional_id(GATEWAY),),
        describe=(
            MARKET_EVENTS,
            MATCHING_JOURNAL,
            SEQUENCE_MARKERS,
            COOPERATIVE_INPUT,
            BUYER_INPUT,
            MARKET_INPUT,
            SETTLEMENT_INPUT,
            PAIRING_INPUT,
        ),
    ),
)
"""Every principal except the super user, with its grants."""

BY_NAME: dict[str, Principal] = {p.name: p for p in PRINCIPALS}
ALL_PRINCIPALS: tuple[str, ...] = (ADMIN, *BY_NAME)
"""Every principal that gets a SCRAM credential."""

INPUT_PRODUCER: dict[str, str] = {
    COOPERATIVE_INPUT: COOPERATIVE,
    BUYER_INPUT: BUYER,
    MARKET_INPUT: PRICE_FEED,
    SETTLEMENT_INPUT: SETTLEMENT_DESK,
    PAIRING_INPUT: PAIRING_OFFICE,
}
"""Which producer principal writes each input topic (`farmlink publish` connects as it)."""

CONSUMER_GROUPS: tuple[str, ...] = tuple(group for p in PRINCIPALS if p.name != GATEWAY for group in p.groups)
"""Every consumer group the services use (the gateway's, `farmlink.gateway`, is not one: waiting until the
services have caught up does not wait for a gateway that may not run)."""


@dataclass(frozen=True, order=True)
class AclBinding:
    """One ALLOW ACL, from any host: principal may do operation on the resource."""

    principal: str
    resource_type: str  # TOPIC | GROUP | TRANSACTIONAL_ID | CLUSTER
    resource_name: str
    pattern_type: str  # LITERAL | PREFIXED
    operation: str  # READ | WRITE | DESCRIBE | CREATE | ALTER

    @property
    def kafka_principal(self) -> str:
        return f"User:{self.principal}"


def bindings_of(p: Principal) -> set[AclBinding]:
    """The ALLOW ACLs one principal's grants mean. READ and WRITE imply DESCRIBE in Kafka."""
    acls = {AclBinding(p.name, "TOPIC", topic, "LITERAL", "WRITE") for topic in p.write}
    acls |= {AclBinding(p.name, "TOPIC", topic, "LITERAL", "READ") for topic in p.read}
    acls |= {AclBinding(p.name, "GROUP", group, "LITERAL", "READ") for group in p.groups}
    if p.group_prefix:
        acls.add(AclBinding(p.name, "GROUP", p.group_prefix, "PREFIXED", "READ"))
    if p.describe_group_prefix:
        acls.add(AclBinding(p.name, "GROUP", p.describe_group_prefix, "PREFIXED", "DESCRIBE"))
    acls |= {AclBinding(p.name, "TRANSACTIONAL_ID", tid, "LITERAL", "WRITE") for tid in p.transactional_ids}
    acls |= {AclBinding(p.name, "TOPIC", topic, "LITERAL", "DESCRIBE") for topic in p.describe}
    acls |= {AclBinding(p.name, "TOPIC", prefix, "PREFIXED", "WRITE") for prefix in p.write_prefixes}
    acls |= {AclBinding(p.name, "TOPIC", prefix, "PREFIXED", "CREATE") for prefix in p.create_prefixes}
    acls |= {AclBinding(p.name, "CLUSTER", CLUSTER, "LITERAL", operation) for operation in p.cluster}
    return acls


def acl_bindings() -> list[AclBinding]:
    """The ACLs the matrix means (PRINCIPALS; party principals are the registrar's), sorted."""
    return sorted(set().union(*(bindings_of(p) for p in PRINCIPALS)))


PARTY_INPUT = {"buyer": BUYER_INPUT, "cooperative": COOPERATIVE_INPUT}
"""The input topic each kind of party with a principal of its own writes."""


def party_principal(kind: str, party_id: str) -> Principal:
    """The principal of one registered buyer or cooperative, named `<kind>.<token>` (contracts.topics.party_name):
    READ on its own party topic and on consumer groups named `<kind>.<token>.<anything>`, WRITE on its kind's
    input topic (the service still checks each input's signature), and for a buyer READ on the offers."""
    name = party_name(kind, party_id)
    return Principal(
        name,
        f"{kind} {party_id}",
        write=(PARTY_INPUT[kind],),
        read=(party_topic(kind, party_id), *((OFFERS,) if kind == "buyer" else ())),
        group_prefix=f"{name}.",
    )


def party_acl_bindings(kind: str, party_id: str) -> list[AclBinding]:
    """The ACLs of one party's principal, sorted (services/feeds/registrar.py creates exactly these)."""
    return sorted(bindings_of(party_principal(kind, party_id)))


def may_write(principal: str, topic: str) -> bool:
    return principal == ADMIN or topic in BY_NAME[principal].write


def may_read(principal: str, topic: str) -> bool:
    return principal == ADMIN or topic in BY_NAME[principal].read


PARTY_COLUMN = "`<kind>.<token>`"
"""The matrix's column for every registered buyer's and cooperative's own principal (`party_principal`)."""


def _party_cell(topic: str) -> str:
    if topic in PARTY_INPUT.values():
        return "W (its kind's)"
    return "R (buyers)" if topic == OFFERS else "-"


def _party_topics_row() -> str:
    cells = []
    for p in PRINCIPALS:
        rights = ("W" if p.write_prefixes else "") + ("C" if p.create_prefixes else "")
        cells.append(rights or "-")
    return f"| `{PARTY_TOPIC_PREFIX}<kind>.<token>` | " + " | ".join(cells) + " | R (its own) |"


def matrix_table() -> str:
    """The matrix as a Markdown table (docs/architecture.md holds exactly this)."""
    names = [p.name for p in PRINCIPALS]
    lines = [
        "| topic | " + " | ".join(f"`{n}`" for n in names) + f" | {PARTY_COLUMN} |",
        "| --- |" + " :-: |" * (len(names) + 1),
    ]
    for topic in ALL_TOPICS:
        cells = []
        for name in names:
            rights = ("R" if may_read(name, topic) else "") + ("W" if may_write(name, topic) else "")
            described = "D" if not rights and topic in BY_NAME[name].describe else ""
            cells.append(rights or described or "-")
        lines.append(f"| `{topic}` | " + " | ".join(cells) + f" | {_party_cell(topic)} |")
    lines.append(_party_topics_row())
    groups = []
    for p in PRINCIPALS:
        joined = ", ".join([f"`{g}`" for g in p.groups] + ([f"`{p.group_prefix}*`"] if p.group_prefix else []))
        described = f"describe `{p.describe_group_prefix}*`" if p.describe_group_prefix else ""
        groups.append(" ".join(part for part in (joined, described) if part) or "-")
    lines.append("| consumer groups | " + " | ".join(groups) + " | `<kind>.<token>.*` |")
    lines.append(
        "| transactional ids | "
        + " | ".join(", ".join(f"`{t}`" for t in p.transactional_ids) or "-" for p in PRINCIPALS)
        + " | - |"
    )
    lines.append("| cluster | " + " | ".join(", ".join(p.cluster) or "-" for p in PRINCIPALS) + " | - |")
    return "\n".join(lines) + "\n"


def party_credentials_file(home: Path, kind: str, party_id: str) -> Path:
    """Where the feeds service's registrar leaves a new party principal's password, once, for
    `farmlink parties credentials` to hand over and delete: `<farmlink home>/secrets/parties/<kind>.<token>.json` (0600)."""
    return home / "secrets" / "parties" / f"{party_name(kind, party_id)}.json"

"""A registered buyer's or cooperative's own Kafka access, which the operator hands over (`farmlink parties`;
docs/architecture.md, "Party topics").

When a buyer or a cooperative registers, the feeds service (services/feeds) creates its topic
(`farmlink.party.<kind>.<token>`), its principal (`<kind>.<token>`, SCRAM-SHA-512, random password) and its ACLs,
and leaves the password in `<farmlink home>/secrets/parties/<kind>.<token>.json` (0600). `farmlink parties
credentials` prints that file once and deletes it: the broker keeps only the salted SCRAM hash, so a lost
password is not printed again (revoke the key, or ask the operator to reissue: not built yet).
"""

from __future__ import annotations

import json
from typing import Any

from contracts.topics import PARTY_TOPIC_KINDS, party_name, party_topic
from events.access import party_credentials_file
from events.settings import settings


class PartyError(ValueError):
    """A party argument farmlink cannot use, or credentials that are not there; the message says why."""


def parse_party(text: str) -> tuple[str, str]:
    """`buyer:<buyer_id>` or `cooperative:<cooperative_id>` -> (kind, id)."""
    kind, colon, party_id = text.partition(":")
    if not colon or kind not in PARTY_TOPIC_KINDS or not party_id:
        raise PartyError(
            f"{text!r}: write {' or '.join(f'{k}:<{k}_id>' for k in PARTY_TOPIC_KINDS)}, e.g. buyer:tongren-school-canteens"
        )
    return kind, party_id


def access_of(kind: str, party_id: str) -> dict[str, Any]:
    """What a party's system needs besides its password: bootstrap, principal, topic, consumer group prefix."""
    name = party_name(kind, party_id)
    return {
        "party": f"{kind}:{party_id}",
        "bootstrap": settings().bootstrap,
        "principal": name,
        "topic": party_topic(kind, party_id),
        "group_prefix": f"{name}.",
    }


def take_credentials(kind: str, party_id: str) -> dict[str, Any]:
    """The party's credentials, read from their 0600 file, which is deleted: a second call raises PartyError."""
    path = party_credentials_file(settings().home, kind, party_id)
    try:
        offer = json.loads(path.read_text())
    except FileNotFoundError:
        raise PartyError(
            f"no credentials waiting for {kind}:{party_id} ({path}): they were handed out already, or the party is "
            "not registered (yet: the feeds service creates them when it sees the registration; `farmlink status`)"
        ) from None
    path.unlink()
    return access_of(kind, party_id) | {"password": offer["password"], "mechanism": offer["mechanism"]}

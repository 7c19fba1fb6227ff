"""Kafka users and ACLs: the local broker's SCRAM users and the ACL matrix of events/access.py, kept exactly in
step through confluent-kafka's AdminClient (aiokafka 0.14 has no ACL or SCRAM API).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from contracts.topics import PARTY_TOPIC_KINDS
from events import access
from events.settings import Settings, kafka_options
from farmlink.operations.infra.kafka import _kafka_password
from farmlink.operations.infra.layout import InfraError, Layout


SCRAM_ITERATIONS = 4096
_ACL_TIMEOUT_S = 15.0


def _confluent_config(bootstrap: str, options: dict[str, Any]) -> dict[str, Any]:
    """librdkafka's names for the options events.settings.kafka_options gives aiokafka."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "client.id": "farmlink-infra"}
    if "security_protocol" in options:
        config["security.protocol"] = options["security_protocol"]
    if options.get("sasl_plain_username"):
        config |= {
            "sasl.mechanism": options["sasl_mechanism"],
            "sasl.username": options["sasl_plain_username"],
            "sasl.password": options["sasl_plain_password"],
        }
    return config


def _acl_key(principal: str, resource_type: str, name: str, pattern: str, operation: str) -> tuple[str, ...]:
    kind = resource_type.upper()
    return (principal, "CLUSTER" if kind == "BROKER" else kind, name, pattern.upper(), operation.upper())


def confluent_resource_type(resource_type: str) -> str:
    """confluent-kafka's name of a resource type of events.access (its CLUSTER is `BROKER`)."""
    return "BROKER" if resource_type == "CLUSTER" else resource_type


def _upsert_users(admin: Any, passwords: dict[str, str]) -> None:
    """SCRAM-SHA-512 credentials for the users given (created, or their password set)."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    if passwords:
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        upserts = [UserScramCredentialUpsertion(user, info, password.encode()) for user, password in passwords.items()]
        for future in admin.alter_user_scram_credentials(upserts, request_timeout=_ACL_TIMEOUT_S).values():
            future.result()


def _acls_we_have(admin: Any) -> dict[tuple[str, ...], Any]:
    """The ALLOW bindings the broker holds for events/access.py's principals, by key."""
    from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    everything = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    ours = {f"User:{name}" for name in access.BY_NAME}
    return {
        _acl_key(b.principal, b.restype.name, b.name, b.resource_pattern_type.name, b.operation.name): b
        for b in admin.describe_acls(everything, request_timeout=_ACL_TIMEOUT_S).result()
        if b.principal in ours and b.permission_type == AclPermissionType.ALLOW and b.host == "*"
    }


def _acls_we_want() -> dict[tuple[str, ...], Any]:
    """The matrix of events/access.py as confluent-kafka bindings, by key."""
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    return {
        _acl_key(a.kafka_principal, a.resource_type, a.resource_name, a.pattern_type, a.operation): AclBinding(
            ResourceType[confluent_resource_type(a.resource_type)],
            a.resource_name,
            ResourcePatternType[a.pattern_type],
            a.kafka_principal,
            "*",
            AclOperation[a.operation],
            AclPermissionType.ALLOW,
        )
        for a in access.acl_bindings()
    }


def _sync_access_blocking(config: dict[str, Any], passwords: dict[str, str]) -> tuple[int, int, int]:
    """Upsert the SCRAM users given, then make the ACLs of events/access.py's principals exactly the
    matrix (missing ones created, others of theirs deleted). Returns (users, created, deleted)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AclBindingFilter, AdminClient

    admin = AdminClient(config)
    where = f"Kafka at {config['bootstrap.servers']} as {config.get('sasl.username', 'an anonymous client')}"
    try:
        _upsert_users(admin, passwords)
        have, want = _acls_we_have(admin), _acls_we_want()
        missing = [binding for key, binding in want.items() if key not in have]
        extra = [binding for key, binding in have.items() if key not in want]
        if missing:
            for future in admin.create_acls(missing, request_timeout=_ACL_TIMEOUT_S).values():
                future.result()
        if extra:
            filters = [
                AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type)
                for b in extra
            ]
            for future in admin.delete_acls(filters, request_timeout=_ACL_TIMEOUT_S).values():
                future.result()
    except KafkaException as exc:
        raise InfraError(
            f"Setting up Kafka users and ACLs failed on {where}: {exc.args[0]}. It needs the super "
            f"user ({access.ADMIN}) and a broker with an authorizer (see farmlink/operations/infra/README.md)."
        ) from exc
    return len(passwords), len(missing), len(extra)


async def sync_access(s: Settings, layout: Layout | None) -> tuple[int, int, int]:
    """SCRAM users (local broker only) and the ACL matrix of events/access.py, idempotently."""
    passwords = {p: _kafka_password(layout, p) for p in access.ALL_PRINCIPALS if p != access.ADMIN} if layout is not None else {}
    config = _confluent_config(s.bootstrap, kafka_options(s, access.ADMIN))
    return await asyncio.to_thread(_sync_access_blocking, config, passwords)


PARTY_PRINCIPAL = re.compile(r"^(?:%s)\.[a-z0-9-]+$" % "|".join(PARTY_TOPIC_KINDS))
"""The names the feeds service's registrar gives party principals (contracts.topics.party_name)."""


def _remove_party_access_blocking(config: dict[str, Any]) -> int:
    """Delete every party principal's SCRAM user and ACLs; returns how many users."""
    from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, AdminClient, ResourcePatternType
    from confluent_kafka.admin import ResourceType, ScramMechanism, UserScramCredentialDeletion

    admin = AdminClient(config)
    described = admin.describe_user_scram_credentials(request_timeout=_ACL_TIMEOUT_S).result()
    users = sorted(name for name in described if PARTY_PRINCIPAL.match(name))
    everything = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    theirs = [
        AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type)
        for b in admin.describe_acls(everything, request_timeout=_ACL_TIMEOUT_S).result()
        if PARTY_PRINCIPAL.match(b.principal.removeprefix("User:"))
    ]
    if theirs:
        for future in admin.delete_acls(theirs, request_timeout=_ACL_TIMEOUT_S).values():
            future.result()
    if users:
        mechanism = ScramMechanism[access.SCRAM_MECHANISM.replace("-", "_")]
        deletions = [UserScramCredentialDeletion(user, mechanism) for user in users]
        for future in admin.alter_user_scram_credentials(deletions, request_timeout=_ACL_TIMEOUT_S).values():
            future.result()
    return len(users)


async def remove_party_access(s: Settings) -> int:
    """`farmlink infra reset`: the party principals (users and ACLs) and their unclaimed credentials go with the data
    they were made from; the feeds service makes them again when it reads the registrations again."""
    config = _confluent_config(s.bootstrap, kafka_options(s, access.ADMIN))
    removed = await asyncio.to_thread(_remove_party_access_blocking, config)
    for path in (s.home / "secrets" / "parties").glob("*.json"):
        path.unlink(missing_ok=True)
    return removed

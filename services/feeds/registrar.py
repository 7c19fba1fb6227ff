"""The one place that gives parties access to Kafka: party topics, party principals (SCRAM users) and their ACLs.

The feeds service runs it as its own principal, `party-registrar` (events/access.py): CREATE on topics named
`farmlink.party.*`, ALTER and DESCRIBE on the cluster. ALTER on the cluster lets a client create any ACL, so it
is as strong as the super user for access control; no other farmlink process holds it (the launcher's ACL sync
works as the super user, at `farmlink infra up`, and leaves party principals alone).

Every call is idempotent, so a batch handled twice (a crash before its offsets were committed) changes nothing:

- `ensure_topics`: creates the party topics that are missing (one partition, kept forever);
- `register`: a party without a SCRAM user gets one, with a random password written first, once, to
  `<farmlink home>/secrets/parties/<kind>.<token>.json` (0600, `farmlink parties credentials` prints and
  deletes it); the broker keeps only the salted SCRAM hash. A party that has a user keeps its password. Then its
  ACLs (events.access.party_acl_bindings) are created (creating one that exists is a no-op);
- `revoke`: deletes the party's ACLs (the broker refuses its next request, even on a connection open now), its
  SCRAM user (no new login) and an unclaimed credentials file.

confluent-kafka's AdminClient, because aiokafka 0.14 has no SCRAM or ACL API; its calls block, so the service
runs them in a thread.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from contracts.topics import PARTY_TOPIC_PARTITIONS, is_party_topic, party_name, party_topic
from events.access import PARTY_REGISTRAR, SCRAM_MECHANISM, AclBinding, party_acl_bindings, party_credentials_file
from events.settings import Settings, kafka_options

log = logging.getLogger(__name__)

SCRAM_ITERATIONS = 4096
TIMEOUT_S = 15.0
PARTY_TOPIC_CONFIGS = {"retention.ms": "-1", "retention.bytes": "-1"}
"""Kept forever, like the event topics: a party's system can read its history again from offset 0."""
REGISTRAR_USERNAME_ENV = "FARMLINK_REGISTRAR_SASL_USERNAME"
REGISTRAR_PASSWORD_ENV = "FARMLINK_REGISTRAR_SASL_PASSWORD"
"""With an external broker (KAFKA_BOOTSTRAP_SERVERS set) the deployment names the registrar's login here
(docker-compose.yml: party-registrar); unset, the registrar logs in as the feeds service does."""


def confluent_config(config: Settings, principal: str) -> dict[str, Any]:
    """librdkafka's names for what events.settings.kafka_options gives aiokafka."""
    options = kafka_options(config, principal)
    conf: dict[str, Any] = {"bootstrap.servers": config.bootstrap, "client.id": "farmlink-feeds-registrar", "log_level": 3}
    if "security_protocol" in options:
        conf["security.protocol"] = options["security_protocol"]
    if options.get("sasl_plain_username"):
        conf |= {
            "sasl.mechanism": options["sasl_mechanism"],
            "sasl.username": options["sasl_plain_username"],
            "sasl.password": options["sasl_plain_password"],
        }
    if config.uses_external_kafka and os.environ.get(REGISTRAR_USERNAME_ENV):
        conf |= {"sasl.username": os.environ[REGISTRAR_USERNAME_ENV], "sasl.password": os.environ.get(REGISTRAR_PASSWORD_ENV, "")}
    return conf


def _binding(a: AclBinding) -> Any:
    from confluent_kafka.admin import AclBinding as Binding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    kind = "BROKER" if a.resource_type == "CLUSTER" else a.resource_type
    return Binding(
        ResourceType[kind],
        a.resource_name,
        ResourcePatternType[a.pattern_type],
        a.kafka_principal,
        "*",
        AclOperation[a.operation],
        AclPermissionType.ALLOW,
    )


def _write_once(path: Path, text: str) -> str:
    """Write `text` to `path` (0600) unless the file exists; either way return what the file holds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    draft.write_text(text)
    draft.chmod(0o600)
    try:  # link(2) refuses an existing name: of two racing writers the first wins
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text()


class Registrar:
    """Party topics, principals and ACLs on one broker, as the party-registrar principal."""

    def __init__(self, config: Settings, admin: Any = None):
        self.config = config
        self._admin = admin
        self.known_topics: set[str] = set()
        self._listed = False

    @property
    def admin(self) -> Any:
        if self._admin is None:
            from confluent_kafka.admin import AdminClient

            self._admin = AdminClient(confluent_config(self.config, PARTY_REGISTRAR))
        return self._admin

    def _list_once(self) -> None:
        """The party topics the broker has already (made before this process started), once."""
        if not self._listed:
            listed = self.admin.list_topics(timeout=TIMEOUT_S).topics
            self.known_topics.update(name for name in listed if is_party_topic(name))
            self._listed = True

    def exists(self, topic: str) -> bool:
        """Whether a party topic exists (made by this registrar, or found on the broker when it first looked)."""
        self._list_once()
        return topic in self.known_topics

    def ensure_topics(self, topics: set[str]) -> list[str]:
        """Create the party topics not known to exist; returns those created now."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import NewTopic

        self._list_once()
        wanted = sorted(topics - self.known_topics)
        if not wanted:
            return []
        new = [NewTopic(t, PARTY_TOPIC_PARTITIONS, replication_factor=-1, config=PARTY_TOPIC_CONFIGS) for t in wanted]
        created = []
        for topic, future in self.admin.create_topics(new, request_timeout=TIMEOUT_S).items():
            try:
                future.result()
                created.append(topic)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        self.known_topics.update(wanted)
        if created:
            log.info("feeds: created party topics %s", ", ".join(created))
        return created

    def has_user(self, name: str) -> bool:
        from confluent_kafka import KafkaError, KafkaException

        try:
            described = self.admin.describe_user_scram_credentials([name], request_timeout=TIMEOUT_S)
            description = described[name].result() if isinstance(described, dict) else described.result()[name]
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.RESOURCE_NOT_FOUND:
                return False
            raise
        return bool(getattr(description, "scram_credential_infos", True))

    def register(self, kind: str, party_id: str) -> bool:
        """Give a registered party its principal and ACLs; True when its user was created now."""
        from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

        name = party_name(kind, party_id)
        self.ensure_topics({party_topic(kind, party_id)})
        created = not self.has_user(name)
        if created:
            offer = {
                "principal": name,
                "password": secrets.token_urlsafe(24),
                "mechanism": SCRAM_MECHANISM,
                "topic": party_topic(kind, party_id),
                "group_prefix": f"{name}.",
                "party": f"{kind}:{party_id}",
            }
            kept = json.loads(_write_once(party_credentials_file(self.config.home, kind, party_id), json.dumps(offer, indent=2)))
            info = ScramCredentialInfo(ScramMechanism[SCRAM_MECHANISM.replace("-", "_")], SCRAM_ITERATIONS)
            upsert = UserScramCredentialUpsertion(name, info, kept["password"].encode())
            for future in self.admin.alter_user_scram_credentials([upsert], request_timeout=TIMEOUT_S).values():
                future.result()
        for future in self.admin.create_acls(
            [_binding(a) for a in party_acl_bindings(kind, party_id)], request_timeout=TIMEOUT_S
        ).values():
            future.result()
        log.info("feeds: %s %s has principal %s%s", kind, party_id, name, " (new)" if created else "")
        return created

    def revoke(self, kind: str, party_id: str) -> None:
        """Take a party's access away: its ACLs, its SCRAM user and any credentials not yet handed out."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import AclBindingFilter, ScramMechanism, UserScramCredentialDeletion

        name = party_name(kind, party_id)
        filters = [
            AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type)
            for b in (_binding(a) for a in party_acl_bindings(kind, party_id))
        ]
        for future in self.admin.delete_acls(filters, request_timeout=TIMEOUT_S).values():
            future.result()
        deletion = UserScramCredentialDeletion(name, ScramMechanism[SCRAM_MECHANISM.replace("-", "_")])
        for future in self.admin.alter_user_scram_credentials([deletion], request_timeout=TIMEOUT_S).values():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.RESOURCE_NOT_FOUND:
                    raise
        party_credentials_file(self.config.home, kind, party_id).unlink(missing_ok=True)
        log.info("feeds: %s %s revoked: principal %s removed", kind, party_id, name)

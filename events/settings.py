"""Where farmlink finds Kafka and PostgreSQL, and with which credentials.

When KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set, farmlink uses them and starts
nothing; otherwise `farmlink infra up` starts a local broker and server on loopback, on
the ports below (FARMLINK_KAFKA_PORT, FARMLINK_KAFKA_CONTROLLER_PORT and
FARMLINK_POSTGRES_PORT move them, so two farmlink homes can run side by side).

Local credentials are never committed: each is generated on first use into
``<farmlink_home>/secrets/<name>`` (mode 0600) and read from there afterwards.

PostgreSQL roles (least privilege, see farmlink/operations/infra/README.md): ``farmlink`` owns the database and
every schema (migrations, the CLI's admin work, tests' fixtures, benchmarks, reset); each
service works as ``farmlink_<service>`` (`Settings.service_dsn`), the audit and the reports
read as ``farmlink_auditor`` (`Settings.auditor_dsn`). With an external database,
DATABASE_URL is the owner and ``DATABASE_URL_<NAME>`` (DATABASE_URL_COOPERATIVE, ...,
DATABASE_URL_AUDITOR) each role; a missing one falls back to DATABASE_URL, with a warning.

Kafka clients authenticate with SASL/SCRAM-SHA-512 as one of the principals of
`events.access`: on the local broker with that principal's generated password; on an external
broker (KAFKA_BOOTSTRAP_SERVERS set) as KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD say, with
KAFKA_SECURITY_PROTOCOL and KAFKA_SASL_MECHANISM (plaintext, no login, when they are unset).
Every Kafka client in farmlink gets its options from `kafka_options` or `kafka_security`.
"""

import logging
import os
import ssl
import secrets as _random
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic_settings import BaseSettings, SettingsConfigDict

from events.access import SCRAM_MECHANISM

# Below Linux's ephemeral range (32768-60999): a port inside it can be taken by a client
# socket (even one connecting to itself while the broker boots), and then Kafka cannot bind.
LOCAL_KAFKA_PORT = 19092
LOCAL_KAFKA_CONTROLLER_PORT = 19093
LOCAL_POSTGRES_PORT = 15432
LOCAL_DATABASE = "farmlink"
APP_ROLE = "farmlink"  # the migration role: owns the database, every schema and table
AUDITOR = "auditor"

log = logging.getLogger(__name__)
_warned: set[str] = set()


def role_name(name: str) -> str:
    """The PostgreSQL role a service (or the auditor) works as: farmlink_<name>."""
    return f"{APP_ROLE}_{name}"


def role_env(name: str) -> str:
    """The environment variable naming that role's connection string on an external database."""
    return f"DATABASE_URL_{name.upper()}"


class Settings(BaseSettings):
    """farmlink's runtime settings, read from the environment."""

    model_config = SettingsConfigDict(extra="ignore")

    kafka_bootstrap_servers: str | None = None
    database_url: str | None = None
    farmlink_home: Path = Path(".farmlink")
    farmlink_kafka_port: int = LOCAL_KAFKA_PORT
    farmlink_kafka_controller_port: int = LOCAL_KAFKA_CONTROLLER_PORT
    farmlink_postgres_port: int = LOCAL_POSTGRES_PORT
    # External Kafka only (the local broker always uses SASL_PLAINTEXT + SCRAM-SHA-512):
    kafka_security_protocol: str | None = None  # PLAINTEXT, SASL_PLAINTEXT, SASL_SSL or SSL
    kafka_sasl_mechanism: str = SCRAM_MECHANISM  # SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None

    @property
    def home(self) -> Path:
        return self.farmlink_home.expanduser().resolve()

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.farmlink_kafka_port}"

    @property
    def dsn(self) -> str:
        return self.database_url or local_dsn(self, APP_ROLE)

    def service_dsn(self, name: str) -> str:
        """Where the service (or auditor) `name` connects, as its own role farmlink_<name>.

        Local: that role with its generated password. External: DATABASE_URL_<NAME>, or, when
        it is not set, DATABASE_URL itself (the owner: no least privilege; warned once).
        """
        if not self.uses_external_database:
            return local_dsn(self, role_name(name))
        own = os.environ.get(role_env(name))
        if own:
            return own
        if name not in _warned:
            _warned.add(name)
            log.warning(
                "%s is not set: %s connects as DATABASE_URL's role, the schema owner, without least "
                "privilege (see farmlink/operations/infra/README.md, 'PostgreSQL roles')",
                role_env(name),
                name,
            )
        return self.database_url  # type: ignore[return-value]

    def role_of(self, name: str) -> str:
        """The role `name` works as: DATABASE_URL_<NAME>'s user when set (external), else farmlink_<name>."""
        own = os.environ.get(role_env(name)) if self.uses_external_database else None
        user = urlsplit(own).username if own else None
        return unquote(user) if user else role_name(name)

    @property
    def auditor_dsn(self) -> str:
        """The read-only role of `farmlink audit` and the report commands."""
        return self.service_dsn(AUDITOR)

    @property
    def uses_external_kafka(self) -> bool:
        return bool(self.kafka_bootstrap_servers)

    @property
    def uses_external_database(self) -> bool:
        return bool(self.database_url)


def settings() -> Settings:
    """The settings as the environment gives them now."""
    return Settings()


def local_secret(config: Settings, name: str) -> str:
    """A development-only secret for the local broker or server: generated once, kept in
    ``<farmlink_home>/secrets/<name>`` (0600), never committed."""
    folder = config.home / "secrets"
    path = folder / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    draft = folder / f".{name}.{os.getpid()}"
    draft.write_text(_random.token_urlsafe(24) + "\n")
    draft.chmod(0o600)
    try:  # link(2) is atomic and refuses an existing name: when two processes race, the first wins
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()


def local_dsn(config: Settings, role: str) -> str:
    """The DSN of a role of the local PostgreSQL, with its generated password."""
    password = quote(local_secret(config, f"postgres-{role}"), safe="")
    return f"postgresql://{role}:{password}@127.0.0.1:{config.farmlink_postgres_port}/{LOCAL_DATABASE}"


_SASL = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}


def kafka_security(config: Settings, principal: str) -> BaseSecurity | None:
    """How a Kafka client acting as `principal` (see events.access) logs in, as FastStream's
    `security=` object; None means plaintext without login.

    Local broker: SASL_PLAINTEXT, SCRAM-SHA-512, the principal's generated password
    (``<farmlink_home>/secrets/kafka-<principal>``). External broker: whatever
    KAFKA_SECURITY_PROTOCOL / KAFKA_SASL_MECHANISM / KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD
    say (the deployment decides who a process is; `principal` is not used).
    """
    if not config.uses_external_kafka:
        return SASLScram512(principal, local_secret(config, f"kafka-{principal}"), use_ssl=False)
    protocol = (config.kafka_security_protocol or "PLAINTEXT").upper()
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=_ssl_context(), use_ssl=True)
    if protocol not in ("SASL_PLAINTEXT", "SASL_SSL"):
        raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol}: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    mechanism = config.kafka_sasl_mechanism.upper()
    if mechanism not in _SASL:
        raise ValueError(f"KAFKA_SASL_MECHANISM={mechanism}: expected one of {', '.join(_SASL)}")
    if not (config.kafka_sasl_username and config.kafka_sasl_password):
        raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
    use_ssl = protocol == "SASL_SSL"
    return _SASL[mechanism](
        config.kafka_sasl_username, config.kafka_sasl_password, ssl_context=_ssl_context() if use_ssl else None, use_ssl=use_ssl
    )


def kafka_options(config: Settings, principal: str) -> dict[str, Any]:
    """The same as keyword arguments for aiokafka's producer, consumer and admin client
    (security_protocol, sasl_mechanism, sasl_plain_username, sasl_plain_password, ssl_context)."""
    security = kafka_security(config, principal)
    return parse_security(security) if security is not None else {}


def _ssl_context() -> ssl.SSLContext:
    from aiokafka.helpers import create_ssl_context

    context: ssl.SSLContext = create_ssl_context()
    return context

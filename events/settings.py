"""Where farmlink finds Kafka and PostgreSQL.

When KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set, farmlink uses them and starts
nothing; otherwise `farmlink infra up` starts a local broker and server on these
development-only defaults.
"""

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

# Below Linux's ephemeral range (32768-60999): a port inside it can be taken by a client
# socket (even one connecting to itself while the broker boots), and then Kafka cannot bind.
LOCAL_KAFKA_PORT = 19092
LOCAL_KAFKA_CONTROLLER_PORT = 19093
LOCAL_POSTGRES_PORT = 15432
# Development-only credentials for the local PostgreSQL started by `farmlink infra up`.
LOCAL_DATABASE_URL = f"postgresql://farmlink:farmlink-dev-only@127.0.0.1:{LOCAL_POSTGRES_PORT}/farmlink"
LOCAL_KAFKA_BOOTSTRAP = f"127.0.0.1:{LOCAL_KAFKA_PORT}"


class Settings(BaseSettings):
    """farmlink's runtime settings, read from the environment."""

    model_config = SettingsConfigDict(extra="ignore")

    kafka_bootstrap_servers: str | None = None
    database_url: str | None = None
    farmlink_home: Path = Path(".farmlink")

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap_servers or LOCAL_KAFKA_BOOTSTRAP

    @property
    def dsn(self) -> str:
        return self.database_url or LOCAL_DATABASE_URL

    @property
    def uses_external_kafka(self) -> bool:
        return bool(self.kafka_bootstrap_servers)

    @property
    def uses_external_database(self) -> bool:
        return bool(self.database_url)


def settings() -> Settings:
    """The settings as the environment gives them now."""
    return Settings()

"""The base of every public model: frozen, unknown fields rejected."""

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """A public message shape: immutable, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

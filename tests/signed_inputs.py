"""Input messages as cooperatives and buyers send them, signed with keys of a throwaway test keyring."""

import tempfile
import uuid
from pathlib import Path

from farmlink.producers.keyring import Keyring
from farmlink.producers.publisher import input_message

KEYRING = Keyring(Path(tempfile.mkdtemp(prefix="farmlink-test-keys-")))


def signed(kind: str, body: dict, keyring: Keyring = KEYRING, **changes) -> bytes:
    """The wire bytes of an input signed by its producer (`changes` alter fields after signing: a forgery)."""
    message = input_message(kind, body, uuid.uuid4().hex, keyring)
    return message.model_copy(update=changes).model_dump_json().encode()

"""The local keyring: one current Ed25519 private key per producer (`cooperative:<id>`, `buyer:<id>`,
`price-feed:<market>`, `settlement-desk:<id>`), generated on first use into ``<farmlink_home>/keys/``
(folder 0700, files 0600, PKCS#8 PEM), never committed. `farmlink publish` signs every party's
inputs with its key. A rotation (`rotate`) keeps the old key as `<name>.retired-<n>.pem`.

A real cooperative or buyer system keeps its own key and uses `contracts/signing.py` the same
way; this keyring stands in for all of them on a development machine.
"""

import hashlib
import os
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key

from contracts.signing import new_private_key, public_key_of

MAX_NAME = 200
"""Longest key file name before `.pem` (file systems allow 255 bytes; the draft adds a prefix and a pid)."""


class Keyring:
    """Private keys by producer, kept under one folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._cache: dict[str, Ed25519PrivateKey] = {}

    def path_of(self, producer: str) -> Path:
        """`<producer, percent-encoded>.pem`; a name too long for the file system (a long id in Chinese
        is nine bytes a character encoded) keeps its first part and a digest of the whole."""
        name = quote(producer, safe="-_")
        if len(name) > MAX_NAME:
            name = f"{name[: MAX_NAME - 65]}~{hashlib.sha256(producer.encode()).hexdigest()}"
        return self.folder / f"{name}.pem"

    def private_key(self, producer: str) -> Ed25519PrivateKey:
        """The producer's key, generated (atomically: two processes agree on one) when it has none yet."""
        if producer not in self._cache:
            path = self.path_of(producer)
            if not path.exists():
                self._generate(path)
            key = load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path} does not hold an Ed25519 private key")
            self._cache[producer] = key
        return self._cache[producer]

    def public_key(self, producer: str) -> str:
        return public_key_of(self.private_key(producer))

    def rotate(self, producer: str) -> tuple[Ed25519PrivateKey, str]:
        """A new current key for the producer: returns the previous key (which signs the rotation) and the
        new public key; the previous key file is kept beside it as `<name>.retired-<n>.pem`."""
        previous = self.private_key(producer)
        path = self.path_of(producer)
        n = 1
        while (retired := path.with_name(f"{path.stem}.retired-{n}.pem")).exists():
            n += 1
        os.replace(path, retired)
        self._cache.pop(producer, None)
        return previous, self.public_key(producer)

    def _generate(self, path: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        pem = new_private_key().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        draft = self.folder / f".{path.name}.{os.getpid()}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        try:  # link(2) refuses an existing name: when two processes race, the first key wins
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()


def local_keyring() -> Keyring:
    """The keyring of this farmlink home."""
    from events.settings import settings

    return Keyring(settings().home / "keys")

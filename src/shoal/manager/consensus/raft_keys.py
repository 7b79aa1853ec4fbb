"""A manager's raft data encryption keys (DEKs): the key its raft log and snapshots are
encrypted under at rest, and during a rotation the pending key that replaces it.

They live in ``<manager dir>/raft-keys.json``, owner-only. Each manager has its own DEK and it
never leaves the manager (swarmkit keeps its DEK in the headers of the node's TLS key, for the
same reason): the log travels between managers in plaintext over mutual TLS and each encrypts
what it stores.

With autolock on, the file is *sealed* under the key-encryption key (KEK, the 32 bytes of
the swarm's unlock key): the DEKs are encrypted with AES-256-GCM under the KEK, so a manager's
disk alone does not open its raft log. ``load`` then needs the KEK: ``RaftKeysLocked`` without
one, ``InvalidUnlockKey`` when the KEK fails the tag check. ``reseal`` re-wraps the same DEKs
under a new KEK (or none, autolock off); the KEK that sealed a file is kept by the loaded
``RaftKeys`` so that ``save`` writes it back sealed the same way.

Rotation: ``start_rotation`` makes a pending DEK and saves it, and from then on new writes
use it (``cipher`` is the live ``KeyRing`` the storage seals and opens with); once every entry
and the snapshot are re-encrypted under it (``DataKeyRotation``), ``finish_rotation`` makes it
the current DEK and the old one is gone. A crash in between leaves a file with both keys, and
the rotation resumes on the next start.

Every change is written with ``write_private`` (write, fsync, rename); these are blocking
calls of a few hundred microseconds, made from a thread by asyncio callers.
"""

import base64
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shoal.paths import write_private
from shoal.raft.cipher import KEY_SIZE, NONCE_SIZE, KeyRing

FILE_NAME = "raft-keys.json"
KEK_SIZE = 32
_VERSION = 1
# Binds a sealed file's ciphertext to what it is: the same bytes are no valid anything else.
_SEALED_AD = b"shoal raft-keys v1"

# Docker's words (moby daemon/cluster): what a locked manager answers, and a wrong key.
LOCKED_MESSAGE = (
    'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker '
    'swarm unlock" to unlock it.'
)
INVALID_KEY_MESSAGE = "swarm could not be unlocked: invalid key provided"


class RaftKeysLocked(Exception):
    """The keys file is sealed and no unlock key was given."""

    def __init__(self, message: str = LOCKED_MESSAGE) -> None:
        super().__init__(message)


class InvalidUnlockKey(Exception):
    """The unlock key given does not open the sealed keys file."""

    def __init__(self, message: str = INVALID_KEY_MESSAGE) -> None:
        super().__init__(message)


class RaftKeysCorrupted(Exception):
    """The keys file is unreadable for a reason other than the unlock key."""


@dataclass(frozen=True)
class DataKey:
    id: int  # recorded beside each value it encrypts, so a reader knows which key to use
    key: bytes  # 32 bytes, AES-256-GCM

    @staticmethod
    def new(taken: frozenset[int] = frozenset()) -> "DataKey":
        while True:
            (key_id,) = struct.unpack("!I", os.urandom(4))
            key_id &= 0x7FFFFFFF  # fits SQLite's and every reader's signed integers
            if key_id and key_id not in taken:
                return DataKey(key_id, os.urandom(KEY_SIZE))

    def to_json(self) -> dict[str, Any]:
        return {"ID": self.id, "Key": base64.b64encode(self.key).decode()}

    @staticmethod
    def from_json(raw: Any) -> "DataKey":
        try:
            key = base64.b64decode(raw["Key"], validate=True)
            key_id = int(raw["ID"])
        except (KeyError, TypeError, ValueError) as err:
            raise RaftKeysCorrupted(f"malformed data key: {err}") from err
        if len(key) != KEY_SIZE or key_id <= 0:
            raise RaftKeysCorrupted("malformed data key")
        return DataKey(key_id, key)


class RaftKeys:
    def __init__(
        self,
        path: Path,
        current: DataKey,
        pending: DataKey | None = None,
        kek: bytes | None = None,
    ) -> None:
        """The keys as they are; ``create`` and ``load`` are the ways to get one."""
        _check_kek(kek)
        self.path = Path(path)
        self._current = current
        self._pending = pending
        self._kek = kek
        keys = {current.id: current.key}
        if pending is not None:
            keys[pending.id] = pending.key
        write = pending if pending is not None else current
        # The cipher the raft storage uses: it follows every rotation step made here.
        self.cipher = KeyRing(keys, write.id)

    # --- getting one ----------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, kek: bytes | None = None) -> "RaftKeys":
        """A new DEK for a manager that has no raft state yet, written at once."""
        keys = cls(path, DataKey.new(), None, kek)
        keys.save()
        return keys

    @classmethod
    def load(cls, path: Path, kek: bytes | None) -> "RaftKeys":
        """The keys in ``path``. A sealed file needs ``kek``; a plaintext one ignores it
        (autolock was off when it was written: ``reseal`` seals it)."""
        try:
            doc = json.loads(Path(path).read_bytes())
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as err:
            raise RaftKeysCorrupted(f"{path}: {err}") from err
        if not isinstance(doc, dict) or doc.get("Version") != _VERSION:
            raise RaftKeysCorrupted(f"{path}: not a version {_VERSION} raft keys file")
        if doc.get("Sealed"):
            if kek is None:
                raise RaftKeysLocked()
            if len(kek) != KEK_SIZE:
                raise InvalidUnlockKey()
            try:
                nonce = base64.b64decode(doc["Nonce"], validate=True)
                sealed = base64.b64decode(doc["Keys"], validate=True)
            except (KeyError, TypeError, ValueError) as err:
                raise RaftKeysCorrupted(f"{path}: {err}") from err
            if len(nonce) != NONCE_SIZE:
                raise RaftKeysCorrupted(f"{path}: malformed nonce")
            try:
                plain = AESGCM(kek).decrypt(nonce, sealed, _SEALED_AD)
            except InvalidTag as err:
                raise InvalidUnlockKey() from err
            body = json.loads(plain)
            used_kek: bytes | None = kek
        else:
            body = doc.get("Keys")
            used_kek = None
        if not isinstance(body, dict) or "Current" not in body:
            raise RaftKeysCorrupted(f"{path}: no current data key")
        current = DataKey.from_json(body["Current"])
        pending = DataKey.from_json(body["Pending"]) if body.get("Pending") else None
        return cls(path, current, pending, used_kek)

    @classmethod
    def load_or_create(cls, path: Path, kek: bytes | None = None) -> "RaftKeys":
        if Path(path).exists():
            return cls.load(path, kek)
        return cls.create(path, kek)

    @staticmethod
    def is_sealed(path: Path) -> bool:
        """Whether the keys file at ``path`` needs an unlock key to load (False: no file)."""
        try:
            doc = json.loads(Path(path).read_bytes())
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as err:
            raise RaftKeysCorrupted(f"{path}: {err}") from err
        return isinstance(doc, dict) and bool(doc.get("Sealed"))

    # --- what it holds --------------------------------------------------------------------

    @property
    def current(self) -> DataKey:
        return self._current

    @property
    def pending(self) -> DataKey | None:
        return self._pending

    @property
    def sealed(self) -> bool:
        return self._kek is not None

    @property
    def kek(self) -> bytes | None:
        return self._kek

    # --- writing --------------------------------------------------------------------------

    def save(self) -> None:
        """Write the keys, sealed under the KEK they were loaded or resealed with (if any)."""
        body: dict[str, Any] = {
            "Current": self._current.to_json(),
            "Pending": self._pending.to_json() if self._pending is not None else None,
        }
        doc: dict[str, Any] = {"Version": _VERSION, "Sealed": self._kek is not None}
        if self._kek is None:
            doc["Keys"] = body
        else:
            nonce = os.urandom(NONCE_SIZE)
            sealed = AESGCM(self._kek).encrypt(nonce, json.dumps(body).encode(), _SEALED_AD)
            doc["Nonce"] = base64.b64encode(nonce).decode()
            doc["Keys"] = base64.b64encode(sealed).decode()
        write_private(self.path, json.dumps(doc, indent=1).encode())

    def reseal(self, new_kek: bytes | None) -> None:
        """Re-wrap the same DEKs under ``new_kek`` (None: a plaintext file, autolock off).
        Swarmkit also rotates the DEK when the KEK changes: ``DataKeyRotation`` does that."""
        _check_kek(new_kek)
        self._kek = new_kek
        self.save()

    # --- rotation -------------------------------------------------------------------------

    def start_rotation(self) -> DataKey:
        """Make a pending DEK (or keep the one a rotation already started), save it, and have
        new writes use it. Until ``finish_rotation`` both keys read."""
        if self._pending is None:
            self._pending = DataKey.new(frozenset({self._current.id}))
            self.save()  # durable before anything is written under it
        self.cipher.add(self._pending.id, self._pending.key)
        self.cipher.write_with(self._pending.id)
        return self._pending

    def finish_rotation(self) -> None:
        """The pending DEK becomes the current one and the old DEK is forgotten. Only once
        nothing stored is under the old key any more."""
        if self._pending is None:
            return
        old = self._current
        self._current, self._pending = self._pending, None
        self.save()
        self.cipher.drop(old.id)


def _check_kek(kek: bytes | None) -> None:
    if kek is not None and len(kek) != KEK_SIZE:
        raise ValueError(f"a key-encryption key is {KEK_SIZE} bytes, not {len(kek)}")

"""What the raft storage needs to keep its log and snapshots encrypted at rest: a ``Cipher``
that seals a value under the key it writes with and names that key, and opens a value under
whichever key sealed it (so entries written before and after a key rotation both read).

``KeyRing`` is the AEAD (AES-256-GCM) cipher over a set of keys the caller manages: which
keys there are, and which one new writes use. Where the keys live, and how they are protected,
is not raft's business (the manager keeps them in its own state directory).

Each value is ``nonce (12 bytes) || ciphertext || tag (16 bytes)``, with a random nonce: a
key seals far fewer than the 2**32 values a random 96-bit nonce allows before rotation is due.
The caller passes associated data that binds the value to its place (an entry's index and
term), so a sealed value moved elsewhere fails to open just as a tampered one does.
"""

import os
import threading
from collections.abc import Mapping
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16


class CipherError(Exception):
    """A sealed value that does not open: tampered with, moved, or sealed under a key this
    cipher does not hold."""


class Cipher(Protocol):
    def seal(self, plaintext: bytes, associated: bytes) -> tuple[int, bytes]:
        """Encrypt under the key new writes use; returns that key's ID and the sealed value."""
        ...

    def unseal(self, key_id: int, sealed: bytes, associated: bytes) -> bytes:
        """Decrypt a value sealed under ``key_id``; ``CipherError`` when it does not open."""
        ...

    @property
    def write_key_id(self) -> int:
        """The ID of the key ``seal`` uses now."""
        ...


class KeyRing:
    """AES-256-GCM over the keys it holds, by key ID. Thread-safe: the storage seals in its
    worker thread while a rotation changes the keys from another."""

    def __init__(self, keys: Mapping[int, bytes], write_key_id: int) -> None:
        self._lock = threading.Lock()
        self._aeads: dict[int, AESGCM] = {}
        for key_id, key in keys.items():
            self._aeads[key_id] = _aead(key)
        if write_key_id not in self._aeads:
            raise ValueError(f"no key {write_key_id} to write with")
        self._write = write_key_id

    @property
    def write_key_id(self) -> int:
        return self._write

    def key_ids(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._aeads)

    def add(self, key_id: int, key: bytes) -> None:
        with self._lock:
            self._aeads[key_id] = _aead(key)

    def write_with(self, key_id: int) -> None:
        with self._lock:
            if key_id not in self._aeads:
                raise ValueError(f"no key {key_id} to write with")
            self._write = key_id

    def drop(self, key_id: int) -> None:
        with self._lock:
            if key_id == self._write:
                raise ValueError(f"key {key_id} is the one new writes use")
            self._aeads.pop(key_id, None)

    def seal(self, plaintext: bytes, associated: bytes) -> tuple[int, bytes]:
        with self._lock:
            key_id = self._write
            aead = self._aeads[key_id]
        nonce = os.urandom(NONCE_SIZE)
        return key_id, nonce + aead.encrypt(nonce, plaintext, associated)

    def unseal(self, key_id: int, sealed: bytes, associated: bytes) -> bytes:
        with self._lock:
            aead = self._aeads.get(key_id)
        if aead is None:
            raise CipherError(f"sealed under key {key_id:#x}, which this manager does not hold")
        if len(sealed) < NONCE_SIZE + TAG_SIZE:
            raise CipherError("sealed value is truncated")
        try:
            return aead.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], associated)
        except InvalidTag as err:
            raise CipherError(f"sealed value under key {key_id:#x} fails its tag check") from err


def _aead(key: bytes) -> AESGCM:
    if len(key) != KEY_SIZE:
        raise ValueError(f"a data key is {KEY_SIZE} bytes, not {len(key)}")
    return AESGCM(key)

"""What the raft storage needs to keep its log and snapshots encrypted at rest: a ``Cipher``
that seals a value under the key it writes with and names that key, and opens a value under
whichever key sealed it (so entries written before and after a key rotation both read).

``KeyRing`` is the AEAD (AES-256-GCM) cipher over a set of keys the caller manages: which
keys there are, and which one new writes use. Where the keys live, and how they are protected,
is not raft's business (the manager keeps them in its own state directory).

Each value is ``nonce (12 bytes) || ciphertext || tag (16 bytes)``. GCM needs a nonce never
used twice under a key: a ``KeyRing`` counts up from a random 96-bit start (drawn when it is
made), and hands each batch its own range of the count under its lock, so values sealed by
one process never share a nonce, and two processes (a restart) would need their random
starts within a log's length of each other. Counting rather than drawing each nonce saves a
system call per entry, which is a third of the cost of sealing one. The caller passes
associated data that binds the value to its place (an entry's index and term), so a sealed
value moved elsewhere fails to open just as a tampered one does.
"""

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import NamedTuple, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher as BlockCipher
from cryptography.hazmat.primitives.ciphers import algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
_NONCES = 1 << (8 * NONCE_SIZE)
_COPY_LIMIT = 1 << 16
_STREAM_PIECE = 1 << 22  # bytes encrypted at a time by ``seal_stream``


class CipherError(Exception):
    """A sealed value that does not open: tampered with, moved, or sealed under a key this
    cipher does not hold."""


class Cipher(Protocol):
    def seal_all(self, items: Sequence[tuple[bytes, bytes]]) -> tuple[int, list[bytes]]:
        """Encrypt each (plaintext, associated data) under the key new writes use; returns
        that key's ID and the sealed values, each ``nonce || ciphertext``."""
        ...

    def seal_stream(
        self, parts: Sequence[bytes | memoryview], associated: Callable[[int], bytes]
    ) -> tuple[int, bytes, Iterator[bytes]]:
        """One large value (a snapshot), the concatenation of ``parts``, sealed as ``seal_all``
        seals each, a piece at a time: the key's ID, the nonce, and the ciphertext (its tag
        last) as pieces to write one after the other. ``associated`` gives the associated
        data for the key chosen (a header naming it). Neither the value nor its ciphertext is
        ever held whole: at 100,000 tasks each copy is 60-80 MB of a manager's peak memory."""
        ...

    def unseal(self, key_id: int, sealed: bytes | memoryview, associated: bytes) -> bytes:
        """Decrypt ``nonce || ciphertext`` sealed under ``key_id``; ``CipherError`` when it
        does not open."""
        ...

    @property
    def write_key_id(self) -> int:
        """The ID of the key new writes use now."""
        ...


class KeyRing:
    """AES-256-GCM over the keys it holds, by key ID. Thread-safe: the storage seals in its
    worker thread while a rotation changes the keys from another."""

    def __init__(self, keys: Mapping[int, bytes], write_key_id: int) -> None:
        self._lock = threading.Lock()
        self._keys = {key_id: _data_key(key) for key_id, key in keys.items()}
        if write_key_id not in self._keys:
            raise ValueError(f"no key {write_key_id} to write with")
        self._write = write_key_id
        self._nonce = int.from_bytes(os.urandom(NONCE_SIZE), "big")

    @property
    def write_key_id(self) -> int:
        return self._write

    def key_ids(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._keys)

    def add(self, key_id: int, key: bytes) -> None:
        with self._lock:
            self._keys[key_id] = _data_key(key)

    def write_with(self, key_id: int) -> None:
        with self._lock:
            if key_id not in self._keys:
                raise ValueError(f"no key {key_id} to write with")
            self._write = key_id

    def drop(self, key_id: int) -> None:
        with self._lock:
            if key_id == self._write:
                raise ValueError(f"key {key_id} is the one new writes use")
            self._keys.pop(key_id, None)

    def seal(self, plaintext: bytes, associated: bytes) -> tuple[int, bytes]:
        """One value, as ``seal_all`` seals each."""
        key_id, (sealed,) = self.seal_all([(plaintext, associated)])
        return key_id, sealed

    def seal_stream(
        self, parts: Sequence[bytes | memoryview], associated: Callable[[int], bytes]
    ) -> tuple[int, bytes, Iterator[bytes]]:
        with self._lock:
            key_id = self._write
            key = self._keys[key_id].key
            nonce = self._nonce if self._nonce + 1 < _NONCES else 0
            self._nonce = nonce + 1
        nonce_bytes = nonce.to_bytes(NONCE_SIZE, "big")
        # GCM a piece at a time gives what AESGCM.encrypt gives at once: ciphertext || tag.
        encryptor = BlockCipher(algorithms.AES(key), modes.GCM(nonce_bytes)).encryptor()
        encryptor.authenticate_additional_data(associated(key_id))

        def pieces() -> Iterator[bytes]:
            for part in parts:
                view = memoryview(part)
                for start in range(0, len(view), _STREAM_PIECE):
                    yield encryptor.update(view[start : start + _STREAM_PIECE])
            yield encryptor.finalize() + encryptor.tag

        return key_id, nonce_bytes, pieces()

    def seal_all(self, items: Sequence[tuple[bytes, bytes]]) -> tuple[int, list[bytes]]:
        with self._lock:
            key_id = self._write
            encrypt = self._keys[key_id].aead.encrypt
            start = self._nonce
            if start + len(items) >= _NONCES:  # the count wraps (once in 2**96)
                start = 0
            self._nonce = start + len(items)
        # One comprehension: sealing a 1 KiB entry costs about as much as the interpreter's
        # work around it, so that work is kept to the least.
        return key_id, [
            (nonce := n.to_bytes(NONCE_SIZE, "big")) + encrypt(nonce, plaintext, associated)
            for n, (plaintext, associated) in enumerate(items, start)
        ]

    def unseal(self, key_id: int, sealed: bytes | memoryview, associated: bytes) -> bytes:
        held = self._keys.get(key_id)  # one dict read: atomic, no lock needed
        if held is None:
            raise CipherError(f"sealed under key {key_id:#x}, which this manager does not hold")
        if len(sealed) < NONCE_SIZE + TAG_SIZE:
            raise CipherError("sealed value is truncated")
        if len(sealed) > _COPY_LIMIT:  # a snapshot: slice without copying megabytes
            sealed = memoryview(sealed)
        try:
            return held.aead.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], associated)
        except InvalidTag as err:
            raise CipherError(f"sealed value under key {key_id:#x} fails its tag check") from err


class _DataKey(NamedTuple):
    """A key as given (``seal_stream`` runs GCM on it a piece at a time) and its AEAD."""

    key: bytes
    aead: AESGCM


def _data_key(key: bytes) -> _DataKey:
    if len(key) != KEY_SIZE:
        raise ValueError(f"a data key is {KEY_SIZE} bytes, not {len(key)}")
    return _DataKey(key, AESGCM(key))

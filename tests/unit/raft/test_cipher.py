"""The raft storage's AEAD cipher: values open under the key that sealed them, in their place."""

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shoal.raft.cipher import CipherError, KeyRing

K1, K2 = b"\x01" * 32, b"\x02" * 32


def test_round_trip_and_key_id():
    ring = KeyRing({7: K1}, 7)
    key_id, sealed = ring.seal(b"secret", b"where")
    assert key_id == 7 and b"secret" not in sealed
    assert ring.unseal(7, sealed, b"where") == b"secret"


def test_same_plaintext_seals_differently():
    ring = KeyRing({7: K1}, 7)
    assert ring.seal(b"x", b"")[1] != ring.seal(b"x", b"")[1]


def test_tampered_value_moved_value_and_wrong_key_fail():
    ring = KeyRing({7: K1}, 7)
    _, sealed = ring.seal(b"secret", b"place-1")
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    with pytest.raises(CipherError):
        ring.unseal(7, bytes(flipped), b"place-1")
    with pytest.raises(CipherError):
        ring.unseal(7, sealed, b"place-2")
    with pytest.raises(CipherError):
        KeyRing({7: K2}, 7).unseal(7, sealed, b"place-1")
    with pytest.raises(CipherError, match="does not hold"):
        ring.unseal(8, sealed, b"place-1")
    with pytest.raises(CipherError, match="truncated"):
        ring.unseal(7, sealed[:20], b"place-1")


def test_rotation_steps_read_both_keys_until_the_old_is_dropped():
    ring = KeyRing({1: K1}, 1)
    _, old = ring.seal(b"old", b"")
    ring.add(2, K2)
    ring.write_with(2)
    key_id, new = ring.seal(b"new", b"")
    assert key_id == 2
    assert ring.unseal(1, old, b"") == b"old" and ring.unseal(2, new, b"") == b"new"
    with pytest.raises(ValueError):
        ring.drop(2)  # the key new writes use
    ring.drop(1)
    assert ring.key_ids() == {2}
    with pytest.raises(CipherError):
        ring.unseal(1, old, b"")


def test_keys_must_be_32_bytes():
    with pytest.raises(ValueError):
        KeyRing({1: b"short"}, 1)
    with pytest.raises(ValueError):
        KeyRing({1: K1}, 2)


def test_nonces_count_up_and_never_repeat_within_a_ring():
    ring = KeyRing({7: K1}, 7)
    _, sealed = ring.seal_all([(b"a", b""), (b"b", b""), (b"c", b"")])
    _, more = ring.seal_all([(b"d", b"")])
    nonces = [int.from_bytes(v[:12], "big") for v in sealed + more]
    assert nonces == list(range(nonces[0], nonces[0] + 4))
    ring._nonce = (1 << 96) - 2  # about to wrap: the batch starts again from 0
    _, wrapped = ring.seal_all([(b"e", b""), (b"f", b""), (b"g", b"")])
    assert [int.from_bytes(v[:12], "big") for v in wrapped] == [0, 1, 2]
    assert [ring.unseal(7, v, b"") for v in wrapped] == [b"e", b"f", b"g"]
    # Two rings (two runs of a manager) start at random places.
    assert (
        KeyRing({7: K1}, 7).seal(b"x", b"")[1][:12] != KeyRing({7: K1}, 7).seal(b"x", b"")[1][:12]
    )


def test_a_large_value_sealed_a_piece_at_a_time_opens_whole(monkeypatch):
    monkeypatch.setattr("shoal.raft.cipher._STREAM_PIECE", 1 << 16)
    ring = KeyRing({7: K1}, 7)
    head, body = b"head", os.urandom(300_000)
    asked: list[int] = []

    def header(key_id: int) -> bytes:
        asked.append(key_id)
        return b"snapshot header"

    key_id, nonce, pieces = ring.seal_stream([head, memoryview(body)], header)
    chunks = list(pieces)
    assert key_id == 7 and asked == [7] and len(nonce) == 12
    assert len(chunks) == 1 + 5 + 1  # the head, the body in pieces of 64 KiB, the tag
    ciphertext = b"".join(chunks)
    big = head + body
    # What sealing it whole gives, under the same key and nonce.
    assert ciphertext == AESGCM(K1).encrypt(nonce, big, b"snapshot header")
    stored = memoryview(b"HEADER" + nonce + ciphertext)[6:]  # as read from a file
    assert ring.unseal(7, stored, b"snapshot header") == big
    with pytest.raises(CipherError):
        ring.unseal(7, stored[:-1], b"snapshot header")
    # Its nonce comes from the same count as the entries'.
    _, (after,) = ring.seal_all([(b"x", b"")])
    assert int.from_bytes(after[:12], "big") == int.from_bytes(nonce, "big") + 1

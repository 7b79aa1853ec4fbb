"""A manager's raft data keys in its state directory: plaintext or sealed under the unlock
key, and the steps of a rotation each durable on their own."""

import base64
import json
import os
import stat

import pytest

from shoal.manager.consensus.raft_keys import (
    FILE_NAME,
    INVALID_KEY_MESSAGE,
    LOCKED_MESSAGE,
    InvalidUnlockKey,
    RaftKeys,
    RaftKeysCorrupted,
    RaftKeysLocked,
)
from shoal.raft.cipher import CipherError

KEK = b"k" * 32
OTHER_KEK = b"o" * 32


def test_create_writes_an_owner_only_plaintext_file(tmp_path):
    path = tmp_path / FILE_NAME
    keys = RaftKeys.create(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not RaftKeys.is_sealed(path) and not keys.sealed
    again = RaftKeys.load(path, None)
    assert again.current == keys.current and again.pending is None
    assert len(keys.current.key) == 32


def test_sealed_file_needs_the_right_kek(tmp_path):
    path = tmp_path / FILE_NAME
    keys = RaftKeys.create(path, KEK)
    assert RaftKeys.is_sealed(path)
    raw = path.read_bytes()
    assert base64.b64encode(keys.current.key) not in raw
    assert json.loads(raw)["Sealed"] is True
    with pytest.raises(RaftKeysLocked, match="needs to be unlocked") as locked:
        RaftKeys.load(path, None)
    assert str(locked.value) == LOCKED_MESSAGE
    with pytest.raises(InvalidUnlockKey) as wrong:
        RaftKeys.load(path, OTHER_KEK)
    assert str(wrong.value) == INVALID_KEY_MESSAGE
    with pytest.raises(InvalidUnlockKey):
        RaftKeys.load(path, b"short")
    loaded = RaftKeys.load(path, KEK)
    assert loaded.current == keys.current and loaded.sealed and loaded.kek == KEK


def test_reseal_rewraps_the_same_keys(tmp_path):
    path = tmp_path / FILE_NAME
    keys = RaftKeys.create(path)
    keys.reseal(KEK)
    assert RaftKeys.load(path, KEK).current == keys.current
    keys.reseal(OTHER_KEK)
    with pytest.raises(InvalidUnlockKey):
        RaftKeys.load(path, KEK)
    assert RaftKeys.load(path, OTHER_KEK).current == keys.current
    keys.reseal(None)
    assert not RaftKeys.is_sealed(path)
    assert RaftKeys.load(path, None).current == keys.current
    with pytest.raises(ValueError):
        keys.reseal(b"short")


def test_a_plaintext_file_loads_whatever_kek_is_given(tmp_path):
    path = tmp_path / FILE_NAME
    keys = RaftKeys.create(path)
    loaded = RaftKeys.load(path, KEK)
    assert loaded.current == keys.current and not loaded.sealed


def test_rotation_steps_are_durable_and_the_cipher_follows(tmp_path):
    path = tmp_path / FILE_NAME
    keys = RaftKeys.create(path, KEK)
    old = keys.current
    _, under_old = keys.cipher.seal(b"before", b"")
    pending = keys.start_rotation()
    assert pending.id != old.id and keys.start_rotation() == pending  # idempotent
    assert keys.cipher.write_key_id == pending.id
    # A crash now: the file has both keys, sealed as before.
    reloaded = RaftKeys.load(path, KEK)
    assert reloaded.current == old and reloaded.pending == pending
    assert reloaded.cipher.write_key_id == pending.id
    assert reloaded.cipher.unseal(old.id, under_old, b"") == b"before"
    keys.finish_rotation()
    assert keys.current == pending and keys.pending is None
    with pytest.raises(CipherError):
        keys.cipher.unseal(old.id, under_old, b"")
    final = RaftKeys.load(path, KEK)
    assert final.current == pending and final.pending is None
    keys.finish_rotation()  # nothing pending: no change
    assert RaftKeys.load(path, KEK).current == pending


def test_load_or_create(tmp_path):
    path = tmp_path / "sub" / FILE_NAME
    first = RaftKeys.load_or_create(path)
    assert RaftKeys.load_or_create(path).current == first.current


def test_corrupted_files(tmp_path):
    path = tmp_path / FILE_NAME
    path.write_text("{not json")
    with pytest.raises(RaftKeysCorrupted):
        RaftKeys.load(path, None)
    path.write_text(json.dumps({"Version": 1, "Sealed": False, "Keys": {"Current": {}}}))
    with pytest.raises(RaftKeysCorrupted):
        RaftKeys.load(path, None)
    with pytest.raises(FileNotFoundError):
        RaftKeys.load(tmp_path / "missing.json", None)
    assert not RaftKeys.is_sealed(tmp_path / "missing.json")

"""The unlock key in Swarm's format, and a node key sealed under it."""

import base64
import os

import pytest
from cryptography.hazmat.primitives import serialization

from shoal.ca.certificates import new_node_key
from shoal.ca.sealed_key import (
    KeySealed,
    WrongKEK,
    is_sealed,
    open_secret,
    seal,
    seal_secret,
    stored_form,
    unseal,
)
from shoal.ca.unlock_key import (
    INVALID_KEY_STRING,
    KEY_SIZE,
    human_readable,
    new_unlock_key,
    parse_human_readable,
)

# A key Docker 20.10 printed (swarm init --autolock), and its bytes.
DOCKER_KEY = "SWMKEY-1-f/ImChv4qku15C/8cXhox4wk+b2GDyNzQ+erMgeTPUM"
DOCKER_BYTES = base64.b64decode("f/ImChv4qku15C/8cXhox4wk+b2GDyNzQ+erMgeTPUM=")


def test_keys_are_32_random_bytes_shown_as_swarm_shows_them() -> None:
    key = new_unlock_key()
    assert len(key) == KEY_SIZE and key != new_unlock_key()
    text = human_readable(key)
    assert text.startswith("SWMKEY-1-") and len(text) == len("SWMKEY-1-") + 43
    assert "=" not in text
    assert parse_human_readable(text) == key
    assert human_readable(DOCKER_BYTES) == DOCKER_KEY


def test_parsing_is_gos_raw_base64() -> None:
    assert parse_human_readable(DOCKER_KEY) == DOCKER_BYTES
    # The last character's two unused bits are ignored, as Go ignores them: Docker unlocked
    # with this neighbour of its key.
    assert parse_human_readable(DOCKER_KEY[:-1] + "N") == DOCKER_BYTES
    # Short keys parse (and then open nothing): Docker answers them "invalid key provided".
    assert parse_human_readable("SWMKEY-1-abc") == b"i\xb7"
    assert parse_human_readable("SWMKEY-1-") == b""


@pytest.mark.parametrize(
    "text",
    ["", "bad", "SWMKEY-2-abc", "swmkey-1-abc", "SWMKEY-1-ab==", "SWMKEY-1-a", "SWMKEY-1-a!bc"],
)
def test_what_is_not_a_key(text: str) -> None:
    with pytest.raises(ValueError, match=f"^{INVALID_KEY_STRING}$"):
        parse_human_readable(text)


def test_a_sealed_key_opens_with_its_kek_only() -> None:
    plain = new_node_key().key_pem
    kek = new_unlock_key()
    sealed = seal(plain, kek)
    assert is_sealed(sealed) and not is_sealed(plain)
    assert sealed.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert b"PRIVATE KEY-----\n" in sealed and plain.split(b"\n")[1] not in sealed
    assert unseal(sealed, kek) == plain
    with pytest.raises(KeySealed):
        unseal(sealed, None)
    for wrong in (new_unlock_key(), b"", kek[:-1]):
        with pytest.raises(WrongKEK):
            unseal(sealed, wrong)
    # A plain key needs no KEK, and ignores one.
    assert unseal(plain, None) == plain and unseal(plain, kek) == plain


def test_a_kek_holding_nul_bytes_keeps_all_its_bytes() -> None:
    # OpenSSL reads a PEM password up to its first NUL: a raw 32-byte KEK ending in 0x00 (1 in
    # 256) used to open with the KEK one byte shorter; one starting with 0x00 with any other.
    plain = new_node_key().key_pem
    ending = os.urandom(31) + b"\0"
    starting = b"\0" + os.urandom(31)
    for kek, wrong in ((ending, ending[:-1]), (starting, b"\0" + os.urandom(31))):
        sealed = seal(plain, kek)
        assert unseal(sealed, kek) == plain
        with pytest.raises(WrongKEK):
            unseal(sealed, wrong)


def test_a_key_sealed_by_an_earlier_version_still_opens() -> None:
    # Earlier versions gave the raw KEK as the password.
    key = serialization.load_pem_private_key(new_node_key().key_pem, password=None)
    kek = new_unlock_key().replace(b"\0", b"\1")
    legacy = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(kek),
    )
    plain = unseal(legacy, kek)
    assert serialization.load_pem_private_key(plain, password=None).private_numbers() == (
        key.private_numbers()
    )
    with pytest.raises(WrongKEK):
        unseal(legacy, new_unlock_key())


def test_resealing_under_a_new_kek() -> None:
    plain = new_node_key().key_pem
    old, new = new_unlock_key(), new_unlock_key()
    resealed = seal(unseal(seal(plain, old), old), new)
    assert unseal(resealed, new) == plain
    with pytest.raises(WrongKEK):
        unseal(resealed, old)
    assert stored_form(plain, None) == plain
    assert unseal(stored_form(plain, new), new) == plain


def test_a_sealed_secret_opens_with_its_kek_only() -> None:
    kek, other = new_unlock_key(), new_unlock_key()
    blob = seal_secret(b"the previous key", kek)
    assert b"the previous key" not in blob
    assert open_secret(blob, kek) == b"the previous key"
    for wrong in (other, b"", kek[:5]):
        with pytest.raises(WrongKEK):
            open_secret(blob, wrong)
    with pytest.raises(WrongKEK):
        open_secret(blob[:10], kek)

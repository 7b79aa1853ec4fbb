"""A node's private key sealed at rest under the swarm's unlock key (autolock).

As swarmkit keeps a locked manager's ``swarm-node.key``: an encrypted PKCS#8 PEM
("ENCRYPTED PRIVATE KEY", PBES2 with AES-256-CBC) whose password comes from the
key-encryption key (the unlock key's 32 bytes). Unsealed, the key is the plain PKCS#8 PEM
every node uses.

The password is the KEK in base64, not its raw bytes: OpenSSL takes a PEM password up to its
first NUL byte, so a raw KEK ending in 0x00 (1 in 256) was opened by the same KEK one byte
shorter, and one with a NUL at byte k had only k bytes of strength (a NUL first: none). Keys
sealed that way by earlier versions still open with their KEK (``_LEGACY``).

``seal_secret`` seals a small secret (the previous unlock key, while a manager moves its keys
from one unlock key to the next) under a KEK.
"""

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_SEALED_MARK = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
_NONCE_SIZE = 12
# Binds a sealed secret to what it is: the same bytes are no valid anything else.
_SECRET_AD = b"shoal previous kek v1"


def _password(kek: bytes) -> bytes:
    return base64.b64encode(kek)


class KeySealed(Exception):
    """The key is sealed and no key-encryption key was given."""


class WrongKEK(Exception):
    """The key-encryption key given does not open the sealed key."""


def is_sealed(pem: bytes) -> bool:
    return pem.lstrip().startswith(_SEALED_MARK)


def seal(key_pem: bytes, kek: bytes) -> bytes:
    """``key_pem`` (sealed or not: only its key matters) as an encrypted PKCS#8 PEM."""
    if not kek:
        raise ValueError("sealing needs a key-encryption key")
    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_password(kek)),
    )


def unseal(pem: bytes, kek: bytes | None) -> bytes:
    """The plain PKCS#8 PEM of a key kept sealed or not (a plain one is returned as it is,
    whatever ``kek``). KeySealed without a KEK, WrongKEK when it does not open."""
    if not is_sealed(pem):
        return pem
    if kek is None:
        raise KeySealed("the node key is sealed: the swarm's unlock key opens it")
    if not kek:
        raise WrongKEK("an empty key opens nothing")
    key: PrivateKeyTypes | None
    try:
        key = serialization.load_pem_private_key(pem, password=_password(kek))
    except (ValueError, TypeError) as err:
        key = _open_legacy(pem, kek)
        if key is None:
            raise WrongKEK(str(err)) from None
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _open_legacy(pem: bytes, kek: bytes) -> PrivateKeyTypes | None:
    """A key an earlier version sealed with the raw KEK as its password, or None. (Such a
    key keeps the weakness the module's note describes until it is sealed again.)"""
    try:
        return serialization.load_pem_private_key(pem, password=kek)
    except (ValueError, TypeError):
        return None


def stored_form(key_pem: bytes, kek: bytes | None) -> bytes:
    """How a key is written to disk: sealed under ``kek``, or plain without one."""
    return seal(key_pem, kek) if kek is not None else key_pem


def seal_secret(secret: bytes, kek: bytes) -> bytes:
    """A small secret sealed under ``kek`` (AES-256-GCM: nonce, then ciphertext and tag)."""
    nonce = os.urandom(_NONCE_SIZE)
    return nonce + AESGCM(kek).encrypt(nonce, secret, _SECRET_AD)


def open_secret(blob: bytes, kek: bytes) -> bytes:
    """What ``seal_secret`` sealed; WrongKEK when ``kek`` does not open it."""
    if len(kek) not in (16, 24, 32) or len(blob) <= _NONCE_SIZE:
        raise WrongKEK("not a key for this secret")
    try:
        return AESGCM(kek).decrypt(blob[:_NONCE_SIZE], blob[_NONCE_SIZE:], _SECRET_AD)
    except InvalidTag:
        raise WrongKEK("the key does not open this secret") from None

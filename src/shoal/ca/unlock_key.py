"""The swarm's unlock key in Swarm's format: ``SWMKEY-1-`` and 32 random bytes in base64
without padding (swarmkit's encryption.HumanReadableKey).

With autolock on, those 32 bytes are the key-encryption key (KEK) every manager seals its
TLS key and raft data keys under. The key lives in the Cluster object (replicated through
raft, never shown by ``GET /swarm``); an operator gives it back to unlock a restarted manager.
"""

import base64
import binascii
import secrets

PREFIX = "SWMKEY-1-"
KEY_SIZE = 32

# Docker's word for anything that is not a key (moby returns it as a 400).
INVALID_KEY_STRING = "invalid key string"


def new_unlock_key() -> bytes:
    return secrets.token_bytes(KEY_SIZE)


def human_readable(key: bytes) -> str:
    return PREFIX + base64.b64encode(key).decode().rstrip("=")


def parse_human_readable(text: str) -> bytes:
    """The key's bytes; ValueError(INVALID_KEY_STRING) for anything else. As Go's
    RawStdEncoding: no padding, line breaks skipped, unused low bits of the last character
    ignored. Any length decodes (a wrong key is then refused by what it fails to open)."""
    if not text.startswith(PREFIX):
        raise ValueError(INVALID_KEY_STRING)
    body = text[len(PREFIX) :].replace("\r", "").replace("\n", "")
    if "=" in body or len(body) % 4 == 1:
        raise ValueError(INVALID_KEY_STRING)
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(INVALID_KEY_STRING) from None

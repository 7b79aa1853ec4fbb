"""Join tokens in Swarm's format: ``SWMTKN-1-<CA digest>-<secret>``.

The digest pins the root CA certificate (sha256 of its PEM, in base 36, 50 characters) so a
joining node can check it is talking to the right cluster before trusting it; the secret (128
random bits, base 36, 25 characters) is what lets it in, and differs between the worker and
the manager token.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from shoal.api.ids import base36

PREFIX = "SWMTKN"
VERSION = "1"
DIGEST_LENGTH = 50
SECRET_LENGTH = 25

_TOKEN_RE = re.compile(r"^SWMTKN-1-([0-9a-z]{50})-([0-9a-z]{25})$")

INVALID_TOKEN = "invalid join token"


@dataclass(frozen=True)
class ParsedToken:
    ca_digest: str
    secret: str


def ca_digest(ca_cert_pem: bytes) -> str:
    return base36(int.from_bytes(hashlib.sha256(ca_cert_pem).digest(), "big"), DIGEST_LENGTH)


def generate(ca_cert_pem: bytes) -> str:
    secret = base36(secrets.randbits(128), SECRET_LENGTH)
    return f"{PREFIX}-{VERSION}-{ca_digest(ca_cert_pem)}-{secret}"


def parse(token: str) -> ParsedToken:
    """Split a token; raises ValueError("invalid join token") if it is not one."""
    m = _TOKEN_RE.match(token.strip())
    if not m:
        raise ValueError(INVALID_TOKEN)
    return ParsedToken(ca_digest=m.group(1), secret=m.group(2))


def matches(presented: str, expected: str) -> bool:
    """Constant-time comparison, so the time taken says nothing about the secret."""
    return hmac.compare_digest(presented.encode(), expected.encode())

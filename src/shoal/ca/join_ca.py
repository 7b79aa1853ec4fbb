"""The join CA: how a node with no certificate yet gets through mutual TLS to join.

Every node-to-node connection requires a client certificate (Python's gRPC cannot ask for one
only "if given"). A node that is joining has none, so it presents one signed by the join CA:
a CA whose key anyone can derive (it is made from a fixed, published seed), the same for every
shoal cluster. Holding such a certificate proves nothing about the holder; it only gets a
caller through the handshake, and the server then lets it call nothing but the two NodeCA
methods a joining node needs (as Swarm serves them without authentication). The server offers
a join server certificate too (chosen by the name the client asks for, ``swarm-join``), so the
joining node can fetch the root CA before it trusts it; it then checks the root CA against the
token's digest (a manager of another cluster is refused there, with Swarm's "remote CA does not
match fingerprint") and sends its token only to a server whose ``swarm-manager`` certificate
chains to that root.
"""

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

JOIN_SERVER_NAME = "swarm-join"
JOIN_CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swarm-join-ca")])
_P256_ORDER = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
_VALIDITY = dt.timedelta(days=20 * 365)


@dataclass(frozen=True)
class JoinMaterial:
    """The join CA certificate (to trust) and a leaf certificate and key (to present)."""

    ca_cert: bytes
    cert: bytes
    key: bytes


def _derived_key() -> ec.EllipticCurvePrivateKey:
    seed = hashlib.sha256(b"shoal join ca\x00").digest()
    return ec.derive_private_key(
        int.from_bytes(seed, "big") % (_P256_ORDER - 1) + 1, ec.SECP256R1()
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def join_material(leaf_name: str, now: dt.datetime) -> JoinMaterial:
    """The join CA, and a fresh leaf certificate under it named ``leaf_name`` (``swarm-join``
    for a server, anything for a client)."""
    ca_key = _derived_key()
    start = now - dt.timedelta(hours=1)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(JOIN_CA_NAME)
        .issuer_name(JOIN_CA_NAME)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, leaf_name)]))
        .issuer_name(JOIN_CA_NAME)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(leaf_name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return JoinMaterial(
        ca_cert=_pem(ca_cert),
        cert=_pem(leaf),
        key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )

"""Creating the root CA (ECDSA P-256, 20 years, CN swarm-ca, as Swarm's)."""

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from shoal.ca.certificates import ca_public_key, load_ca_key

ROOT_CA_VALIDITY = dt.timedelta(days=20 * 365)
ROOT_CN = "swarm-ca"
_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


@dataclass(frozen=True)
class RootCAMaterial:
    cert_pem: bytes
    key_pem: bytes


def create_root_ca(now: dt.datetime | None = None) -> RootCAMaterial:
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    # PrintableString, as Go encodes it: `node inspect` shows the same Issuer Subject as Swarm.
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, ROOT_CN, _type=_ASN1Type.PrintableString)]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Backdated a little so that nodes with a slightly slow clock accept it at once.
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + ROOT_CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            _CA_KEY_USAGE,
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return RootCAMaterial(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def cross_sign(new_cert_pem: bytes, old_cert_pem: bytes, old_key_pem: bytes) -> bytes:
    """The new root's name and key in a CA certificate signed by the old root.

    During a root rotation a node's certificate from the new root travels with this one, so a
    peer that still trusts only the old root can verify it (new root key -> old root), while
    a peer that already trusts the new root goes straight to it."""
    new = x509.load_pem_x509_certificate(new_cert_pem)
    old = x509.load_pem_x509_certificate(old_cert_pem)
    old_key = load_ca_key(old_key_pem)
    cert = (
        x509.CertificateBuilder()
        .subject_name(new.subject)
        .issuer_name(old.subject)
        .public_key(new.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(new.not_valid_before_utc)
        .not_valid_after(min(new.not_valid_after_utc, old.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            _CA_KEY_USAGE,
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(new.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public_key(old)),
            critical=False,
        )
        .sign(old_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)

"""Node key pairs, certificate requests, and signing them with the root CA.

A node certificate names the node (CN = node ID), its role (OU = swarm-manager or
swarm-worker) and its cluster (O = cluster ID), as Swarm's do. The node makes its own key and
sends only a certificate request, so its private key never leaves it.
"""

import base64
import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shoal.api.objects import TLSInfo
from shoal.api.types import NodeRole

# Certificates start a little before they are issued, so that a node whose clock is slightly
# behind the CA's accepts them at once.
BACKDATE = dt.timedelta(minutes=5)

ROLE_OU = {NodeRole.MANAGER: "swarm-manager", NodeRole.WORKER: "swarm-worker"}
OU_ROLE = {ou: role for role, ou in ROLE_OU.items()}


@dataclass(frozen=True)
class NodeKey:
    key_pem: bytes
    csr_pem: bytes


@dataclass(frozen=True)
class CertificateIdentity:
    node_id: str
    role: NodeRole | None
    cluster_id: str
    not_after: dt.datetime


def new_node_key() -> NodeKey:
    key = ec.generate_private_key(ec.SECP256R1())
    # The CA decides the names; the request only proves possession of the key.
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shoal-node")]))
        .sign(key, hashes.SHA256())
    )
    return NodeKey(
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        csr_pem=csr.public_bytes(serialization.Encoding.PEM),
    )


def load_ca_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """A root CA's key: ECDSA, as every root shoal makes (and Swarm's) is."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"the root CA key is {type(key).__name__}, not ECDSA")
    return key


def ca_public_key(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError(f"the root CA's key is {type(key).__name__}, not ECDSA")
    return key


def sign_node_certificate(
    csr_pem: bytes,
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    node_id: str,
    role: NodeRole,
    cluster_id: str,
    expiry: dt.timedelta,
    now: dt.datetime,
) -> bytes:
    """Sign a node's request; raises ValueError if the request is not a valid, self-signed
    certificate request."""
    csr = x509.load_pem_x509_csr(csr_pem)
    if not csr.is_signature_valid:
        raise ValueError("certificate request signature is invalid")
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = load_ca_key(ca_key_pem)
    ou = ROLE_OU[role]
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            x509.NameAttribute(NameOID.COMMON_NAME, node_id),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + expiry)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        # Every root is named swarm-ca, as Swarm's are: during a rotation the key identifier
        # is what tells a verifier which of two trusted roots signed this certificate.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public_key(ca_cert)),
            critical=False,
        )
        # Peers check the server's name: every node answers to its role and its ID.
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(ou), x509.DNSName(node_id)]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def load_chain(pem: bytes) -> list[x509.Certificate]:
    """The certificates of a PEM chain, leaf first."""
    return x509.load_pem_x509_certificates(pem)


def certificate_identity(cert_pem: bytes) -> CertificateIdentity:
    """Who a node certificate (or a chain, leaf first) names."""
    cert = load_chain(cert_pem)[0]

    def attr(oid: x509.ObjectIdentifier) -> str:
        values = cert.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    return CertificateIdentity(
        node_id=attr(NameOID.COMMON_NAME),
        role=OU_ROLE.get(attr(NameOID.ORGANIZATIONAL_UNIT_NAME)),
        cluster_id=attr(NameOID.ORGANIZATION_NAME),
        not_after=cert.not_valid_after_utc,
    )


def issued_at(cert_pem: bytes) -> dt.datetime:
    return load_chain(cert_pem)[0].not_valid_before_utc + BACKDATE


def not_after(cert_pem: bytes) -> dt.datetime:
    return load_chain(cert_pem)[0].not_valid_after_utc


def issuing_root(chain_pem: bytes, roots_pem: bytes) -> x509.Certificate | None:
    """Which of the trusted roots issued this node certificate (directly, or through the
    cross-signed certificate of a root rotation, which carries the new root's key)."""
    leaf = load_chain(chain_pem)[0]
    for root in load_chain(roots_pem):
        try:
            leaf.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return root
    return None


def tls_info(root: x509.Certificate) -> TLSInfo:
    """Docker's TLSInfo for certificates issued by ``root``: the root itself, its subject and
    its public key (DER, base64)."""
    spki = root.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TLSInfo(
        TrustRoot=root.public_bytes(serialization.Encoding.PEM).decode(),
        CertIssuerSubject=base64.b64encode(root.subject.public_bytes()).decode(),
        CertIssuerPublicKey=base64.b64encode(spki).decode(),
    )


def root_tls_info(ca_cert_pem: bytes) -> TLSInfo:
    return tls_info(x509.load_pem_x509_certificate(ca_cert_pem))

"""Helpers for the trust tests: a node's certificate files, and calls to a manager's RPC port
with whatever credentials a test (or an attacker) holds."""

import datetime as dt
import json
import stat
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shoal.rpc import pb, pb_grpc
from tests.e2e.harness import Node


@dataclass(frozen=True)
class Credentials:
    key: bytes | None
    cert: bytes | None
    roots: bytes


def certificates_dir(node: Node) -> Path:
    return node.state_dir / "swarm" / "certificates"


def node_credentials(node: Node) -> Credentials:
    d = certificates_dir(node)
    return Credentials(
        key=(d / "swarm-node.key").read_bytes(),
        cert=(d / "swarm-node.crt").read_bytes(),
        roots=(d / "swarm-root-ca.crt").read_bytes(),
    )


def leaf(node: Node) -> x509.Certificate:
    return x509.load_pem_x509_certificates(
        (certificates_dir(node) / "swarm-node.crt").read_bytes()
    )[0]


def self_signed(cluster_id: str, node_id: str, role: str = "swarm-manager") -> Credentials:
    """A certificate that names a real node, role and cluster, signed by nobody we trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, node_id),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swarm-ca")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(role)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Credentials(
        key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert=cert.public_bytes(serialization.Encoding.PEM),
        roots=b"",
    )


def channel(addr: str, creds: Credentials, roots: bytes) -> grpc.Channel:
    tls = grpc.ssl_channel_credentials(
        root_certificates=roots, private_key=creds.key, certificate_chain=creds.cert
    )
    return grpc.secure_channel(
        addr, tls, options=[("grpc.ssl_target_name_override", "swarm-manager")]
    )


def control_call(
    addr: str, creds: Credentials, roots: bytes, method: str, *args: object
) -> grpc.StatusCode:
    """Call the leader's Control service (manager-only) and return the status it ends with."""
    with channel(addr, creds, roots) as ch:
        try:
            pb_grpc.ControlStub(ch).Call(
                pb.ControlRequest(
                    method=method, args=json.dumps({"Args": list(args), "Kwargs": {}}).encode()
                ),
                timeout=10,
            )
        except grpc.RpcError as err:
            return err.code()  # type: ignore[attr-defined]
    return grpc.StatusCode.OK


def session_call(addr: str, creds: Credentials, roots: bytes) -> grpc.StatusCode:
    """Open a dispatcher session (any node of the cluster may) and read its first message."""
    with channel(addr, creds, roots) as ch:
        try:
            stream = pb_grpc.DispatcherStub(ch).Session(pb.SessionRequest(), timeout=10)
            next(iter(stream))
        except grpc.RpcError as err:
            return err.code()  # type: ignore[attr-defined]
    return grpc.StatusCode.OK


def raft_join_call(addr: str, creds: Credentials, roots: bytes, node_id: str) -> grpc.StatusCode:
    with channel(addr, creds, roots) as ch:
        try:
            pb_grpc.RaftStub(ch).Join(pb.JoinRaftRequest(node_id=node_id, addr=addr), timeout=10)
        except grpc.RpcError as err:
            return err.code()  # type: ignore[attr-defined]
    return grpc.StatusCode.OK


def cluster_snapshot(manager: Node) -> dict:
    """What a refused caller must leave unchanged: nodes, services, tasks, the cluster."""
    swarm = manager.get("/swarm")
    return {
        "swarm": (swarm["Version"], swarm["JoinTokens"], swarm["TLSInfo"]),
        "nodes": sorted((n["ID"], n["Version"]["Index"]) for n in manager.get("/nodes")),
        "services": sorted((s["ID"], s["Version"]["Index"]) for s in manager.get("/services")),
        "tasks": sorted(t["ID"] for t in manager.get("/tasks")),
    }


def private_files(root: Path) -> list[tuple[Path, int]]:
    """Every file under ``root`` with its permission bits."""
    return [(p, stat.S_IMODE(p.stat().st_mode)) for p in sorted(root.rglob("*")) if p.is_file()]

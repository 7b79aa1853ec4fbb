"""What a node does with the managers' trust bundle: trust it, and renew when its
certificate is not from the root that signs now."""

import datetime as dt
import stat
from pathlib import Path

from shoal.api.types import NodeRole
from shoal.ca.rootca import create_root_ca
from shoal.clock import FakeClock
from shoal.daemon.certificates import NodeCertificates
from shoal.daemon.swarm_state import SwarmDir
from shoal.manager.nodeca.rotation import begin_rotation, finish_rotation
from shoal.rpc import Transport
from tests.unit.ca.test_rotation import NOW, cluster_with, issue


def keeper(tmp_path: Path, material) -> NodeCertificates:  # type: ignore[no-untyped-def]
    certs = NodeCertificates(SwarmDir(tmp_path), Transport(), FakeClock(), managers=lambda: [])
    certs.install(material.key, material.cert, material.ca)
    return certs


def test_a_rotation_makes_a_node_renew_twice(tmp_path: Path) -> None:
    before = cluster_with(create_root_ca(NOW))
    before.Spec.CAConfig.ForceRotate = 1
    during = begin_rotation(before, create_root_ca(NOW))
    after = finish_rotation(during)
    certs = keeper(tmp_path, issue(before, "w"))
    assert not certs.needs_new_certificate()
    generation = certs.transport.generation

    certs.trust(during.RootCA.trust_bundle())  # the rotation begins
    assert certs.material.ca == during.RootCA.trust_bundle()
    assert certs.transport.generation > generation  # channels made from now trust both
    assert certs.needs_new_certificate()  # its certificate is from the old root

    renewed = issue(during, "w")
    certs.install(renewed.key, renewed.cert, renewed.ca)
    assert not certs.needs_new_certificate()
    info = certs.tls_info()
    assert info.CertIssuerPublicKey == after.TLSInfo.CertIssuerPublicKey

    certs.trust(after.RootCA.trust_bundle())  # the rotation ends: the new root alone
    # Still verifiable, but it carries the cross-signed old root: renew to drop it.
    assert certs.needs_new_certificate()
    final = issue(after, "w")
    certs.install(final.key, final.cert, final.ca)
    assert not certs.needs_new_certificate()
    assert certs.tls_info().TrustRoot == after.TLSInfo.TrustRoot


def test_the_same_bundle_changes_nothing(tmp_path: Path) -> None:
    cluster = cluster_with(create_root_ca(NOW))
    certs = keeper(tmp_path, issue(cluster, "w", NodeRole.WORKER))
    generation = certs.transport.generation
    certs.trust(cluster.RootCA.trust_bundle())
    certs.trust(b"")
    assert certs.transport.generation == generation
    assert certs.role == NodeRole.WORKER


def test_files_are_the_owners_alone(tmp_path: Path) -> None:
    cluster = cluster_with(create_root_ca(NOW))
    keeper(tmp_path, issue(cluster, "w"))
    d = SwarmDir(tmp_path).certificates
    for name in ("swarm-node.key", "swarm-node.crt", "swarm-root-ca.crt"):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_renewal_is_planned_within_the_certificates_life(tmp_path: Path) -> None:
    cluster = cluster_with(create_root_ca(NOW))
    certs = keeper(tmp_path, issue(cluster, "w"))  # one hour of life from NOW
    due = certs.next_renewal()
    assert NOW + dt.timedelta(minutes=30) - dt.timedelta(seconds=1) <= due
    assert due <= NOW + dt.timedelta(minutes=48) + dt.timedelta(seconds=1)

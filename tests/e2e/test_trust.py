"""Trust between nodes, tried by breaking in: each way in that must be refused has its own
test, against real daemons, and each checks that the refusal left no trace in the cluster."""

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from tests.e2e.harness import LocalCluster, local_cluster, wait_for
from tests.e2e.trust import (
    Credentials,
    certificates_dir,
    cluster_snapshot,
    control_call,
    leaf,
    node_credentials,
    private_files,
    raft_join_call,
    self_signed,
    session_call,
)

REFUSED_AT_HANDSHAKE = grpc.StatusCode.UNAVAILABLE


@pytest.fixture
def second_cluster() -> Iterator[LocalCluster]:
    """Another swarm (its own root CA) on another loopback address."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="shoal-e2e-b-", dir="/tmp"))
    other = LocalCluster(root)
    try:
        other.add("other1")  # 127.0.0.1 too, on a port of its own
        other.init()
        yield other
    finally:
        other.close()
        shutil.rmtree(root, ignore_errors=True)


def _join(cluster: LocalCluster, token: str) -> tuple[object, dict, dict]:
    before = cluster_snapshot(cluster.manager)
    joiner = cluster.add("joiner")
    result = joiner.cli("swarm", "join", "--token", token, cluster.manager.addr, check=False)
    return result, before, joiner.get("/info")["Swarm"]


def test_join_with_a_wrong_token_is_refused(cluster: LocalCluster) -> None:
    good = cluster.manager.cli("swarm", "join-token", "-q", "worker").stdout.strip()
    wrong = good[:-25] + "0" * 25  # the right CA digest, a made-up secret
    result, before, info = _join(cluster, wrong)
    assert result.returncode == 1
    assert result.stderr == (
        "Error response from daemon: rpc error: code = InvalidArgument desc = "
        "A valid join token is necessary to join this cluster\n"
    )
    assert info["LocalNodeState"] == "inactive"
    assert cluster_snapshot(cluster.manager) == before


def test_join_with_a_rotated_token_is_refused(cluster: LocalCluster) -> None:
    old = cluster.manager.cli("swarm", "join-token", "-q", "worker").stdout.strip()
    cluster.manager.cli("swarm", "join-token", "--rotate", "worker")
    result, before, info = _join(cluster, old)
    assert result.returncode == 1
    assert "A valid join token is necessary to join this cluster" in result.stderr
    assert info["LocalNodeState"] == "inactive"
    assert cluster_snapshot(cluster.manager) == before


def test_join_against_a_manager_of_another_ca_is_refused(
    cluster: LocalCluster, second_cluster: LocalCluster
) -> None:
    # A token of our cluster, presented to the other cluster's manager: the joining node
    # must notice the CA is not the one the token pins before it sends the token anywhere.
    token = cluster.manager.cli("swarm", "join-token", "-q", "worker").stdout.strip()
    other = second_cluster.manager
    before = cluster_snapshot(other)
    joiner = cluster.add("joiner")
    result = joiner.cli("swarm", "join", "--token", token, other.addr, check=False)
    assert result.returncode == 1
    digest = f"{int(token.split('-')[2], 36):064x}"
    assert result.stderr == (
        f"Error response from daemon: remote CA does not match fingerprint. Expected: {digest}\n"
    )
    assert joiner.get("/info")["Swarm"]["LocalNodeState"] == "inactive"
    assert cluster_snapshot(other) == before


def test_a_worker_cannot_call_manager_only_rpcs(cluster: LocalCluster) -> None:
    manager, worker = cluster.manager, cluster.nodes[1]
    creds = node_credentials(worker)
    before = cluster_snapshot(manager)
    # Its certificate is good: the dispatcher, open to every node, takes it.
    assert session_call(manager.addr, creds, creds.roots) == grpc.StatusCode.OK
    # The control API (here: removing the manager) and raft are for managers only.
    manager_id = cluster.node_id(manager)
    assert (
        control_call(manager.addr, creds, creds.roots, "remove_node", manager_id)
        == grpc.StatusCode.PERMISSION_DENIED
    )
    worker_id = cluster.node_id(worker)
    assert (
        raft_join_call(manager.addr, creds, creds.roots, worker_id)
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert cluster_snapshot(manager) == before


def _manager_roots(cluster: LocalCluster) -> bytes:
    return node_credentials(cluster.manager).roots


def test_a_client_without_a_certificate_is_refused(cluster: LocalCluster) -> None:
    manager = cluster.manager
    before = cluster_snapshot(manager)
    nobody = Credentials(key=None, cert=None, roots=b"")
    roots = _manager_roots(cluster)
    assert session_call(manager.addr, nobody, roots) == REFUSED_AT_HANDSHAKE
    assert (
        control_call(manager.addr, nobody, roots, "remove_node", cluster.node_id(manager))
        == REFUSED_AT_HANDSHAKE
    )
    # Nor in the clear.
    with grpc.insecure_channel(manager.addr) as ch:
        from shoal.rpc import pb, pb_grpc

        with pytest.raises(grpc.RpcError) as err:
            next(iter(pb_grpc.DispatcherStub(ch).Session(pb.SessionRequest(), timeout=10)))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert cluster_snapshot(manager) == before


def test_a_self_signed_certificate_is_refused(cluster: LocalCluster) -> None:
    manager = cluster.manager
    cluster_id = leaf(manager).subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0]
    forged = self_signed(str(cluster_id.value), cluster.node_id(manager))
    assert_refused_at_handshake(cluster, forged)


def assert_refused_at_handshake(cluster: LocalCluster, creds: Credentials) -> None:
    """A session (any node may open one) and a control call (removing a worker) with these
    credentials both fail at the handshake, and the cluster is as it was."""
    manager = cluster.manager
    before = cluster_snapshot(manager)
    roots = _manager_roots(cluster)
    assert session_call(manager.addr, creds, roots) == REFUSED_AT_HANDSHAKE
    worker = cluster.node_id(cluster.nodes[1])
    assert control_call(manager.addr, creds, roots, "remove_node", worker) == REFUSED_AT_HANDSHAKE
    assert cluster_snapshot(manager) == before


def test_another_clusters_certificate_is_refused(
    cluster: LocalCluster, second_cluster: LocalCluster
) -> None:
    # A genuine manager certificate, from the other swarm's root.
    assert_refused_at_handshake(cluster, node_credentials(second_cluster.manager))


def test_a_removed_node_is_refused_and_its_tasks_move(cluster: LocalCluster) -> None:
    from tests.e2e.conftest import whoami_args

    manager, gone = cluster.manager, cluster.nodes[2]
    manager.cli(*whoami_args("web", 3))
    wait_for(lambda: len(cluster.running_tasks("web")) == 3, what="3 running tasks")
    gone_id = cluster.node_id(gone)
    creds = node_credentials(gone)
    assert session_call(manager.addr, creds, creds.roots) == grpc.StatusCode.OK
    # Removed while it runs: its daemon keeps its certificate, and keeps trying.
    manager.cli("node", "rm", "--force", gone_id)
    assert session_call(manager.addr, creds, creds.roots) == grpc.StatusCode.PERMISSION_DENIED
    before = cluster_snapshot(manager)
    assert gone_id not in [n for n, _ in before["nodes"]]
    # Its certificate renews nothing either.
    from shoal.ca.certificates import new_node_key
    from shoal.rpc import pb, pb_grpc
    from tests.e2e.trust import channel

    with channel(manager.addr, creds, creds.roots) as ch:
        with pytest.raises(grpc.RpcError) as err:
            pb_grpc.NodeCAStub(ch).IssueNodeCertificate(
                pb.IssueNodeCertificateRequest(csr=new_node_key().csr_pem), timeout=10
            )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]

    def replaced() -> bool:
        running = cluster.running_tasks("web")
        return len(running) == 3 and all(t["NodeID"] != gone_id for t in running)

    wait_for(replaced, what="the removed node's tasks running elsewhere")
    # Its daemon, still running and reconnecting, puts nothing back.
    time.sleep(2)
    after = cluster_snapshot(manager)
    assert gone_id not in [n for n, _ in after["nodes"]]


def test_keys_are_private_and_never_logged(cluster: LocalCluster) -> None:
    for node in cluster.nodes:
        swarm = node.state_dir / "swarm"
        files = private_files(swarm)
        assert files, f"nothing under {swarm}"
        loose = [(str(p), oct(mode)) for p, mode in files if mode & 0o077]
        assert loose == [], f"readable by others on {node.name}"
        assert (certificates_dir(node) / "swarm-node.key").exists()
        log = node.log_file.read_text()
        assert "PRIVATE KEY" not in log
    # The manager's log (raft) holds the CA key: owner only, like the node key.
    manager_files = private_files(cluster.manager.state_dir / "swarm" / "manager")
    assert any(p.name == "raft.db" for p, _ in manager_files)
    # Nor does the API show a key.
    assert "PRIVATE KEY" not in cluster.manager.cli("swarm", "ca").stdout
    assert "PRIVATE KEY" not in str(cluster.manager.get("/swarm"))


# --- certificates that expire, renew and rotate -----------------------------------------------

SHORT = "4s"


@pytest.fixture
def short_lived(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCluster]:
    """1 manager and 2 workers whose certificates live 4 seconds (a test-only floor)."""
    monkeypatch.setenv("SHOAL_UNSAFE_MIN_CERT_EXPIRY", "1")
    with local_cluster(
        short_tmp,
        workers=2,
        init_args=("--dispatcher-heartbeat", "1s", "--cert-expiry", SHORT),
    ) as c:
        yield c


def _task_processes(cluster: LocalCluster, service: str) -> dict[str, object]:
    return {
        t["ID"]: (t["NodeID"], t["Status"].get("ContainerStatus", {}).get("PID"))
        for t in cluster.running_tasks(service)
    }


def test_every_node_renews_its_certificate_without_restarting_tasks(
    short_lived: LocalCluster,
) -> None:
    from tests.e2e.conftest import whoami_args

    cluster = short_lived
    cluster.manager.cli(*whoami_args("web", 3))
    wait_for(lambda: len(cluster.running_tasks("web")) == 3, what="3 running tasks")
    tasks = _task_processes(cluster, "web")
    seen: dict[str, set[int]] = {n.name: {leaf(n).serial_number} for n in cluster.nodes}

    def renewed_twice() -> bool:
        for n in cluster.nodes:
            seen[n.name].add(leaf(n).serial_number)
        return all(len(serials) >= 3 for serials in seen.values())

    wait_for(renewed_twice, timeout=60, what="every node renewing its certificate twice")
    # A new lifetime (swarm update --cert-expiry) comes with each node's next certificate.
    cluster.manager.cli("swarm", "update", "--cert-expiry", "7s")

    def life(node) -> float:  # type: ignore[no-untyped-def]
        cert = leaf(node)
        return (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()

    backdate = 300
    wait_for(
        lambda: all(life(n) == backdate + 7 for n in cluster.nodes),
        timeout=60,
        what="every node holding a 7 s certificate",
    )
    # Still one cluster: every node Ready, the same tasks running, none restarted.
    listed = cluster.manager.cli("node", "ls", "--format", "{{.Status}}").stdout.split()
    assert listed == ["Ready"] * 3
    assert _task_processes(cluster, "web") == tasks
    assert all(t["ID"] in tasks for t in cluster.tasks("web")), (
        "a task was replaced while certificates renewed"
    )


def test_an_expired_certificate_is_refused(short_lived: LocalCluster) -> None:
    cluster = short_lived
    manager, worker = cluster.manager, cluster.nodes[1]
    worker.stop()  # no more renewals: its certificate runs out
    creds = node_credentials(worker)
    expires = leaf(worker).not_valid_after_utc.timestamp()
    time.sleep(max(0.0, expires - time.time()) + 1.5)
    before = cluster_snapshot(manager)
    assert session_call(manager.addr, creds, _manager_roots(cluster)) == REFUSED_AT_HANDSHAKE
    assert cluster_snapshot(manager) == before


def test_root_ca_rotation_moves_every_node_without_restarting_tasks(
    cluster: LocalCluster,
) -> None:
    from tests.e2e.conftest import whoami_args

    manager = cluster.manager
    manager.cli(*whoami_args("web", 3))
    wait_for(lambda: len(cluster.running_tasks("web")) == 3, what="3 running tasks")
    tasks = _task_processes(cluster, "web")
    old_root = manager.cli("swarm", "ca").stdout
    old_tokens = manager.get("/swarm")["JoinTokens"]

    shown = manager.cli("swarm", "ca", "--rotate").stdout  # waits for the rotation
    progress, _, cert = shown.partition("-----BEGIN CERTIFICATE-----")
    new_root = "-----BEGIN CERTIFICATE-----" + cert
    assert new_root != old_root
    # Docker's progress without a terminal: the bars' names, then the desired root's digest
    # at each poll, the old root's while the rotation runs, the new one's at the end.
    lines = progress.split("\n")[:-1]
    assert lines[:3] == [
        "desired root digest: ",
        "  rotated TLS certificates: ",
        "  rotated CA certificates:  ",
    ]
    digest = hashlib.sha256(new_root.encode()).hexdigest()
    assert lines[-1] == f"desired root digest: sha256:{digest}"
    assert all(line.startswith("desired root digest: sha256:") for line in lines[3:])
    swarm = manager.get("/swarm")
    assert not swarm["RootRotationInProgress"]
    assert swarm["TLSInfo"]["TrustRoot"].strip() == new_root.strip()
    assert swarm["JoinTokens"]["Worker"] != old_tokens["Worker"]
    assert swarm["JoinTokens"]["Manager"] != old_tokens["Manager"]

    def all_moved() -> bool:
        for node in cluster.nodes:
            roots = node_credentials(node).roots.decode()
            if roots.strip() != new_root.strip():
                return False
        return True

    wait_for(all_moved, what="every node trusting only the new root")
    for node in manager.get("/nodes"):
        assert (
            node["Description"]["TLSInfo"]["CertIssuerPublicKey"]
            == (swarm["TLSInfo"]["CertIssuerPublicKey"])
        )
    listed = manager.cli("node", "ls", "--format", "{{.Status}} {{.TLSStatus}}").stdout
    assert listed.split("\n")[:-1] == ["Ready Ready"] * 3
    assert _task_processes(cluster, "web") == tasks
    # The cluster still works across the new root: a change reaches the workers.
    manager.cli("service", "scale", "-d", "web=4")
    wait_for(lambda: len(cluster.running_tasks("web")) == 4, what="a 4th task")
    # The old token is refused; the new one lets a node in.
    joiner = cluster.add("joiner")
    refused = joiner.cli(
        "swarm", "join", "--token", old_tokens["Worker"], manager.addr, check=False
    )
    assert refused.returncode == 1
    joiner.cli("swarm", "join", "--token", swarm["JoinTokens"]["Worker"], manager.addr)


def _role_in_certificate(node) -> str:  # type: ignore[no-untyped-def]
    return str(
        leaf(node).subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    )


def test_promotion_and_demotion_change_the_certificates_role(cluster: LocalCluster) -> None:
    manager, worker = cluster.manager, cluster.nodes[1]
    assert _role_in_certificate(worker) == "swarm-worker"
    manager.cli("node", "promote", "worker1")
    wait_for(lambda: _role_in_certificate(worker) == "swarm-manager", what="a manager certificate")
    # With it, the new manager serves the control API (through raft, with the others).
    wait_for(
        lambda: worker.cli("node", "ls", check=False).returncode == 0,
        what="worker1 answering as a manager",
    )
    manager.cli("node", "demote", "worker1")
    wait_for(lambda: _role_in_certificate(worker) == "swarm-worker", what="a worker certificate")
    creds = node_credentials(worker)
    assert (
        control_call(manager.addr, creds, creds.roots, "remove_node", cluster.node_id(manager))
        == grpc.StatusCode.PERMISSION_DENIED
    )


def test_node_inspect_and_info_show_the_trust_root(cluster: LocalCluster) -> None:
    manager = cluster.manager
    root = manager.cli("swarm", "ca").stdout
    shown = manager.cli("node", "inspect", "--pretty", "worker2").stdout
    assert "TLS Info:\n TrustRoot:\n" + root in shown
    assert " Issuer Subject:\tMBMxETAPBgNVBAMTCHN3YXJtLWNh\n" in shown
    key = manager.get("/swarm")["TLSInfo"]["CertIssuerPublicKey"]
    assert f" Issuer Public Key:\t{key}\n" in shown
    info = manager.cli("info").stdout
    assert "  CA Configuration:\n   Expiry Duration: 3 months\n" in info
    assert "  Root Rotation In Progress: false\n" in info

"""Secrets and configs delivered to tasks, end to end with the CLI on a manager and a worker:
a process task reads them at Swarm's paths with the owner and mode asked for (the templated
config expanded for it), only the node running it holds them, none of it lands in a node's
state directory, and once the service drops them they are gone from the node."""

import hashlib
import os
from pathlib import Path

import pytest

from tests.e2e.harness import LocalCluster, local_cluster, wait_for
from tests.integration.network.netns import why_no_netns, why_no_nft

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root")


@pytest.fixture
def pair(short_tmp: Path):
    with local_cluster(short_tmp, workers=1) as cluster:
        yield cluster


def files_under(root: Path):
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


def holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in files_under(root) if needle in p.read_bytes()]


def test_a_service_task_reads_its_secret_and_config_and_they_leave_with_it(
    pair: LocalCluster, short_tmp: Path
):
    manager, worker = pair.nodes
    token = "tok-" + hashlib.sha256(str(short_tmp).encode()).hexdigest()[:24]
    secret_file = short_tmp / "db.txt"
    secret_file.write_text(token)
    template = short_tmp / "app.tmpl"
    template.write_text('svc={{.Service.Name}} host={{.Node.Hostname}} mode={{env "MODE"}}')
    manager.cli("secret", "create", "db", str(secret_file))
    secret_file.unlink()
    manager.cli("config", "create", "--template-driver", "golang", "app", str(template))
    worker_id = pair.node_id(worker)
    manager.cli(
        "service", "create", "-d", "--runtime", "process", "--name", "reader",
        "--constraint", f"node.id=={worker_id}", "--env", "MODE=blue",
        "--secret", "source=db,target=db,uid=1234,gid=2345,mode=0440",
        "--config", "source=app,target=/etc/shoal-e2e-app.conf",
        "sh", "-c",
        'stat -c "%n %u %g %a" /run/secrets/db /etc/shoal-e2e-app.conf; '
        "md5sum < /run/secrets/db; cat /etc/shoal-e2e-app.conf; echo; sleep 300",
    )  # fmt: skip

    def logs() -> str:
        return manager.cli("service", "logs", "--raw", "reader", check=False).stdout

    out = wait_for(lambda: "svc=reader" in logs() and logs(), what="the task's output")
    lines = out.splitlines()
    assert "/run/secrets/db 1234 2345 440" in lines
    assert "/etc/shoal-e2e-app.conf 0 0 444" in lines
    assert any(line.startswith(hashlib.md5(token.encode()).hexdigest()) for line in lines)
    assert "svc=reader host=worker1 mode=blue" in lines
    assert not Path("/etc/shoal-e2e-app.conf").exists()  # seen by the task only

    # Only the worker running the task has the files (on its tmpfs); nothing on disk has them.
    worker_files = Path("/run/shoal") / worker_id / "files"
    manager_files = Path("/run/shoal") / pair.node_id(manager) / "files"
    assert holding(worker_files, token.encode())
    assert not holding(manager_files, token.encode())
    for node in (manager, worker):
        assert not holding(node.state_dir, token.encode()), node.name

    # The service lets go of both: the new task runs without them, the worker drops them.
    manager.cli("service", "update", "-d", "--secret-rm", "db", "--config-rm", "app", "reader")
    wait_for(lambda: not holding(worker_files, token.encode()), what="the secret's file gone")
    wait_for(
        lambda: (
            len(pair.running_tasks("reader")) == 1
            and not pair.running_tasks("reader")[0]["Spec"]["ContainerSpec"].get("Secrets")
        ),
        what="the task without the secret running",
    )
    assert list(files_under(worker_files)) == []
    manager.cli("secret", "rm", "db")
    manager.cli("config", "rm", "app")


@pytest.mark.skipif(why_no_netns() or why_no_nft(), reason="overlay networks need netns, nft")
def test_a_task_on_an_overlay_network_sees_its_secret_and_its_resolver(pair: LocalCluster):
    """Both the network's resolver file and the secret are shown in the task's own mount
    namespace: neither hides the other."""
    manager, _ = pair.nodes
    manager.cli("network", "create", "-d", "overlay", "app")
    manager.cli("secret", "create", "--label", "x=y", "key", str(_write(pair, "key-bytes")))
    manager.cli(
        "service", "create", "-d", "--runtime", "process", "--name", "netted",
        "--network", "app", "--secret", "key",
        "sh", "-c", "cat /run/secrets/key; echo; grep ndots /etc/resolv.conf; sleep 300",
    )  # fmt: skip
    out = wait_for(
        lambda: (
            (o := manager.cli("service", "logs", "--raw", "netted", check=False).stdout)
            and "ndots" in o
            and o
        ),
        what="the task's output",
    )
    assert "key-bytes" in out.splitlines()
    assert "options ndots:0" in out.splitlines()


def _write(pair: LocalCluster, text: str) -> Path:
    path = pair.root / "payload.txt"
    path.write_text(text)
    return path

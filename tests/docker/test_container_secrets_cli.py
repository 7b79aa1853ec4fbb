"""Secrets in containers through shoal's CLI on one node with the real engine: the file as
Docker shows it, and a template that cannot be expanded failing the task with the error
Docker 20.10 gives for the same service (checked on a real swarm)."""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker.conftest import IMAGE
from tests.e2e.harness import LocalCluster, local_cluster, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def single(docker_engine: str) -> Iterator[LocalCluster]:
    root = Path(tempfile.mkdtemp(prefix="shoal-sec-", dir="/tmp"))
    try:
        with local_cluster(root, workers=0) as c:
            yield c
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_secrets_in_containers_through_the_cli(single: LocalCluster):
    m = single.manager
    plain = single.root / "plain"
    plain.write_text("plain")
    broken = single.root / "broken"
    broken.write_text('X={{secret "nope"}}')
    m.cli("secret", "create", "sd-p1", str(plain))
    broken_id = m.cli(
        "secret", "create", "--template-driver", "golang", "sd-t1", str(broken)
    ).stdout.strip()

    m.cli(
        "service", "create", "-d", "--name", "reader", "--stop-grace-period", "0s",
        "--secret", "source=sd-p1,target=other,uid=7,gid=8,mode=0400",
        IMAGE, "sh", "-c", 'stat -c "%n %u %g %a" /run/secrets/other; cat /run/secrets/other;'
        " echo; sleep 300",
    )  # fmt: skip
    out = wait_for(
        lambda: (
            (o := m.cli("service", "logs", "--raw", "reader", check=False).stdout)
            and "plain" in o
            and o
        ),
        what="the container's output",
    )
    assert out.splitlines()[:2] == ["/run/secrets/other 7 8 400", "plain"]

    m.cli(
        "service", "create", "-d", "--name", "broken", "--restart-condition", "none",
        "--secret", "sd-t1", "--secret", "source=sd-p1,target=other", IMAGE, "sleep", "300",
    )  # fmt: skip
    task = wait_for(
        lambda: [t for t in single.tasks("broken") if t["Status"]["State"] == "failed"],
        what="the task failed",
    )[0]
    assert task["Status"]["Message"] == "starting"
    assert task["Status"]["Err"] == (
        "starting container failed: unable to get secret from secret store: failed to expand "
        f'templated secret {broken_id}: template: expansion:1:4: executing "expansion" at '
        '<secret "nope">: error calling secret: secret target nope not found'
    )

"""The overlay resolver asked by the C library: a task's getaddrinfo (through ``getent``)
in a namespace of its own, whose resolv.conf names the resolver served from another
namespace on port 53, as a task's names the gateway of its network sandbox."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.network.netns import Testbed, why_no_netns

_no_netns = why_no_netns()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(_no_netns is not None, reason=str(_no_netns))]

APP = Path(__file__).parent / "apps" / "resolver.py"
RESOLVER, TASK, STRANGER = 1, 2, 3


@pytest.fixture(scope="module")
def bed() -> Iterator[Testbed]:
    with Testbed(hosts=3) as bed:
        app = bed.popen(
            RESOLVER,
            [sys.executable, str(APP), "--listen", bed.addr(RESOLVER), "--client", bed.addr(TASK)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert app.stdout is not None and app.stdout.readline().strip() == "ready"
        # `ip netns exec` mounts /etc/netns/<name>/resolv.conf over /etc/resolv.conf
        confs = [Path("/etc/netns") / bed.ns(i) for i in (TASK, STRANGER)]
        try:
            for conf in confs:
                conf.mkdir(parents=True)
                (conf / "resolv.conf").write_text(
                    f"nameserver {bed.addr(RESOLVER)}\noptions timeout:2 attempts:1\n"
                )
            yield bed
        finally:
            for conf in confs:
                shutil.rmtree(conf, ignore_errors=True)


def getent(bed: Testbed, host: int, *args: str) -> tuple[int, list[str]]:
    r = bed.run(host, ["getent", *args], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout.split()


def addresses(out: list[str]) -> set[str]:
    return {w for w in out if w[:1].isdigit()}


def test_a_service_name_is_its_vip(bed: Testbed) -> None:
    code, out = getent(bed, TASK, "ahostsv4", "web")
    assert code == 0 and addresses(out) == {"10.0.1.2"}
    # any family: the C library asks A and AAAA at once; AAAA has no data, not an error
    code, out = getent(bed, TASK, "ahosts", "WEB.")
    assert code == 0 and addresses(out) == {"10.0.1.2"}


def test_every_task_even_beyond_one_udp_answer(bed: Testbed) -> None:
    # 100 addresses do not fit 512 bytes: the C library gets TC and asks again over TCP
    code, out = getent(bed, TASK, "ahostsv4", "tasks.big")
    assert code == 0 and addresses(out) == {f"10.0.3.{i}" for i in range(1, 101)}
    code, out = getent(bed, TASK, "ahostsv4", "tasks.web")
    assert code == 0 and addresses(out) == {"10.0.1.11", "10.0.1.12", "10.0.1.13"}


def test_task_addresses_have_their_names(bed: Testbed) -> None:
    code, out = getent(bed, TASK, "hosts", "10.0.1.12")
    assert code == 0 and "web.2.t2.front" in out


def test_other_names_are_the_upstreams(bed: Testbed) -> None:
    code, out = getent(bed, TASK, "ahostsv4", "example.com")
    assert code == 0 and addresses(out) == {"192.0.2.10"}
    code, _ = getent(bed, TASK, "ahostsv4", "nowhere.example")
    assert code == 2  # not found: the upstream's NXDOMAIN


def test_a_stranger_gets_nothing(bed: Testbed) -> None:
    code, out = getent(bed, STRANGER, "ahostsv4", "web")
    assert code != 0 and out == []

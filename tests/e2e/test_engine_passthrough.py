"""A shoal manager is a whole Docker endpoint: Docker's own CLI runs, lists, execs into (with
and without a TTY), reads the logs of and removes containers through it, beside the swarm's
commands, over its unix socket and over TCP with mutual TLS; a client without a certificate
from the daemon's CA is refused at the handshake."""

import os
import pty
import select
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docker import testimage
from tests.e2e.docker_certs import issue, new_ca
from tests.e2e.harness import LocalCluster, free_port

DOCKER = shutil.which("docker")
pytestmark = [
    pytest.mark.skipif(DOCKER is None, reason="no docker CLI on this machine"),
    pytest.mark.skipif(
        testimage.unreachable_reason() is not None, reason=str(testimage.unreachable_reason())
    ),
]


@dataclass
class Endpoint:
    """How Docker's CLI reaches the manager: the environment it runs with."""

    name: str
    env: dict[str, str]

    def docker(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            [DOCKER, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env,
        )
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def docker_in_pty(self, *args: str, typed: bytes = b"") -> str:
        """Run the CLI on a terminal of its own (as `-it` wants), typing ``typed``."""
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            [DOCKER, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=self.env,
            start_new_session=True,
        )
        os.close(slave)
        output = b""
        try:
            if typed:
                time.sleep(1)  # the session is up: the shell reads what follows
                os.write(master, typed)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.5)
                if ready:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:  # the terminal's other end closed
                        break
                    if not chunk:
                        break
                    output += chunk
                elif proc.poll() is not None:
                    break
            assert proc.wait(timeout=30) == 0, output
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
        return output.decode(errors="replace")


@dataclass
class Setup:
    cluster: LocalCluster
    unix: Endpoint
    tls: Endpoint
    tcp_port: int
    certs: Path


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    root = Path(tempfile.mkdtemp(prefix="shoal-engine-", dir="/tmp"))
    ca = new_ca("shoal-test-ca")
    server = issue(ca, root / "server", "shoal-manager", server_ip="127.0.0.1")
    client = issue(ca, root / "client", "docker-client")
    port = free_port("127.0.0.1")
    cluster = LocalCluster(root)
    try:
        m = cluster.add(
            "manager1",
            [
                "-H",
                f"tcp://127.0.0.1:{port}",
                "--tlsverify",
                "--tlscacert",
                str(server / "ca.pem"),
                "--tlscert",
                str(server / "cert.pem"),
                "--tlskey",
                str(server / "key.pem"),
            ],
        )
        cluster.init()
        base = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        base["DOCKER_CLI_HINTS"] = "false"
        unix = Endpoint("unix", {**base, "DOCKER_HOST": f"unix://{m.socket}"})
        tls = Endpoint(
            "tls",
            {
                **base,
                "DOCKER_HOST": f"tcp://127.0.0.1:{port}",
                "DOCKER_TLS_VERIFY": "1",
                "DOCKER_CERT_PATH": str(client),
            },
        )
        yield Setup(cluster, unix, tls, port, root)
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["unix", "tls"])
def endpoint(request, setup: Setup) -> Endpoint:
    return setup.unix if request.param == "unix" else setup.tls


@pytest.fixture
def container(endpoint: Endpoint) -> Iterator[str]:
    """A running container on the machine's engine, made through shoal (a unique name: the
    engine is shared), removed whatever happens."""
    name = f"shoal-pass-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        subprocess.run(
            [DOCKER, "-H", testimage.engine_host(), "rm", "-f", name],
            capture_output=True,
            timeout=60,
        )


def test_container_lifecycle_beside_the_swarm(endpoint: Endpoint, container: str):
    ident = endpoint.docker(
        "run", "-d", "--name", container, testimage.IMAGE, "sh", "-c", "echo started; sleep 300"
    ).strip()
    assert len(ident) == 64

    names = endpoint.docker("ps", "--filter", f"name={container}", "--format", "{{.Names}}")
    assert names.split() == [container]

    assert endpoint.docker("exec", container, "echo", "hello from exec") == "hello from exec\n"
    # Without a TTY, stdin goes in and the client's end of input (a half-close) ends it, and
    # the output still comes back whole.
    lines = "".join(f"line {i}\n" for i in range(2000))
    assert endpoint.docker("exec", "-i", container, "cat", stdin=lines) == lines

    tty = endpoint.docker_in_pty("exec", "-it", container, "sh", "-c", "tty; echo tty done")
    assert "/dev/pts/" in tty and "tty done" in tty
    session = endpoint.docker_in_pty("exec", "-it", container, "sh", typed=b"echo $((6*7))\nexit\n")
    assert "42" in session

    wait_for_logs = time.monotonic() + 30
    while "started" not in endpoint.docker("logs", container) and time.monotonic() < wait_for_logs:
        time.sleep(0.2)
    assert endpoint.docker("logs", container) == "started\n"

    # A stream that does not end by itself: the first line comes, and the client may go.
    follow = subprocess.Popen(
        [DOCKER, "logs", "-f", container],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=endpoint.env,
        text=True,
    )
    try:
        assert follow.stdout is not None and follow.stdout.readline() == "started\n"
    finally:
        follow.terminate()
        follow.wait(timeout=30)

    with tempfile.TemporaryDirectory() as out:
        endpoint.docker("cp", f"{container}:/bin/busybox", out)
        assert (Path(out) / "busybox").stat().st_size > 100_000
    stats = endpoint.docker("stats", "--no-stream", "--format", "{{.Name}}", container)
    assert stats == f"{container}\n"

    images = endpoint.docker("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert testimage.IMAGE in images.split()

    services = endpoint.docker("service", "ls")
    assert services.split()[:3] == ["ID", "NAME", "MODE"]

    assert endpoint.docker("rm", "-f", container).strip() == container
    gone = endpoint.docker("ps", "-a", "--filter", f"name={container}", "--format", "{{.Names}}")
    assert gone == ""


def test_run_attached_and_with_a_tty(endpoint: Endpoint, container: str):
    out = endpoint.docker("run", "--rm", "--name", container, testimage.IMAGE, "echo", "attached")
    assert out == "attached\n"
    tty = endpoint.docker_in_pty(
        "run", "-it", "--rm", "--name", container + "-t", testimage.IMAGE, "sh", "-c", "tty"
    )
    assert "/dev/pts/" in tty


def test_engine_errors_come_back_as_the_engine_says(endpoint: Endpoint):
    result = subprocess.run(
        [DOCKER, "exec", "shoal-pass-no-such-container", "true"],
        capture_output=True,
        text=True,
        timeout=60,
        env=endpoint.env,
    )
    assert result.returncode == 1
    assert "No such container: shoal-pass-no-such-container" in result.stderr


def _handshake_refused(port: int, context: ssl.SSLContext) -> bool:
    """Whether the server refuses the client: at the handshake or (TLS 1.3, where the client
    finishes first) on the first read after it."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
        ):
            conn.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            return conn.recv(1024) == b""
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True


def test_clients_without_a_certificate_from_the_ca_are_refused(setup: Setup):
    ca_file = setup.certs / "server" / "ca.pem"
    context = ssl.create_default_context(cafile=str(ca_file))
    assert _handshake_refused(setup.tcp_port, context)

    foreign = issue(new_ca("someone-else"), setup.certs / "foreign", "intruder")
    context = ssl.create_default_context(cafile=str(ca_file))
    context.load_cert_chain(foreign / "cert.pem", foreign / "key.pem")
    assert _handshake_refused(setup.tcp_port, context)

    # Docker's CLI with that certificate (and a CA that trusts the server) gets nowhere.
    shutil.copy(ca_file, foreign / "ca.pem")
    env = {**setup.tls.env, "DOCKER_CERT_PATH": str(foreign)}
    result = subprocess.run([DOCKER, "ps"], capture_output=True, text=True, timeout=60, env=env)
    # (dockerd's refusal carries a TLS alert, "remote error: tls: bad certificate"; asyncio's
    # TLS drops the connection without one, so the CLI says EOF.)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error during connect:")

    # Whereas with the right one, TLS works.
    good = ssl.create_default_context(cafile=str(ca_file))
    client = setup.certs / "client"
    good.load_cert_chain(client / "cert.pem", client / "key.pem")
    assert not _handshake_refused(setup.tcp_port, good)


def test_version_and_info_merge_the_engine_and_the_swarm(setup: Setup):
    version = setup.unix.docker("version", "--format", "{{json .Server}}")
    assert '"Name":"shoal"' in version
    info = setup.unix.docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Driver}}")
    state, driver = info.split()
    assert state == "active" and driver  # the swarm is shoal's, the storage driver the engine's


def test_local_networks_beside_the_swarms(setup: Setup):
    """As dockerd: `network ls` lists the engine's networks and the swarm's, a local network
    is the engine's to create, inspect and remove, and prune goes to both (but never to the
    Docker networks that stand for shoal's overlay networks)."""
    docker = setup.unix.docker
    tag = f"shoal-pass-{uuid.uuid4().hex[:10]}"
    ours = f"{tag}-local"
    stand_in = f"{tag}-stand-in"
    try:
        docker("network", "create", "--label", f"test={tag}", ours)
        docker(
            "network",
            "create",
            "--label",
            f"test={tag}",
            "--label",
            "com.shoal.network.id=x",
            stand_in,
        )
        listed = docker("network", "ls", "--format", "{{.Name}} {{.Scope}}").splitlines()
        assert {"bridge local", "host local", "none local", "ingress swarm"} <= set(listed)
        assert f"{ours} local" in listed
        inspected = docker("network", "inspect", "--format", "{{.Driver}} {{.Scope}}", ours)
        assert inspected == "bridge local\n"
        pruned = docker("network", "prune", "-f", "--filter", f"label=test={tag}")
        assert pruned == f"Deleted Networks:\n{ours}\n\n"
        assert docker("network", "rm", stand_in) == f"{stand_in}\n"
    finally:
        for name in (ours, stand_in):
            subprocess.run(
                [DOCKER, "-H", testimage.engine_host(), "network", "rm", name],
                capture_output=True,
                timeout=60,
            )

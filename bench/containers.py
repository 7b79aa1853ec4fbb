"""shoal against Docker's own Swarm mode on the same engine and machine: how long a service of
real containers takes to converge, scale and go away.

The same client code drives both through the Docker Engine API (shoal serves its swarm
subset), so only the server differs:
- create: ``POST /services/create`` with 20 replicas, until 20 tasks run;
- scale: replicas to 100, until 100 tasks run;
- remove: ``DELETE /services/{id}``, until none of its containers is left on the engine.
Both run the same service spec with the same locally built image (no registry here).

Docker's side needs the engine to be a swarm manager already (this script never inits or
leaves a swarm on a shared engine); without it only shoal's figures are printed. shoal's
side is a one-node cluster: one `shoal daemon` on a loopback address, using the same engine.

Prints a table and writes bench/results/containers.json.
Run: .venv/bin/python bench/containers.py [--replicas 20 --scale 100 --repeat 1]
"""

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.docker import testimage  # the test image, built the same way

RESULTS = Path(__file__).parent / "results" / "containers.json"
POLL = 0.05
LIMIT = 600.0  # seconds: a guard against a hang, not a measurement
API = "/v1.41"


class Client:
    """A Docker Engine API client over a unix socket (Docker's or a shoal daemon's)."""

    def __init__(self, socket_path: str) -> None:
        self.path = socket_path

    def call(self, method: str, path: str, body=None) -> tuple[int, object]:
        conn = http.client.HTTPConnection("localhost", timeout=120)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.path)
        conn.sock = sock
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(
                method, API + path, body=data, headers={"Content-Type": "application/json"}
            )
            resp = conn.getresponse()
            raw = resp.read()
            try:
                return resp.status, json.loads(raw) if raw else None
            except ValueError:
                return resp.status, raw.decode(errors="replace")
        finally:
            conn.close()

    def ok(self, method: str, path: str, body=None) -> object:
        status, data = self.call(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {data}")
        return data


def wait(check, what: str) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > LIMIT:
            raise RuntimeError(f"timed out: {what}")
        time.sleep(POLL)
    return time.monotonic() - start


def running(client: Client, service_id: str) -> int:
    filters = quote(json.dumps({"service": [service_id], "desired-state": ["running"]}))
    tasks = client.ok("GET", f"/tasks?filters={filters}")
    return sum(1 for t in tasks if t["Status"]["State"] == "running")


def containers_of(engine: Client, service_id: str) -> int:
    filters = quote(json.dumps({"label": [f"com.docker.swarm.service.id={service_id}"]}))
    return len(engine.ok("GET", f"/containers/json?all=1&filters={filters}"))


def spec(name: str, replicas: int) -> dict:
    return {
        "Name": name,
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": testimage.IMAGE,
                "Args": ["sleep", "3600"],
                "Init": True,  # sleep leaves on SIGTERM at once, under docker-init
            },
            "RestartPolicy": {"Condition": "any", "Delay": 0},
        },
        "Mode": {"Replicated": {"Replicas": replicas}},
    }


def run_case(label: str, swarm: Client, engine: Client, replicas: int, scale: int) -> dict:
    name = f"bench-{label}-{os.getpid()}-{int(time.time())}"
    t0 = time.monotonic()
    sid = swarm.ok("POST", "/services/create", spec(name, replicas))["ID"]
    create = (
        time.monotonic()
        - t0
        + wait(lambda: running(swarm, sid) >= replicas, f"{label}: {replicas} running")
    )
    svc = swarm.ok("GET", f"/services/{sid}")
    body = svc["Spec"]
    body["Mode"]["Replicated"]["Replicas"] = scale
    t0 = time.monotonic()
    swarm.ok("POST", f"/services/{sid}/update?version={svc['Version']['Index']}", body)
    scaled = (
        time.monotonic()
        - t0
        + wait(lambda: running(swarm, sid) >= scale, f"{label}: {scale} running")
    )
    t0 = time.monotonic()
    swarm.ok("DELETE", f"/services/{sid}")
    removed = (
        time.monotonic()
        - t0
        + wait(lambda: containers_of(engine, sid) == 0, f"{label}: containers gone")
    )
    return {"create": create, "scale": scaled, "remove": removed}


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ShoalNode:
    """One shoal daemon, a one-node swarm, on its own loopback address."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="shoal-bench-", dir="/tmp"))
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.socket = str(self.root / "shoal.sock")
        self.log = open(self.root / "daemon.log", "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shoal",
                "daemon",
                "--state-dir",
                str(self.root / "state"),
                "--socket",
                self.socket,
                "--listen-addr",
                f"{self.host}:{self.port}",
                "--hostname",
                "bench1",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.client = Client(self.socket)
        wait(self._pings, "shoal daemon API")
        self.client.ok(
            "POST",
            "/swarm/init",
            {"ListenAddr": f"{self.host}:{self.port}", "AdvertiseAddr": self.host},
        )
        wait(self._offers_containers, "the node to offer containers")

    def _pings(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError((self.root / "daemon.log").read_text()[-2000:])
        try:
            return self.client.call("GET", "/_ping")[0] == 200
        except OSError:
            return False

    def _offers_containers(self) -> bool:
        nodes = self.client.ok("GET", "/nodes")
        return bool(nodes) and "container" in (nodes[0].get("Description") or {}).get(
            "Runtimes", []
        )

    def close(self) -> None:
        try:
            self.client.call("POST", "/swarm/leave?force=1")
        except OSError:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def docker_swarm_ready(engine: Client) -> str | None:
    """None if the engine is a swarm manager; else why Docker's side cannot run."""
    info = engine.ok("GET", "/info")
    swarm = info.get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        return "the engine is not a swarm manager (this script does not init one)"
    return None


def median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", type=int, default=20)
    ap.add_argument("--scale", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    reason = testimage.unreachable_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    testimage.build()
    host = testimage.engine_host()
    if not host.startswith("unix://"):
        print("this benchmark needs the engine on a unix socket", file=sys.stderr)
        return 1
    engine = Client(host[len("unix://") :])
    docker_reason = docker_swarm_ready(engine)

    runs: dict[str, list[dict]] = {"docker": [], "shoal": []}
    for _ in range(args.repeat):
        if docker_reason is None:
            runs["docker"].append(run_case("docker", engine, engine, args.replicas, args.scale))
        node = ShoalNode()
        try:
            runs["shoal"].append(run_case("shoal", node.client, engine, args.replicas, args.scale))
        finally:
            node.close()

    ops = ("create", "scale", "remove")
    summary = {
        system: {op: median([r[op] for r in rs]) for op in ops} for system, rs in runs.items() if rs
    }
    print(f"{'operation':<34}{'docker swarm':>14}{'shoal':>10}{'shoal/docker':>14}")
    labels = {
        "create": f"create {args.replicas} replicas, converge",
        "scale": f"scale to {args.scale}, converge",
        "remove": "service rm, no container left",
    }
    ratios = {}
    for op in ops:
        d = summary.get("docker", {}).get(op)
        s = summary["shoal"][op]
        ratio = s / d if d else None
        ratios[op] = ratio
        print(
            f"{labels[op]:<34}{(f'{d:.2f}s' if d else '-'):>14}{s:>9.2f}s"
            f"{(f'{ratio:.2f}' if ratio else '-'):>14}"
        )
    if docker_reason:
        print(f"(no Docker Swarm figures: {docker_reason})")
    info = engine.ok("GET", "/info")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "containers",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "engine": info.get("ServerVersion"),
                "image": testimage.IMAGE,
                "replicas": args.replicas,
                "scale": args.scale,
                "repeat": args.repeat,
                "median_seconds": summary,
                "shoal_over_docker": ratios,
                "runs": runs,
                "docker_skipped": docker_reason,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

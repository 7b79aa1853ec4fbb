"""A fleet of simulated nodes in one process, for benchmarks and scale tests.

Each simulated node is a real worker as the managers see it: it joins with the worker token
(its own key, its own certificate signed by the swarm's CA, its own node ID), holds a
mutual-TLS session with the managers' dispatcher through the real agent (heartbeats,
assignments, task status reports), and only its tasks are imagined (the ``sim`` runtime).
What the nodes share is what a process can share without changing what the managers see:
the event loop, the join certificate used only to reach the CA, the executor and its
settings, and the clock. Nothing is kept on disk.

A share of the nodes can be killed (the agent stops and its connection closes, without
leaving: a machine that died), partitioned (the connection stays open but nothing passes
any more: no heartbeat, report or assignment) and healed, or restarted (a killed node comes
back with its identity but no task: a rebooted machine).

Run as a process (``python -m shoal.daemon.fleet``), the fleet is driven by JSON lines on
its standard input, one reply per line on its standard output (see ``serve``)."""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Histogram

import shoal
from shoal import metrics
from shoal.agent.agent import Agent, AgentConfig
from shoal.agent.describe import describe_node
from shoal.agent.exec.sim import Latency, SimExecutor, SimSettings
from shoal.api.objects import NodeDescription
from shoal.ca import tokens
from shoal.ca.certificates import new_node_key
from shoal.ca.join_ca import JoinMaterial, join_material
from shoal.clock import Clock, SystemClock
from shoal.daemon.join import request_certificate
from shoal.metrics.gc_pauses import record_gc_pauses
from shoal.metrics.loop_lag import EVENT_LOOP_LAG, probe_loop_lag
from shoal.rpc import TLSMaterial, Transport
from shoal.store.gc_tuning import tune_gc

log = logging.getLogger(__name__)


@dataclass
class FleetConfig:
    managers: list[str]  # host:port of managers to join through and talk to
    token: str  # the swarm's worker join token
    sim: SimSettings = field(default_factory=SimSettings)
    prefix: str = "sim"  # hostnames are PREFIX-0001, PREFIX-0002...
    advertise_host: str = "127.0.0.1"
    nano_cpus: int = 4_000_000_000  # whole CPUs
    memory_bytes: int = 8 * 1024**3
    join_concurrency: int = 16


class SimNode:
    """One simulated worker: its identity once joined, and its agent while it runs."""

    def __init__(self, fleet: "Fleet", hostname: str) -> None:
        self.fleet = fleet
        self.hostname = hostname
        self.node_id = ""
        self.transport: Transport | None = None
        self.agent: Agent | None = None
        self._run: asyncio.Task | None = None
        self._description: NodeDescription | None = None

    @property
    def running(self) -> bool:
        return self._run is not None

    @property
    def partitioned(self) -> bool:
        return self.agent is not None and not self.agent.link.is_set()

    def description(self) -> NodeDescription:
        if self._description is None:
            cfg = self.fleet.config
            # As a node with an engine describes itself (the container runtime is offered
            # only with one): the simulated machine's size, and this shoal as its engine.
            engine = {
                "ServerVersion": shoal.__version__,
                "NCPU": cfg.nano_cpus // 1_000_000_000,
                "MemTotal": cfg.memory_bytes,
            }
            self._description = describe_node(self.hostname, {}, list(cfg.sim.runtimes), engine)
        return self._description

    async def join(self) -> None:
        cfg = self.fleet.config
        parsed = tokens.parse(cfg.token)
        key = new_node_key()
        remote = cfg.managers[len(self.fleet.nodes) % len(cfg.managers)]
        resp = await request_certificate(
            remote,
            self.fleet.join,
            parsed.ca_digest,
            cfg.token,
            key.csr_pem,
            cfg.advertise_host,
            "active",
            self.description().model_dump_json().encode(),
        )
        self.node_id = resp.node_id
        self.transport = Transport(
            TLSMaterial(cert=resp.certificate, key=key.key_pem, ca=resp.root_ca),
            node_id=resp.node_id,
        )

    def start(self) -> None:
        """Run a new agent (no task yet: the managers' assignments say what it runs)."""
        assert self.transport is not None, "join first"
        if self._run is not None:
            return
        cfg = self.fleet.config
        self.agent = Agent(
            AgentConfig(
                node_id=self.node_id,
                advertise_addr=cfg.advertise_host,
                managers=list(self.fleet.managers),
                state_dir=None,
                transport=self.transport,
                description=self.description,
                on_managers=self.fleet.learn_managers,
            ),
            self.fleet.executor,
            self.fleet.clock,
        )
        self._run = asyncio.create_task(self.agent.run(), name=f"agent {self.hostname}")

    async def kill(self) -> None:
        """Stop at once, without leaving: the session's connection closes, the tasks are
        gone with the machine."""
        run, self._run = self._run, None
        if run is None:
            return
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        agent = self.agent
        if agent is not None:
            await asyncio.gather(*(tm.stop() for tm in agent.tasks.values()))

    def partition(self) -> None:
        if self.agent is not None:
            self.agent.link.clear()

    def heal(self) -> None:
        if self.agent is not None:
            self.agent.link.set()

    async def restart(self) -> None:
        await self.kill()
        self.start()


class Fleet:
    def __init__(self, config: FleetConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.managers = list(config.managers)
        self.executor = SimExecutor(config.sim, self.clock)
        self.nodes: list[SimNode] = []
        self.rng = random.Random(config.sim.seed)
        # Only for reaching the CA before a node has a certificate: names nobody, so one
        # serves every joining node.
        self.join: JoinMaterial = join_material("shoal-joining-node", self.clock.now())

    def learn_managers(self, addrs: list[str]) -> None:
        if addrs:
            self.managers = list(addrs)

    async def grow(self, count: int) -> list[SimNode]:
        """Join ``count`` new nodes (a few at a time, as a CA signs them) and start them."""
        limit = asyncio.Semaphore(self.config.join_concurrency)
        start = len(self.nodes)
        fresh = [SimNode(self, f"{self.config.prefix}-{start + i + 1:04d}") for i in range(count)]
        self.nodes.extend(fresh)

        async def join(node: SimNode) -> None:
            async with limit:
                await node.join()
            node.start()

        await asyncio.gather(*(join(n) for n in fresh))
        return fresh

    def pick(self, count: int, running: bool = True) -> list[SimNode]:
        pool = [n for n in self.nodes if n.running == running and not n.partitioned]
        return self.rng.sample(pool, min(count, len(pool)))

    async def kill(self, count: int) -> list[SimNode]:
        chosen = self.pick(count)
        await asyncio.gather(*(n.kill() for n in chosen))
        return chosen

    def partition(self, count: int) -> list[SimNode]:
        chosen = self.pick(count)
        for n in chosen:
            n.partition()
        return chosen

    def heal(self) -> list[SimNode]:
        healed = [n for n in self.nodes if n.partitioned]
        for n in healed:
            n.heal()
        return healed

    def restart_killed(self) -> list[SimNode]:
        stopped = [n for n in self.nodes if not n.running]
        for n in stopped:
            n.start()
        return stopped

    def stats(self) -> dict[str, Any]:
        states: Counter[str] = Counter()
        connected = 0
        for n in self.nodes:
            if n.agent is None or not n.running:
                continue
            if n.agent.connected.is_set():
                connected += 1
            for tm in n.agent.tasks.values():
                states[tm.task.Status.State.value] += 1
        return {
            "nodes": len(self.nodes),
            "running": sum(1 for n in self.nodes if n.running),
            "partitioned": sum(1 for n in self.nodes if n.partitioned),
            "connected": connected,
            "tasks": dict(states),
            "rss": _rss_bytes(),
            **_health(),
        }

    async def close(self) -> None:
        await asyncio.gather(*(n.kill() for n in self.nodes))


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _health() -> dict[str, Any]:
    """What this process' agents went through so far: their sessions ended by cause, their
    heartbeats' round trips and the event loop's lag they share, as counts of samples at or
    above a few bounds (from the process' metrics: every node of the fleet records there)."""
    ended: dict[str, int] = {}
    for family in metrics.AGENT_SESSIONS_ENDED.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.value:
                ended[sample.labels["cause"]] = int(sample.value)
    return {
        "sessions_ended": ended,
        "heartbeats_over": _over(metrics.AGENT_HEARTBEAT_LATENCY, (1.0, 2.5, 5.0, 10.0)),
        "loop_lag_over": _over(EVENT_LOOP_LAG, (0.5, 1.0, 2.0, 5.0)),
    }


def _over(histogram: Histogram, bounds: tuple[float, ...]) -> dict[str, int]:
    """How many observations exceeded each bound (each must be one of the buckets)."""
    cumulative: dict[float, float] = {}
    total = 0.0
    for family in histogram.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                cumulative[float(sample.labels["le"])] = sample.value
            elif sample.name.endswith("_count"):
                total = sample.value
    return {f"{b:g}s": int(total - cumulative.get(b, total)) for b in bounds}


# --- the fleet as a process, driven over stdin/stdout --------------------------------------


def _names(nodes: list[SimNode]) -> list[dict[str, str]]:
    return [{"hostname": n.hostname, "id": n.node_id} for n in nodes]


async def handle(fleet: Fleet, cmd: dict[str, Any]) -> dict[str, Any]:
    """One command: ``{"op": "grow"|"kill"|"partition", "count": N}``, ``{"op": "heal"}``,
    ``{"op": "restart"}`` (the killed nodes), ``{"op": "stats"}``."""
    op = cmd.get("op")
    count = int(cmd.get("count", 0))
    if op == "grow":
        return {"nodes": _names(await fleet.grow(count))}
    if op == "kill":
        return {"nodes": _names(await fleet.kill(count))}
    if op == "partition":
        return {"nodes": _names(fleet.partition(count))}
    if op == "heal":
        return {"nodes": _names(fleet.heal())}
    if op == "restart":
        return {"nodes": _names(fleet.restart_killed())}
    if op == "stats":
        return fleet.stats()
    raise ValueError(f"unknown op {op!r}")


async def serve(fleet: Fleet) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            if not line.strip():
                continue
            try:
                cmd = json.loads(line)
                if cmd.get("op") == "quit":
                    break
                reply: dict[str, Any] = {"ok": True, **await handle(fleet, cmd)}
            except Exception as err:
                log.exception("fleet command failed")
                reply = {"ok": False, "error": str(err)}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    finally:
        await fleet.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m shoal.daemon.fleet")
    parser.add_argument("--manager", action="append", required=True, help="host:port")
    parser.add_argument("--token", required=True, help="the swarm's worker join token")
    parser.add_argument("--nodes", type=int, default=0, help="nodes to join at start")
    parser.add_argument("--prefix", default="sim")
    parser.add_argument("--prepare-latency", default="0", help="SECONDS or LOW-HIGH")
    parser.add_argument("--start-latency", default="0", help="SECONDS or LOW-HIGH")
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


async def run_process(
    args: argparse.Namespace,
    clock: Clock | None = None,
    serve_fleet: Callable[[Fleet], Awaitable[None]] = serve,
) -> None:
    """A fleet process: its nodes joined, then driven by ``serve_fleet`` until it returns."""
    # Hundreds of agents' tasks in one process: young and middle collections as a manager has
    # them, and none of the old generation on the collector's own schedule (gc_tuning).
    tune_gc()
    # Nor on a schedule of our own, unlike a node's daemon (daemon/command.py runs
    # daemon/old_generation.py): this process is a hundred machines, and a full collection
    # walks all of their objects while holding all of them. In the 1,000-node runs each fleet
    # process held its 100 nodes 3.2-7.4 s in one, the ten processes at about the same time,
    # and healthy nodes missed a new leader's reconnect grace (their tasks were moved); a real
    # machine's collection over its one agent takes milliseconds. That stall is an artefact of
    # simulating, not something to measure. What it costs: cyclic garbage old enough to reach
    # the old generation stays until the process ends, and a fleet process lives for one
    # benchmark run (bench/fleet.py reports its memory per node).
    stop_recording_gc = record_gc_pauses()
    lag_probe = asyncio.create_task(probe_loop_lag(), name="loop-lag-probe")
    try:
        fleet = Fleet(
            FleetConfig(
                managers=args.manager,
                token=args.token,
                prefix=args.prefix,
                sim=SimSettings(
                    prepare=Latency.parse(args.prepare_latency),
                    start=Latency.parse(args.start_latency),
                    failure_rate=args.failure_rate,
                    seed=args.seed,
                ),
            ),
            clock,
        )
        if args.nodes:
            await fleet.grow(args.nodes)
        sys.stdout.write(json.dumps({"ok": True, "ready": True, **fleet.stats()}) + "\n")
        sys.stdout.flush()
        await serve_fleet(fleet)
    finally:
        lag_probe.cancel()
        stop_recording_gc()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # With the time: a stall trace is only worth as much as knowing when it happened.
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_process(args))


if __name__ == "__main__":
    main()

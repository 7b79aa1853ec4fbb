"""Scale: real manager daemons and a fleet of simulated nodes (shoal.daemon.fleet).

Managers are `shoal daemon` processes on loopback addresses (127.0.46.x), drained so that
tasks go to the simulated workers only; the workers run in a few fleet processes (many nodes
each), every one a real agent with its own certificate and mutual-TLS session whose tasks
are simulated (the sim runtime). Phases, in order:

1. create: --services services of --replicas replicas each; the time from the first create
   to every task running, and tasks per second end to end;
   settled: --settle-seconds with nothing asked but the API probe's calls (the API with the
   store full and the machine no longer busy with the create);
2. update: a rolling update (--update-parallelism at a time) of the first service, to done;
3. leader kill (3 managers or more): SIGKILL the leader; the time until a surviving manager
   accepts a write, and how many running tasks were replaced meanwhile (should be 0);
4. node loss: a tenth of the nodes killed at once (connections closed, no leave): the time
   until the managers mark them all down and until every task runs elsewhere;
5. manager restart (2 managers or more): a follower SIGKILLed and started again at once; the
   time until it applied what the leader had committed, with the age of its last snapshot
   and the entries it had applied since (what it restores, and what it replays).

Each phase has --timeout to finish: one that times out (or fails) is recorded in the JSON
with what it reached (the running tasks last counted, its figures so far), and the next
phase runs.

Throughout, a sampler records the running tasks (ServiceStatus), the managers' RSS and CPU
(from /proc), each manager's /metrics (raft term, commit and applied index, whether it
leads, its running-task count, event-loop lag, and any shoal_gc_* figure), and the latency
of control API calls made meanwhile: `service ls` (GET /services?status=true), `node ls`
(GET /nodes) and a one-service update. Each phase also reports the leader's write path over
it (``write_path``: raft round trips, store updates and batches, scheduler passes, NEW to
RUNNING, each as count and mean), when one manager led throughout, and where the machine's
CPU went (``cpu``: CPU seconds of each manager, the fleet, the probe and the bench, the
machine's busy and idle time; for the create, also per task). The API calls are summed up
by phase too (``api_by_phase``). Counts are read and calls made on the current raft
leader, found from the managers' /metrics and followed through elections (a follower
answers reads from its own store, which can lag or stand still; its updates then fail
with stale versions). Prints the figures; writes bench/results/fleet.json and, when
matplotlib is installed (the `bench` extra), bench/results/fleet.png.

The managers inherit the bench's environment, so two debug aids reach them from it:
SHOAL_LOOP_STALL_TRACE=SECONDS logs the stack of a loop held that long, and
SHOAL_SLOW_WRITE_LOG=SECONDS logs every write (and raft entry) that took that long with
where its time went (see shoal.store.slow_writes); read them with --keep-logs DIR.

Run: .venv/bin/python bench/fleet.py [--managers 3 --nodes 1000 --services 100
     --replicas 1000]; smaller: --managers 1 --nodes 50 --services 4 --replicas 500
Redraw a run's picture from its JSON: .venv/bin/python bench/fleet.py --redraw FILE.json
"""

import argparse
import datetime
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import checkout_path  # noqa: F401  (first: this checkout's tests/ and src/)
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.fleet import FleetProcess
from tests.e2e.harness import APIResponse, Node, free_port, wait_for

RESULTS = Path(__file__).parent / "results"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MANAGER_ARGS = ["--runtime", "process", "--engine-host", "none", "--no-overlay"]


def machine_cpu() -> tuple[float, float]:
    """CPU seconds the whole machine has spent busy and idle (iowait counted idle), summed
    over its cores, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / TICK, idle / TICK


def proc_usage(pid: int) -> tuple[float, int]:
    """CPU seconds used so far and resident bytes of process ``pid``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as f:
            rss = int(f.read().split()[1]) * PAGE
    except OSError:
        return 0.0, 0
    return (int(fields[11]) + int(fields[12])) / TICK, rss


LEADER_LINE = "this manager is now the raft leader"
LAG_LINE = re.compile(r"event loop lag over the last \d+ s: max (\d+) ms, p99 (\d+) ms")
# A control API call slower than this counts as failed (a stuck manager must not hang the run).
API_TIMEOUT = 30.0
# A /metrics scrape slower than this counts as failed (a scrape is cheap: a few integers).
METRICS_TIMEOUT = 2.0
# What the bench follows on each manager's /metrics, under shorter names.
RAFT_METRICS = {
    "shoal_raft_term": "term",
    "shoal_raft_commit_index": "commit",
    "shoal_raft_applied_index": "applied",
    "shoal_raft_last_index": "last",
    "shoal_raft_snapshot_index": "snapshot",
    "shoal_raft_has_leader": "has_leader",
    "swarm_manager_leader": "leader",
}
SNAPSHOT_TIME = "shoal_raft_snapshot_last_timestamp_seconds"
LAG_HISTOGRAM = "shoal_event_loop_lag_seconds"
# Garbage-collection figures: prometheus_client's collections per generation (a full one,
# generation 2, over a large store holds the loop for a second or more), and any shoal_gc_*
# the daemon may expose (recorded if present).
GC_PREFIX = "shoal_gc_"
GC_COLLECTIONS = "python_gc_collections_total"
FULL_COLLECTIONS = GC_COLLECTIONS + '{generation="2"}'


def loop_lag(log_text: str) -> dict[str, Any]:
    """A manager's event-loop lag from the windows it logged (only those whose worst lag
    reached 100 ms are logged): the worst lag, the worst window's p99, and how many windows
    held the loop for a second or more (an election timeout is 1 to 2 s)."""
    windows = [(int(a), int(b)) for a, b in LAG_LINE.findall(log_text)]
    return {
        "windows_logged": len(windows),
        "max_ms": max((w[0] for w in windows), default=0),
        "worst_p99_ms": max((w[1] for w in windows), default=0),
        "windows_max_over_1s": sum(1 for w in windows if w[0] >= 1000),
    }


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def latencies(ms: list[float]) -> dict[str, Any]:
    """How many calls took ``ms``, and their median and 99th percentile."""
    return {
        "calls": len(ms),
        "p50_ms": round(statistics.median(ms), 1) if ms else None,
        "p99_ms": round(pct(ms, 0.99), 1) if ms else None,
    }


def _sample_key(name: str, labels: dict[str, str]) -> str:
    if not labels:
        return name
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def parse_metrics(text: str) -> dict[str, Any]:
    """The figures the bench follows in one /metrics text: raft's indexes and term, whether
    the manager says it leads, its count of running tasks, its event-loop lag (how many
    50 ms probes woke over 100 ms and over 1 s late, since the process started), and its
    garbage collections by generation with any ``shoal_gc_*`` sample (under ``gc``), and its
    write path's counts and sums (under ``write_path``, see ``write_path_sample``)."""
    out: dict[str, Any] = {}
    gc: dict[str, float] = {}
    lag_buckets: dict[str, float] = {}
    path: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            write_path_sample(path, name, sample.labels, sample.value)
            if name in RAFT_METRICS:
                out[RAFT_METRICS[name]] = int(sample.value)
            elif name == SNAPSHOT_TIME:
                out["snapshot_at"] = sample.value
            elif name == "swarm_manager_tasks_total" and sample.labels.get("state") == "running":
                out["tasks_running"] = int(sample.value)
            elif name == "shoal_dispatcher_nodes_down_total":
                out[f"nodes_down_{sample.labels.get('reason', '')}"] = int(sample.value)
            elif name == f"{LAG_HISTOGRAM}_bucket":
                lag_buckets[sample.labels.get("le", "")] = sample.value
            elif name == f"{LAG_HISTOGRAM}_count":
                lag_buckets["count"] = sample.value
            elif (name.startswith(GC_PREFIX) or name == GC_COLLECTIONS) and not name.endswith(
                ("_created", "_bucket")  # a histogram's count and sum are enough here
            ):
                gc[_sample_key(name, sample.labels)] = sample.value
    if "count" in lag_buckets:
        total = lag_buckets["count"]
        for le, key in (("0.1", "lag_over_100ms"), ("1.0", "lag_over_1s")):
            if le in lag_buckets:
                out[key] = int(total - lag_buckets[le])
    if gc:
        out["gc"] = gc
    out["write_path"] = path
    return out


# Latencies along the write path whose mean over a phase the bench reports (from the leader's
# histograms' sums and counts): where a task's way to running waits.
WRITE_PATH_HISTOGRAMS = {
    "swarm_raft_transaction_latency_seconds": "raft_transaction",
    "swarm_store_write_tx_latency_seconds": "store_update",
    "swarm_store_batch_latency_seconds": "store_batch",
    "shoal_scheduler_pass_latency_seconds": "scheduler_pass",
    "swarm_dispatcher_scheduling_delay_seconds": "new_to_running",
}


def write_path_sample(
    out: dict[str, float], name: str, labels: dict[str, str], value: float
) -> None:
    """Keep one /metrics sample in ``out`` if it is a write-path histogram's count or sum
    (``SHORT_count``, ``SHORT_sum``) or a count of raft proposals by result."""
    for suffix in ("_count", "_sum"):
        short = WRITE_PATH_HISTOGRAMS.get(name.removesuffix(suffix))
        if short is not None and name.endswith(suffix):
            out[short + suffix] = value
    if name == "shoal_raft_proposals_total":
        out[f"proposals_{labels.get('result', '')}"] = value
    if name == "shoal_dispatcher_status_reports_total":
        out[f"status_report_{labels.get('unit', '')}"] = value


def write_path_since(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Over a phase (two scrapes of one leader): how many of each, and their mean in ms."""
    out: dict[str, Any] = {}
    for short in WRITE_PATH_HISTOGRAMS.values():
        count = after.get(short + "_count", 0) - before.get(short + "_count", 0)
        if count > 0:
            total = after.get(short + "_sum", 0) - before.get(short + "_sum", 0)
            out[short] = {"count": int(count), "mean_ms": round(total / count * 1000, 1)}
    for key in (
        "proposals_committed",
        "proposals_failed",
        "status_report_calls",
        "status_report_updates",
    ):
        if after.get(key, 0) - before.get(key, 0):
            out[key] = int(after.get(key, 0) - before.get(key, 0))
    return out


# What the leader watch and the catch-up check read, all they ask a manager for. A whole
# /metrics costs a manager ~10 ms of CPU; asked of both survivors 20 times a second through
# an election, it took 21.8% of one survivor's CPU samples in the 8 s after a kill, and 9.8%
# of the other's (fleet-1000-s29-prof1).
LEADER_METRICS = ("swarm_manager_leader", "shoal_raft_term")
INDEX_METRICS = ("shoal_raft_commit_index", "shoal_raft_applied_index")
# What the manager-restart phase reads of the manager it is about to kill.
RESTART_METRICS = (*INDEX_METRICS, "shoal_raft_snapshot_index", SNAPSHOT_TIME)


def scrape(addr: str, names: tuple[str, ...] = ()) -> dict[str, Any]:
    """One manager's /metrics (only the metrics ``names``, if given), parsed, with how long
    the scrape took: a held event loop shows there first."""
    t = time.monotonic()
    url = f"http://{addr}/metrics"
    if names:
        url += "?" + "&".join(f"name[]={quote(n)}" for n in names)
    with urllib.request.urlopen(url, timeout=METRICS_TIMEOUT) as resp:
        text = resp.read().decode()
    figures = parse_metrics(text)
    figures["scrape_ms"] = round((time.monotonic() - t) * 1000, 1)
    return figures


def leader_of(scrapes: dict[str, dict[str, Any]]) -> str | None:
    """The manager that says it leads; of two (a deposed leader that has not heard of the
    election yet), the one in the later term."""
    claims = [(s.get("term", 0), name) for name, s in scrapes.items() if s.get("leader") == 1]
    return max(claims)[1] if claims else None


def cumulative(values: list[int]) -> int:
    """The total of a counter sampled over a run in which its process may have restarted
    (the counter then starts again from zero)."""
    total = last = 0
    for v in values:
        if v < last:
            total += last
        last = v
    return total + last


def raft_summary(timeline: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """How far behind a manager's store fell: the most raft entries it had yet to apply
    (against the highest commit index any manager reported in the same sample), and the
    longest time its applied index stood still while it was behind (a follower that fell
    silent and answers from a stale store shows here)."""
    behind: list[int] = []
    longest = 0.0
    stalled_since: float | None = None
    last_applied: int | None = None
    last_t = 0.0
    scrapes = failed = 0
    lag_100: list[int] = []
    lag_1s: list[int] = []
    full_collections: list[int] = []
    gc: dict[str, float] = {}
    for row in timeline:
        m = (row.get("metrics") or {}).get(name)
        if m is None:
            continue
        scrapes += 1
        if "scrape_error" in m:
            failed += 1
        if "lag_over_100ms" in m:
            lag_100.append(m["lag_over_100ms"])
            lag_1s.append(m.get("lag_over_1s", 0))
        gc = m.get("gc", gc)
        if FULL_COLLECTIONS in gc:
            full_collections.append(int(gc[FULL_COLLECTIONS]))
        if "applied" not in m:
            continue
        behind.append(m["behind"])
        if m["behind"] > 0 and m["applied"] == last_applied:
            # Standing still since the sample before, while there was more to apply.
            if stalled_since is None:
                stalled_since = last_t
            longest = max(longest, row["t"] - stalled_since)
        else:
            stalled_since = None
        last_applied, last_t = m["applied"], row["t"]
    summary: dict[str, Any] = {
        "scrapes": scrapes,
        "scrapes_failed": failed,
        "max_entries_behind": max(behind, default=None),
        "longest_applied_stall_seconds": round(longest, 2),
        "last_applied_index": last_applied,
        "loop_lag_probes_over_100ms": cumulative(lag_100),
        "loop_lag_probes_over_1s": cumulative(lag_1s),
    }
    if full_collections:
        summary["full_gc_collections"] = cumulative(full_collections)
    if gc:
        summary["gc_last"] = gc  # as last scraped (a counter counts since its process began)
    return summary


class PhaseTimeout(Exception):
    """A phase ran out of its --timeout: recorded with what it reached, then the next runs."""


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.root = root
        self.managers: list[Node] = []
        self.metrics_addr: dict[str, str] = {}
        for i in range(1, args.managers + 1):
            host = f"127.0.46.{i}"
            addr = f"{host}:{free_port(host)}"
            extra = [*MANAGER_ARGS, "--metrics-addr", addr]
            # With --manager-nice the whole manager (its threads inherit it) runs below the
            # fleet: tells what the managers do from what a fleet starved of CPU does.
            wrap = ["nice", "-n", str(args.manager_nice)] if args.manager_nice else []
            self.managers.append(Node(f"m{i}", host, root / f"m{i}", extra_args=extra, wrap=wrap))
            self.metrics_addr[f"m{i}"] = addr
        self.fleets: list[FleetProcess] = []
        self.t0 = time.monotonic()
        self.phase = "setup"
        self.marks: list[tuple[float, str]] = [(self.t0, self.phase)]
        self.timeline: list[dict[str, Any]] = []
        self.api: list[dict[str, Any]] = []
        self.stop = threading.Event()
        # Without the create phase there are no services to count (the other phases then
        # measure what they can on an empty fleet).
        self.total = args.services * args.replicas if "create" in args.phases.split(",") else 0
        self._cpu: dict[str, tuple[float, float, int]] = {}
        self.probe_id = ""
        self.threads: list[threading.Thread] = []
        # The API probe, a process of its own (bench/api_probe.py): the manager it calls is
        # the one named in probe_target, rewritten as the leader changes.
        self.prober: subprocess.Popen | None = None
        self.probe_target = root / "probe-target"
        self.probe_calls = root / "probe-calls.jsonl"
        self.scrapers = ThreadPoolExecutor(max_workers=2 * args.managers)
        # The manager every read and probe goes to: the raft leader, as the managers say
        # (a follower answers reads from its own store, which may lag or stand still).
        self._leader: Node | None = None
        self._leader_lock = threading.Lock()
        self.leader_changes: list[dict[str, Any]] = []
        # The running phase's end (--timeout after it began), what it measured so far, and
        # the last count of running tasks read (reported if it times out).
        self.deadline = math.inf
        self.partial: dict[str, Any] = {}
        self.last_running: int | None = None

    # --- helpers ------------------------------------------------------------------------

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    def live(self) -> list[Node]:
        return [m for m in self.managers if m.proc is not None and m.proc.poll() is None]

    def by_name(self, name: str) -> Node:
        return next(m for m in self.managers if m.name == name)

    def scrape_all(
        self, managers: list[Node] | None = None, names: tuple[str, ...] = ()
    ) -> dict[str, dict[str, Any]]:
        """Every live manager's (or those given) /metrics (or its metrics ``names``), scraped
        at once: one after the other, a busy leader's slow scrape would let the others'
        indexes run ahead of its own and show lags that are not there."""

        def one(m: Node) -> dict[str, Any]:
            try:
                return scrape(self.metrics_addr[m.name], names)
            except (OSError, ValueError) as err:
                return {"scrape_error": str(err)[:120]}

        targets = self.live() if managers is None else managers
        return dict(zip((m.name for m in targets), self.scrapers.map(one, targets), strict=True))

    def set_leader(self, node: Node | None) -> None:
        with self._leader_lock:
            previous, self._leader = self._leader, node
            if node is not previous:
                self._name_probe_target(node)
        if node is None or node is previous:
            return
        # Changes are recorded from one known leader to the next (an unknown in between,
        # during an election or after a failed call, is not a change).
        was = self.leader_changes[-1]["to"] if self.leader_changes else None
        if node.name != was:
            change = {"t": self.now(), "phase": self.phase, "from": was, "to": node.name}
            self.leader_changes.append(change)
            print(f"[{change['t']:7.1f} s] leader: {was} -> {node.name}", flush=True)

    def forget_leader(self, node: Node | None = None) -> None:
        """After a failed call: find the leader again before the next."""
        with self._leader_lock:
            if node is None or self._leader is node:
                self._leader = None
                self._name_probe_target(None)

    def _name_probe_target(self, node: Node | None) -> None:
        """Have the probe call ``node`` from its next call (none: it records no leader)."""
        text = f"{node.socket}\n{node.name}\n" if node is not None else ""
        tmp = self.probe_target.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.probe_target)

    def find_leader(self) -> Node | None:
        """The manager that says it leads (its /metrics); failing that, the one a manager's
        node list names leader."""
        name = leader_of(self.scrape_all())
        if name is None:
            for m in self.live():
                try:
                    for n in m.get("/nodes", timeout=5):
                        if (n.get("ManagerStatus") or {}).get("Leader"):
                            name = n["Description"]["Hostname"]
                            break
                except (OSError, http.client.HTTPException, RuntimeError):
                    continue
                if name is not None:
                    break
        node = self.by_name(name) if name is not None else None
        if node is not None and node not in self.live():
            node = None  # a survivor's node list may still name a killed leader
        self.set_leader(node)
        return node

    def via(self) -> Node:
        """The leader, to read from and probe (found again if unknown or gone)."""
        with self._leader_lock:
            leader = self._leader
        if leader is None or leader.proc is None or leader.proc.poll() is not None:
            leader = self.find_leader()
        if leader is None:
            raise RuntimeError("no manager says it is the leader")
        return leader

    def follower(self) -> Node:
        """A live manager that is not the leader (the leader if none is): a replica answers
        the bench's large reads from its own store, and the leader's CPU stays the cluster's.
        Its store may be a proposal behind the leader's: what it reads is never early."""
        leader = self.via()
        others = [m for m in self.live() if m is not leader]
        return others[0] if others else leader

    def running(self, on: "Node | None" = None) -> int:
        services = (on or self.via()).get("/services?status=true", timeout=API_TIMEOUT)
        count = sum(
            (s.get("ServiceStatus") or {}).get("RunningTasks", 0)
            for s in services
            if s["Spec"]["Name"].startswith("s")
        )
        self.last_running = count
        return count

    def running_tasks(self, on: "Node | None" = None) -> dict[str, str]:
        """Running tasks meant to run: task ID -> node ID; asked of ``on`` (a follower answers
        from its own store), else of the leader. The whole list: at 100,000 tasks it costs the
        manager that answers seconds of CPU, so the phases ask for it rarely."""
        filters = quote(json.dumps({"desired-state": ["running"]}))
        tasks = (on or self.via()).get(f"/tasks?filters={filters}", timeout=API_TIMEOUT)
        return {
            t["ID"]: t.get("NodeID", "")
            for t in tasks
            if t["Status"]["State"] == "running" and t["ServiceID"] != self.probe_id
        }

    def short_of_running(self) -> dict[str, int]:
        """The tasks meant to run that are not running, by state and by whether their node
        is ready: where a phase that gave up was stuck."""
        filters = quote(json.dumps({"desired-state": ["running"]}))
        tasks = self.via().get(f"/tasks?filters={filters}", timeout=API_TIMEOUT)
        nodes = self.via().get("/nodes", timeout=API_TIMEOUT)
        ready = {n["ID"] for n in nodes if n["Status"]["State"] == "ready"}
        counts: dict[str, int] = {}
        for t in tasks:
            state = t["Status"]["State"]
            if state == "running" or t["ServiceID"] == self.probe_id:
                continue
            where = "on a ready node" if t.get("NodeID") in ready else "on no ready node"
            key = f"{state} {where}"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    def ready_nodes(self) -> int:
        nodes = self.via().get("/nodes", timeout=API_TIMEOUT)
        return sum(1 for n in nodes if n["Status"]["State"] == "ready")

    def elections(self) -> int:
        """How many times a manager became raft leader so far (each manager logs it)."""
        return sum(
            m.log_file.read_text(errors="replace").count(LEADER_LINE)
            for m in self.managers
            if m.log_file.exists()
        )

    def mark(self, phase: str) -> None:
        self.phase = phase
        self.marks.append((time.monotonic(), phase))
        print(f"[{time.monotonic() - self.t0:7.1f} s] {phase}", flush=True)

    def wait(self, check: Callable[[], Any], what: str, interval: float = 0.5) -> None:
        """Poll ``check`` until it holds; PhaseTimeout at the phase's deadline."""
        last_error: Exception | None = None
        while True:
            try:
                if check():
                    return
            except PhaseTimeout:
                raise
            except Exception as err:  # not checkable yet (no leader, a call failed)
                last_error = err
                self.forget_leader()
            if time.monotonic() >= self.deadline:
                why = f" (last error: {str(last_error)[:200]})" if last_error else ""
                raise PhaseTimeout(f"{what}{why}")
            time.sleep(interval)

    def run_phase(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run one phase within --timeout. A phase that times out or fails is recorded with
        what it measured so far and the running tasks last counted; the next phase runs."""
        self.deadline = time.monotonic() + self.args.timeout
        self.partial = {}
        t = time.monotonic()
        health = self.health()
        leader = self.leader_write_path()
        cpu = self.cpu_use()
        finished = False
        try:
            result = fn()
            finished = True
        except PhaseTimeout as err:
            result = {**self.partial, "timed_out": str(err)}
        except Exception as err:
            result = {**self.partial, "error": f"{type(err).__name__}: {err}"}
        result["health"] = self.health_since(health)
        result["write_path"] = self.write_path_since(leader)
        result["cpu"] = self.cpu_since(cpu)
        if finished:
            return result
        result["gave_up_after_seconds"] = round(time.monotonic() - t, 2)
        result["running_reached"] = self.last_running
        try:
            result["short_of_running"] = self.short_of_running()
        except Exception as err:  # no leader to ask: what was reached is still worth keeping
            result["short_of_running"] = f"not known: {type(err).__name__}: {err}"
        result["tasks"] = self.total
        print(f"[{self.now():7.1f} s] {name} did not finish: {result}", flush=True)
        return result

    def cpu_use(self) -> dict[str, tuple[int, float]]:
        """CPU seconds used so far by each process of the run, keyed by what it is, with its
        pid (a manager restarted since is a new process, not counted across): the managers,
        each fleet process, the API probe, this script, and the machine as a whole."""
        use: dict[str, tuple[int, float]] = {}
        for m in self.live():
            assert m.proc is not None
            use[m.name] = (m.proc.pid, proc_usage(m.proc.pid)[0])
        for i, f in enumerate(self.fleets):
            use[f"fleet{i}"] = (f.proc.pid, proc_usage(f.proc.pid)[0])
        if self.prober is not None:
            use["probe"] = (self.prober.pid, proc_usage(self.prober.pid)[0])
        use["bench"] = (os.getpid(), proc_usage(os.getpid())[0])
        busy, idle = machine_cpu()
        use["machine_busy"], use["machine_idle"] = (0, busy), (0, idle)
        return use

    def cpu_since(self, before: dict[str, tuple[int, float]]) -> dict[str, Any]:
        """Where the machine's CPU went since ``before`` (``cpu_use``), in CPU seconds: each
        manager, as leader or follower at the end, the fleet's processes together, the
        probe, this script, and what the machine spent busy in all and idle."""
        now = self.cpu_use()
        spent = {
            k: round(now[k][1] - v[1], 2)
            for k, v in before.items()
            if k in now and now[k][0] == v[0]
        }
        leader = self._leader.name if self._leader is not None else None
        return {
            "managers": {
                (f"{k} (leader)" if k == leader else k): spent[k]
                for k in (m.name for m in self.managers)
                if k in spent
            },
            "fleet": round(sum(v for k, v in spent.items() if k.startswith("fleet")), 2),
            "probe": spent.get("probe"),
            "bench": spent.get("bench"),
            "machine_busy": spent["machine_busy"],
            "machine_idle": spent["machine_idle"],
        }

    def health(self) -> dict[str, int]:
        """Counts that only grow, summed over the fleet processes and the live managers:
        the agents' sessions ended by cause, their heartbeats and loop-lag samples over a
        few bounds, and the nodes the managers marked down by reason."""
        total: Counter[str] = Counter()
        for f in self.fleets:
            stats = f.stats()
            for key in ("sessions_ended", "heartbeats_over", "loop_lag_over"):
                for k, v in stats.get(key, {}).items():
                    total[f"fleet_{key}_{k}"] += v
        for scraped in self.scrape_all().values():
            for k, v in scraped.items():
                if k.startswith("nodes_down_"):
                    total[f"managers_{k}"] += v
        return dict(total)

    def leader_write_path(self) -> tuple[str, dict[str, float]] | None:
        """The current leader's name and write-path figures (None: no leader known)."""
        try:
            leader = self.via()
            scraped = scrape(self.metrics_addr[leader.name])
        except Exception:  # a phase's other figures are still worth having
            return None
        return leader.name, scraped.get("write_path", {})

    def write_path_since(self, before: tuple[str, dict[str, float]] | None) -> dict[str, Any]:
        """The leader's write-path figures over the phase (``write_path_since``), if the
        same manager led at both ends (a new leader's histograms start afresh)."""
        after = self.leader_write_path()
        if before is None or after is None:
            return {"error": "no leader known"}
        if before[0] != after[0]:
            return {"error": f"the leader changed ({before[0]} -> {after[0]})"}
        return {"leader": after[0], **write_path_since(before[1], after[1])}

    def health_since(self, before: dict[str, int]) -> dict[str, Any]:
        """What ``health`` counted since ``before`` (a manager killed meanwhile takes its
        counts with it); only the counts that moved."""
        try:
            now = self.health()
        except Exception as err:  # worth keeping the phase's figures without it
            return {"error": f"{type(err).__name__}: {err}"}
        return {k: v - before.get(k, 0) for k, v in sorted(now.items()) if v - before.get(k, 0)}

    # --- background: timeline and API probes ------------------------------------------

    def sample(self) -> None:
        while not self.stop.wait(self.args.sample_interval):
            try:
                self.sample_once()
            except Exception as err:  # a sample lost is no reason to stop sampling
                print(f"sample failed: {type(err).__name__}: {err}", flush=True)

    def sample_once(self) -> None:
        row: dict[str, Any] = {"t": self.now(), "phase": self.phase}
        now = time.monotonic()
        for m in self.live():
            assert m.proc is not None
            pid = m.proc.pid
            cpu, rss = proc_usage(pid)
            last = self._cpu.get(m.name)
            # A restarted manager is a new process: its CPU count starts again.
            if last is not None and last[2] == pid and now > last[1]:
                row[f"{m.name}_cpu"] = round((cpu - last[0]) / (now - last[1]) * 100, 1)
            self._cpu[m.name] = (cpu, now, pid)
            row[f"{m.name}_rss_mb"] = round(rss / 2**20, 1)
        scrapes = self.scrape_all()
        committed = max((s.get("commit", 0) for s in scrapes.values()), default=0)
        for s in scrapes.values():
            if "applied" in s:
                s["behind"] = committed - s["applied"]
        row["metrics"] = scrapes
        leader = leader_of(scrapes)
        row["leader"] = leader
        if leader is not None:
            self.set_leader(self.by_name(leader))
        try:
            row["running"] = self.running()
        except Exception as err:
            row["error"] = str(err)[:200]
            self.forget_leader()
        self.timeline.append(row)

    def start_probe(self) -> None:
        self.prober = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("api_probe.py")),
                "--target",
                str(self.probe_target),
                "--service",
                self.probe_id,
                "--interval",
                str(self.args.probe_interval),
                "--out",
                str(self.probe_calls),
            ]
        )

    def stop_probe(self) -> None:
        """End the probe, and take its calls, each in the phase it was made in."""
        if self.prober is None:
            return
        self.prober.terminate()
        try:
            self.prober.wait(timeout=2 * API_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.prober.kill()
            self.prober.wait()
        self.prober = None
        if not self.probe_calls.exists():
            return
        for line in self.probe_calls.read_text().splitlines():
            try:
                call = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last, cut short
            t = call["t"]
            call["phase"] = next(
                (phase for at, phase in reversed(self.marks) if at <= t), self.marks[0][1]
            )
            call["t"] = round(t - self.t0, 2)
            self.api.append(call)

    # --- phases -------------------------------------------------------------------------

    def setup(self) -> None:
        a = self.args
        self.mark("managers")
        for m in self.managers:
            m.start()
        first = self.managers[0]
        first.cli(
            "swarm",
            "init",
            "--advertise-addr",
            first.host,
            "--availability",
            "drain",
            "--dispatcher-heartbeat",
            a.heartbeat,
        )
        token = first.cli("swarm", "join-token", "-q", "manager").stdout.strip()
        for m in self.managers[1:]:
            m.cli("swarm", "join", "--token", token, "--availability", "drain", first.addr)
        wait_for(lambda: len(self.via().get("/nodes")) == a.managers, what="managers")
        worker_token = first.cli("swarm", "join-token", "-q", "worker").stdout.strip()
        self.mark(f"fleet: {a.nodes} nodes in {math.ceil(a.nodes / a.per_process)} processes")
        t = time.monotonic()
        addrs = [m.addr for m in self.managers]
        sizes = [a.per_process] * (a.nodes // a.per_process)
        if a.nodes % a.per_process:
            sizes.append(a.nodes % a.per_process)
        for i in range(len(sizes)):
            extra = ("--start-latency", a.start_latency, "--seed", str(i))
            self.fleets.append(
                FleetProcess(addrs, worker_token, f"sim{i}", self.root / f"fleet{i}.log", extra)
            )
        # Grown in parallel: each process joins its nodes a few at a time.
        for f, size in zip(self.fleets, sizes, strict=True):
            assert f.proc.stdin is not None
            f.proc.stdin.write(json.dumps({"op": "grow", "count": size}) + "\n")
            f.proc.stdin.flush()
        for f in self.fleets:
            f._read()
        wait_for(
            lambda: self.ready_nodes() == a.nodes + a.managers,
            timeout=600,
            what="every node ready",
        )
        self.join_seconds = time.monotonic() - t
        probe = {
            "Name": "probe",
            "Mode": {"Replicated": {"Replicas": 0}},
            "TaskTemplate": {"ContainerSpec": {"Image": "probe"}},
        }
        created = self.via().api("POST", "/services/create", probe)
        self.probe_id = created.body["ID"]

    def profile(self, phase: str, targets: dict[str, Any] | None = None) -> list[subprocess.Popen]:
        """With --py-spy, sample ``targets`` (name: process; by default the leader and the
        first fleet process) during ``phase`` (collapsed stacks in --profile-dir, for flame
        graphs or a top list)."""
        a = self.args
        if not a.py_spy:
            return []
        out = Path(a.profile_dir)
        out.mkdir(parents=True, exist_ok=True)
        if targets is None:
            targets = {"leader": self.via().proc, "fleet0": self.fleets[0].proc}
        spies = []
        for name, proc in targets.items():
            assert proc is not None
            cmd = [
                a.py_spy,
                "record",
                "--pid",
                str(proc.pid),
                "--format",
                "raw",
                "--rate",
                "50",
            ]
            # Native frames are read with the process paused for each sample (py-spy can't
            # read them otherwise): a native profile slows what it measures a little.
            cmd.append("--native" if a.profile_native else "--nonblocking")
            if a.profile_seconds:
                cmd += ["--duration", str(a.profile_seconds)]
            cmd += ["-o", str(out / f"{phase}-{name}.txt")]
            spies.append(
                subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        return spies

    @staticmethod
    def stop_profile(spies: list[subprocess.Popen]) -> None:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(timeout=60)

    def write(self, method: str, path: str, body: Any, ok: tuple[int, ...]) -> APIResponse:
        """A write through the leader, tried again (on the leader found again) until the
        phase's deadline while it fails for want of one: no answer, or a 5xx (an election
        is on). A 4xx other than those in ``ok`` is the bench's own mistake: it raises."""
        while True:
            node: Node | None = None
            try:
                node = self.via()
                resp = node.api(method, path, body, timeout=API_TIMEOUT)
            except (OSError, http.client.HTTPException, RuntimeError) as err:
                error = f"{type(err).__name__}: {err}"
            else:
                if resp.status in ok:
                    return resp
                error = f"{resp.status} {resp.body}"
                if resp.status < 500:
                    raise RuntimeError(f"{method} {path}: {error}")
            self.forget_leader(node)
            self.partial["write_retries"] = self.partial.get("write_retries", 0) + 1
            if time.monotonic() >= self.deadline:
                raise PhaseTimeout(f"{method} {path}: {error[:200]}")
            time.sleep(0.5)

    def create(self) -> dict[str, Any]:
        a = self.args
        self.mark(f"create: {a.services} services x {a.replicas} replicas")
        spies = self.profile("create")
        t = time.monotonic()
        try:
            for i in range(a.services):
                body = {
                    "Name": f"s{i}",
                    "Mode": {"Replicated": {"Replicas": a.replicas}},
                    "TaskTemplate": {"ContainerSpec": {"Image": "app"}},
                    "UpdateConfig": {"Parallelism": a.update_parallelism, "Delay": 0},
                }
                # 409: made by an earlier try whose answer was lost.
                self.write("POST", "/services/create", body, ok=(201, 409))
                self.partial["services_created"] = i + 1
            created = time.monotonic() - t
            self.partial["create_calls_seconds"] = round(created, 2)
            self.wait(lambda: self.running() >= self.total, what="every task running")
        finally:
            self.stop_profile(spies)
        seconds = time.monotonic() - t
        return {
            "tasks": self.total,
            "create_calls_seconds": round(created, 2),
            "all_running_seconds": round(seconds, 2),
            "tasks_per_second": round(self.total / seconds, 1),
        }

    def settled(self) -> dict[str, Any]:
        """Nothing asked of the cluster for --settle-seconds but the probe's calls: with every
        task stored and running, what the API gives once the machine is no longer busy
        running the create (its figures under this phase's name in api_by_phase)."""
        self.mark(f"settled: {self.args.settle_seconds:g} s with every task running")
        time.sleep(self.args.settle_seconds)
        return {"seconds": self.args.settle_seconds}

    def update(self) -> dict[str, Any]:
        a = self.args
        self.mark(f"rolling update of s0 ({a.replicas} replicas, {a.update_parallelism} at a time)")
        svc = self.via().get("/services/s0", timeout=API_TIMEOUT)
        spec = svc["Spec"]
        spec["TaskTemplate"]["ForceUpdate"] = spec["TaskTemplate"].get("ForceUpdate", 0) + 1
        t = time.monotonic()
        self.write(
            "POST", f"/services/{svc['ID']}/update?version={svc['Version']['Index']}", spec, (200,)
        )
        self.partial["update_accepted_seconds"] = round(time.monotonic() - t, 2)

        def done() -> bool:
            s = self.via().get(f"/services/{svc['ID']}", timeout=API_TIMEOUT)
            status = s.get("UpdateStatus") or {}
            self.partial["update_state"] = status.get("State")
            if status.get("State") in ("paused", "rollback_paused", "rollback_completed"):
                # It will not complete: no use waiting for the deadline.
                raise PhaseTimeout(f"update {status['State']}: {status.get('Message')}")
            return status.get("State") == "completed"

        self.wait(done, what="the update completed")
        seconds = time.monotonic() - t
        self.partial["update_seconds"] = round(seconds, 2)
        self.wait(lambda: self.running() >= self.total, what="every task running after")
        return {
            "replicas": a.replicas,
            "parallelism": a.update_parallelism,
            "seconds": round(seconds, 2),
            "tasks_per_second": round(a.replicas / seconds, 1),
        }

    def leader_kill(self) -> dict[str, Any]:
        self.mark("leader SIGKILL")
        leader = self.find_leader()
        if leader is None:
            raise RuntimeError("no leader to kill")
        survivors = [m for m in self.managers if m is not leader]
        # Asked of a follower: the whole list held the leader about to be killed for
        # seconds, and once cost it its leadership before the kill.
        before = self.running_tasks(on=survivors[0])
        self.partial["killed"] = leader.name
        # The survivors, one of which is about to lead: what a new leader does first.
        spies = self.profile("leader-kill", {m.name: m.proc for m in survivors})
        t = time.monotonic()
        # Wall time, to read the managers' logs against.
        self.partial["killed_at"] = datetime.datetime.now().isoformat(timespec="milliseconds")
        leader.kill()
        self.forget_leader()
        try:
            return self.failover(leader, survivors, before, t, spies)
        finally:
            self.stop_profile(spies)
            if leader.proc is not None and leader.proc.poll() is not None:
                # The phase gave up before restarting it: the next phases need it back.
                self.mark("restarting the killed manager (after the phase gave up)")
                leader.start()

    def failover(
        self,
        leader: Node,
        survivors: list[Node],
        before: dict[str, str],
        t: float,
        spies: list[subprocess.Popen],
    ) -> dict[str, Any]:
        """After the leader's kill at ``t``: a write accepted, a survivor leading, the fleet
        back and every task running (how many were replaced), then the killed manager
        restarted and caught up."""
        attempt = 0
        # Who leads, looked for apart from the writes: a write to a survivor can wait many
        # seconds for its answer, and a leader seen only between two of them was seen late.
        elected = threading.Event()

        def watch() -> None:
            while not elected.is_set() and time.monotonic() < self.deadline:
                name = leader_of(self.scrape_all(survivors, LEADER_METRICS))
                if name is not None:
                    self.partial["new_leader"] = name
                    self.partial["new_leader_seconds"] = round(time.monotonic() - t, 3)
                    elected.set()
                    return
                time.sleep(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        # Each attempt: where it went, when it was made and answered (seconds after the
        # kill), and what came back; so a slow figure says whether the election or the
        # write was slow.
        attempts: list[list[Any]] = []
        self.partial["write_attempts"] = attempts
        while True:
            attempt += 1
            body = {
                "Name": f"after-kill-{attempt}",
                "Mode": {"Replicated": {"Replicas": 0}},
                "TaskTemplate": {"ContainerSpec": {"Image": "x"}},
            }
            target = survivors[attempt % len(survivors)]
            made = round(time.monotonic() - t, 3)
            try:
                status: Any = target.api(
                    "POST", "/services/create", body, timeout=API_TIMEOUT
                ).status
            except (OSError, http.client.HTTPException) as err:
                status = type(err).__name__
            attempts.append([target.name, made, round(time.monotonic() - t, 3), status])
            if status == 201:
                break
            if time.monotonic() >= self.deadline:
                raise PhaseTimeout("a write accepted after the leader kill")
            time.sleep(0.05)
        write_seconds = time.monotonic() - t
        self.partial["write_accepted_seconds"] = round(write_seconds, 3)
        watcher.join(timeout=max(0.0, self.deadline - time.monotonic()))
        if not elected.is_set():
            raise PhaseTimeout("a survivor saying it leads")
        # Every node back in session with the new leader, then compare the running tasks.
        self.wait(
            lambda: self.ready_nodes() >= self.args.nodes, what="the fleet back with the new leader"
        )
        self.wait(lambda: self.running() >= self.total, what="every task running after")
        settled = time.monotonic() - t
        # Of a follower, as ``before``: the whole list cost the new leader 11-25% of its CPU
        # samples in the seconds after it took over (its profile, this phase).
        after = self.running_tasks(on=self.follower())
        restarted = len(set(before) - set(after))
        self.partial.update(fleet_settled_seconds=round(settled, 2), tasks_restarted=restarted)
        self.stop_profile(spies)
        spies.clear()
        self.mark("restarting the killed manager")
        t = time.monotonic()
        leader.start()
        self.wait_caught_up(leader)
        return {
            "killed": leader.name,
            "new_leader": self.partial.get("new_leader"),
            "new_leader_seconds": self.partial.get("new_leader_seconds"),
            "write_accepted_seconds": round(write_seconds, 3),
            "killed_at": self.partial.get("killed_at"),
            "write_attempts": attempts,
            "fleet_settled_seconds": round(settled, 2),
            "tasks_restarted": restarted,
            "restart_to_caught_up_seconds": round(time.monotonic() - t, 2),
        }

    def wait_caught_up(self, manager: Node) -> None:
        """Until ``manager`` (just started) applied what the leader had committed when it
        came back."""
        commit_index: list[int] = []

        def caught_up() -> bool:
            if not commit_index:
                via = self.metrics_addr[self.via().name]
                commit_index.append(scrape(via, INDEX_METRICS)["commit"])
            applied = scrape(self.metrics_addr[manager.name], INDEX_METRICS).get("applied", -1)
            return bool(applied >= commit_index[0])

        self.wait(caught_up, what=f"{manager.name} caught up", interval=0.25)

    def manager_restart(self) -> dict[str, Any]:
        """A follower SIGKILLed with the fleet connected and started again at once: seconds
        until it applied what the leader had committed (issue 15: snapshot and restart under
        10 s). With what it had to do: how old its last snapshot was, and how many entries it
        had applied since (it restores the one and replays the others)."""
        victim = self.follower()
        self.mark(f"manager restart: {victim.name} SIGKILLed and started again")
        held = scrape(self.metrics_addr[victim.name], RESTART_METRICS)
        snapshot_at = held.get("snapshot_at", 0.0)  # 0: none since it started
        victim.kill()
        t = time.monotonic()
        victim.start()
        self.wait_caught_up(victim)
        return {
            "restarted": victim.name,
            "restart_to_caught_up_seconds": round(time.monotonic() - t, 2),
            "snapshot_index": held.get("snapshot", 0),
            "entries_after_snapshot": held.get("applied", 0) - held.get("snapshot", 0),
            "snapshot_age_seconds": round(time.time() - snapshot_at, 1) if snapshot_at else None,
        }

    def node_loss(self) -> dict[str, Any]:
        share = max(1, self.args.nodes // 10)
        self.mark(f"node loss: {share} nodes killed at once")
        per = [share // len(self.fleets)] * len(self.fleets)
        for i in range(share % len(self.fleets)):
            per[i] += 1
        spies = self.profile("node-loss")
        try:
            return self._node_loss(per)
        finally:
            self.stop_profile(spies)

    def _node_loss(self, per: list[int]) -> dict[str, Any]:
        t = time.monotonic()
        killed: set[str] = set()
        # Every process told first, then their answers read: one after the other, each
        # process' kill (about 1 s for 10 nodes under load) delayed the next, and the last
        # nodes died 15 s after the first (the "all down" figure measured that).
        for f, n in zip(self.fleets, per, strict=True):
            f.send("kill", count=n)
        for f in self.fleets:
            killed |= {x["id"] for x in f.reply()["nodes"]}
        self.partial["nodes_killed"] = len(killed)

        def all_down() -> bool:
            nodes = self.via().get("/nodes", timeout=API_TIMEOUT)
            states = {n["ID"]: n["Status"]["State"] for n in nodes}
            self.partial["nodes_down"] = sum(1 for k in killed if states.get(k) == "down")
            return self.partial["nodes_down"] == len(killed)

        self.wait(all_down, what="every killed node down", interval=0.25)
        down = time.monotonic() - t
        self.partial["all_down_seconds"] = round(down, 2)

        lost = quote(json.dumps({"node": sorted(killed)}))

        def replaced() -> bool:
            # The tasks of the lost nodes only (a tenth of the list), and the services'
            # counts: asking for the whole list twice a second took the leader's CPU. Asked
            # of a follower: even the lost nodes' 10,000 tasks, listed every half second,
            # are about 0.4 s of the answering manager's CPU each time.
            replica = self.follower()
            on_lost = replica.get(f"/tasks?filters={lost}", timeout=API_TIMEOUT)
            if any(t["DesiredState"] == "running" for t in on_lost):
                return False  # not all moved yet
            still = sum(1 for t in on_lost if t["Status"]["State"] == "running")
            self.last_running = self.running(on=replica) - still
            if self.last_running < self.total:
                return False
            tasks = self.running_tasks(on=replica)  # then once the whole list, to be sure
            self.last_running = len(tasks)
            return len(tasks) >= self.total and not killed & set(tasks.values())

        self.wait(replaced, what="every task running elsewhere")
        return {
            "nodes_killed": len(killed),
            "all_down_seconds": round(down, 2),
            "tasks_running_elsewhere_seconds": round(time.monotonic() - t, 2),
        }

    def start_background(self) -> None:
        thread = threading.Thread(target=self.sample, daemon=True)
        thread.start()
        self.threads.append(thread)
        self.start_probe()

    def close(self) -> None:
        self.stop.set()
        self.stop_probe()
        for thread in self.threads:  # each ends after the call it is making
            thread.join(timeout=2 * API_TIMEOUT)
        self.scrapers.shutdown()
        # All at once: a fleet process of a hundred nodes, or a manager holding 100,000
        # tasks, can take its whole 30 s to stop, and one after the other that was minutes.
        with ThreadPoolExecutor(max_workers=len(self.fleets) + len(self.managers) or 1) as pool:
            list(pool.map(lambda f: f.close(), self.fleets))
            list(pool.map(lambda m: m.stop(), self.managers))


def draw(summary: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in summary["timeline"] if "running" in r]
    fig, (top, bottom, raft) = plt.subplots(
        3, 1, figsize=(10, 9), sharex=True, gridspec_kw={"height_ratios": [3, 3, 2]}
    )
    top.plot([r["t"] for r in rows], [r["running"] for r in rows], color="tab:blue")
    top.set_ylabel("running tasks")
    top.set_ylim(bottom=0)
    top.set_title(
        f"shoal: {summary['config']['managers']} managers, {summary['config']['nodes']} "
        f"simulated nodes, {summary['config']['tasks']} tasks"
    )
    for name in summary["config"]["manager_names"]:
        pts = [(r["t"], r[f"{name}_rss_mb"]) for r in summary["timeline"] if f"{name}_rss_mb" in r]
        if pts:
            bottom.plot(*zip(*pts, strict=True), label=f"{name} RSS (MiB)")
    bottom.set_ylabel("MiB")
    bottom.legend(loc="upper left")
    cpu = bottom.twinx()
    for name in summary["config"]["manager_names"]:
        pts = [(r["t"], r[f"{name}_cpu"]) for r in summary["timeline"] if f"{name}_cpu" in r]
        if pts:
            cpu.plot(*zip(*pts, strict=True), linestyle=":", label=f"{name} CPU %")
    cpu.set_ylabel("CPU %")
    cpu.legend(loc="upper right")
    # Raft entries each manager had yet to apply: a follower falling behind shows here; a
    # cross at 0 is a scrape that failed (the manager did not answer in time, or was down).
    for i, name in enumerate(summary["config"]["manager_names"]):
        scraped = [(r["t"], (r.get("metrics") or {}).get(name)) for r in summary["timeline"]]
        pts = [(t, m["behind"]) for t, m in scraped if m is not None and "behind" in m]
        if pts:
            raft.plot(*zip(*pts, strict=True), color=f"C{i}", label=name)
        failed = [t for t, m in scraped if m is not None and "scrape_error" in m]
        if failed:
            raft.scatter(failed, [0] * len(failed), color=f"C{i}", marker="x")
    raft.set_xlabel("seconds")
    raft.set_ylabel("raft entries\nnot yet applied")
    if raft.get_legend_handles_labels()[0]:
        raft.legend(loc="upper left")
    seen: set[str] = set()
    for r in summary["timeline"]:
        if r["phase"] not in seen:
            seen.add(r["phase"])
            for ax in (top, bottom, raft):
                ax.axvline(r["t"], color="grey", linewidth=0.5)
            top.annotate(
                r["phase"][:28],
                (r["t"], 0.02),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize=6,
                va="bottom",
            )
    for change in summary.get("leader_changes", [])[1:]:  # the first is the swarm forming
        for ax in (top, bottom, raft):
            ax.axvline(change["t"], color="tab:red", linewidth=0.8, linestyle="--")
        top.annotate(
            f"leader: {change['to']}",
            (change["t"], 0.98),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=6,
            va="top",
            color="tab:red",
        )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def redraw(result: Path) -> int:
    """Draw the curve of a run already made from its JSON, as the run would have, to the same
    name with .png (for a run whose JSON was kept without its picture)."""
    png = result.with_suffix(".png")
    if not draw(json.loads(result.read_text()), png):
        print("no matplotlib: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    print(f"wrote {png}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--managers", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--replicas", type=int, default=1000, help="per service")
    ap.add_argument("--per-process", type=int, default=250, help="simulated nodes per process")
    ap.add_argument("--start-latency", default="0.05-0.2", help="simulated start, seconds")
    ap.add_argument("--update-parallelism", type=int, default=100)
    ap.add_argument(
        "--heartbeat",
        default="5s",
        help="the swarm's dispatcher heartbeat period (swarm init --dispatcher-heartbeat): "
        "what a connected node costs the leader when nothing happens is mostly its heartbeats",
    )
    ap.add_argument(
        "--phases", default="create,settled,update,leader-kill,node-loss,manager-restart"
    )
    ap.add_argument(
        "--settle-seconds",
        type=float,
        default=30.0,
        help="the settled phase: this long with nothing asked of the cluster but the API "
        "probe's calls, after the create",
    )
    ap.add_argument("--sample-interval", type=float, default=1.0)
    ap.add_argument("--probe-interval", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=1800.0, help="give up on a phase after")
    ap.add_argument(
        "--py-spy",
        default="",
        help="py-spy to profile the create, leader-kill and node-loss phases with",
    )
    ap.add_argument("--profile-dir", default="/tmp/shoal-fleet-profile")
    ap.add_argument(
        "--profile-native",
        action="store_true",
        help="with --py-spy, sample C frames too (gRPC's core, the json encoder, pydantic's "
        "core), which a Python-only profile charges to the frame that called in",
    )
    ap.add_argument(
        "--profile-seconds",
        type=int,
        default=0,
        help="sample only this long from each phase's start (0: the whole phase); the first "
        "seconds after a leader kill are diluted in a whole phase's samples",
    )
    ap.add_argument(
        "--dump-tasks",
        default="",
        help="write GET /tasks here at the end (and GET /nodes beside it)",
    )
    ap.add_argument(
        "--manager-nice",
        type=int,
        default=0,
        help="run the managers at this niceness (the fleet at 0): a fleet of many simulated "
        "nodes per process on few cores can fall behind as real machines would not",
    )
    ap.add_argument("--out", default="fleet", help="results/NAME.json and NAME.png")
    ap.add_argument(
        "--keep-logs",
        default="",
        help="copy the managers' logs here (with SHOAL_LOOP_STALL_TRACE=0.5 in the environment, "
        "they show what held an event loop)",
    )
    ap.add_argument(
        "--redraw",
        type=Path,
        metavar="FILE.json",
        help="run nothing: draw FILE.png from a run's FILE.json, as written by this script",
    )
    args = ap.parse_args()
    if args.redraw:
        return redraw(args.redraw)
    phases = args.phases.split(",")
    # A timeout's SIGTERM ends the run as Ctrl-C does: what was measured is still written.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    root = Path(tempfile.mkdtemp(prefix="shoal-fleet-", dir="/tmp"))
    bench = Bench(args, root)
    figures: dict[str, Any] = {}
    error = ""
    incomplete: list[str] = []
    # Elections after the swarm formed and before the leader kill: leadership lost under load.
    elections: list[int | None] = [None, None]
    try:
        bench.setup()
        elections[0] = bench.elections()
        figures["join"] = {"nodes": args.nodes, "seconds": round(bench.join_seconds, 2)}
        figures["fleet_rss_per_node_kib"] = round(
            sum(proc_usage(f.proc.pid)[1] for f in bench.fleets) / args.nodes / 1024, 1
        )
        bench.start_background()
        # Each phase within --timeout; one that times out or fails is recorded with what it
        # reached, and the next runs.
        for name, key, run in (
            ("create", "create", bench.create),
            ("settled", "settled", bench.settled),
            ("update", "update", bench.update),
            ("leader-kill", "leader_kill", bench.leader_kill),
            ("node-loss", "node_loss", bench.node_loss),
            ("manager-restart", "manager_restart", bench.manager_restart),
        ):
            if name not in phases or (name == "leader-kill" and args.managers < 3):
                continue
            if name == "manager-restart" and args.managers < 2:
                continue
            if name == "leader-kill":
                elections[1] = bench.elections()
            figures[key] = bench.run_phase(name, run)
            print(json.dumps(figures[key]), flush=True)
            if "timed_out" in figures[key] or "error" in figures[key]:
                incomplete.append(name)
            if name == "create" and "cpu" in figures[key]:
                # CPU per task made to run, by process: at 2,000 tasks a second, 2 cores
                # give a millisecond per task to everything the machine runs.
                cpu = figures[key]["cpu"]
                cpu["ms_per_task"] = {
                    **{k: round(v * 1000 / bench.total, 3) for k, v in cpu["managers"].items()},
                    "fleet": round(cpu["fleet"] * 1000 / bench.total, 3),
                    "machine_busy": round(cpu["machine_busy"] * 1000 / bench.total, 3),
                }
            if name == "create":
                fleet_rss = sum(proc_usage(f.proc.pid)[1] for f in bench.fleets)
                figures["fleet_rss_per_node_kib_loaded"] = round(fleet_rss / args.nodes / 1024, 1)
        bench.mark("done")
        if args.dump_tasks:
            # Every task as the leader has it at the end: when each was created and reached
            # its state, to see what paced a phase.
            Path(args.dump_tasks).write_text(json.dumps(bench.via().get("/tasks", timeout=60)))
            nodes = bench.via().get("/nodes", timeout=60)
            Path(args.dump_tasks).with_suffix(".nodes.json").write_text(json.dumps(nodes))
    except (Exception, KeyboardInterrupt) as err:  # the figures so far are still written
        error = f"{type(err).__name__}: {err}"
        print(f"FAILED in phase {bench.phase}: {error}", flush=True)
    finally:
        if elections[0] is not None:
            before_kill = elections[1] if elections[1] is not None else bench.elections()
            figures["leader_changes_under_load"] = before_kill - elections[0]
            # All of them since the swarm formed (before shutting down, which may elect): the
            # leader kill accounts for one.
            figures["elections_after_setup"] = bench.elections() - elections[0]
        bench.close()
        figures["loop_lag"] = {
            m.name: loop_lag(m.log_file.read_text(errors="replace"))
            for m in bench.managers
            if m.log_file.exists()
        }
        if args.keep_logs:
            kept = Path(args.keep_logs)
            kept.mkdir(parents=True, exist_ok=True)
            for m in bench.managers:
                if m.log_file.exists():
                    shutil.copy(m.log_file, kept / f"{m.name}.log")
            for f in bench.fleets:  # with SHOAL_LOOP_STALL_TRACE, where their loops stalled
                if f.log_file.exists():
                    shutil.copy(f.log_file, kept / f.log_file.name)
        logs = {p.name: p.read_text()[-3000:] for p in root.glob("**/*.log") if p.stat().st_size}
        shutil.rmtree(root, ignore_errors=True)

    # The same by phase (the mark each call was made under): what the API gives while the
    # cluster churns, and while it holds still (the settled phase).
    by_phase: dict[str, dict[str, Any]] = {}
    for c in bench.api:
        if c["ok"]:
            by_phase.setdefault(c["phase"], {}).setdefault(c["call"], []).append(c["ms"])
    figures["api_by_phase"] = {
        phase: {call: latencies(ms) for call, ms in calls.items()}
        for phase, calls in by_phase.items()
    }
    api: dict[str, Any] = {}
    for call in ("service ls", "node ls", "service inspect", "service update"):
        ms = [c["ms"] for c in bench.api if c["call"] == call and c["ok"]]
        api[call] = {
            **latencies(ms),
            "failed": sum(1 for c in bench.api if c["call"] == call and not c["ok"]),
            "max_ms": round(max(ms), 1) if ms else None,
            # Which managers answered (all should be the leader of the moment), and why
            # calls failed.
            "via": dict(Counter(c["via"] for c in bench.api if c["call"] == call)),
            "errors": dict(
                Counter(
                    c["error"][:80] for c in bench.api if c["call"] == call and not c["ok"]
                ).most_common(3)
            ),
        }
    managers: dict[str, Any] = {}
    for m in bench.managers:
        rss = [r[f"{m.name}_rss_mb"] for r in bench.timeline if f"{m.name}_rss_mb" in r]
        cpu = [r[f"{m.name}_cpu"] for r in bench.timeline if f"{m.name}_cpu" in r]
        managers[m.name] = {
            "max_rss_mb": max(rss, default=None),
            "max_cpu_pct": max(cpu, default=None),
            "mean_cpu_pct": round(statistics.mean(cpu), 1) if cpu else None,
            **raft_summary(bench.timeline, m.name),
        }
    summary = {
        "benchmark": "fleet",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "command": " ".join(sys.argv),
        "config": {
            "managers": args.managers,
            "manager_names": [m.name for m in bench.managers],
            "nodes": args.nodes,
            "services": args.services,
            "replicas": args.replicas,
            "tasks": bench.total,
            "per_process": args.per_process,
            "start_latency": args.start_latency,
            "update_parallelism": args.update_parallelism,
            "heartbeat": args.heartbeat,
            "manager_nice": args.manager_nice,
        },
        "error": error,
        "incomplete_phases": incomplete,
        "figures": figures,
        "leader_changes": bench.leader_changes,
        "api": api,
        "managers": managers,
        "timeline": bench.timeline,
        "api_calls": bench.api,
    }
    shown = ("incomplete_phases", "figures", "leader_changes", "api", "managers")
    print(json.dumps({k: summary[k] for k in shown}, indent=2))
    if error:
        for name, text in logs.items():
            print(f"--- {name}\n{text}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(summary, indent=1) + "\n")
    if draw(summary, RESULTS / f"{args.out}.png"):
        print(f"wrote {RESULTS / args.out}.json and .png")
    else:
        print(f"wrote {RESULTS / args.out}.json (no matplotlib: pip install -e '.[bench]')")
    return 1 if error or incomplete else 0


if __name__ == "__main__":
    sys.exit(main())

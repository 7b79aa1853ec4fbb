"""Converge progress for ``service create|update|scale|rollback``, drawn as Docker's CLI draws
it and computed the same way: poll the service, its up-to-date tasks and the nodes every
200 ms; count running tasks per slot (or per node for global services); once all run, wait
the update monitor period to see that they stay up, then say the service converged.

On a terminal each line is redrawn in place with a bar per task; otherwise each message is
one line, and per-task state bars are left out (as Docker does). Ctrl-C stops following, not
the change: "Operation continuing in background.", exit status 0, as Docker's CLI."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from shoal.cli.framework import CLIError
from shoal.cli.humanize import truncate_id
from shoal.cli.job_progress import GlobalJobProgress, ReplicatedJobProgress
from shoal.cli.progress_writer import (
    LONGEST_STATE,
    MAX_PROGRESS,
    MAX_PROGRESS_BARS,
    STATE_ORDER,
    ProgressWriter,
    terminal,
    trunc_error,
)
from shoal.client import Client

POLL = 0.2
DEFAULT_MONITOR = 5.0


@dataclass
class SlotProgress:
    """Progress over slots (replicated) or nodes (global)."""

    writer: ProgressWriter
    global_mode: bool
    initialized: bool = False
    done: bool = False
    slot_map: dict[int, int] = field(default_factory=dict)

    def _overall(self, running: int, total: int, rollback: bool) -> None:
        text = f"{running} out of {total} tasks"
        if rollback:
            text = f"rolling back update: {text}"
        self.writer.write("overall progress", text)

    def update(self, service: dict, tasks: list[dict], active: set[str], rollback: bool) -> bool:
        if self.global_mode:
            return self._update_global(tasks, active, rollback)
        replicas = ((service["Spec"].get("Mode") or {}).get("Replicated") or {}).get(
            "Replicas"
        ) or 0
        if not self.initialized:
            self._overall(0, replicas, rollback)
            if replicas <= MAX_PROGRESS_BARS:
                for i in range(1, replicas + 1):
                    self.writer.write(f"{i}/{replicas}", " ")
            self.initialized = True
        by_slot = _favoured(tasks, lambda t: t.get("Slot", 0), active)
        if self.done and any(t["Status"]["State"] != "running" for t in by_slot.values()):
            self.done = False
        running = 0
        for slot, task in by_slot.items():
            mapped = self.slot_map.setdefault(slot, len(self.slot_map) + 1)
            if not terminal(task["DesiredState"]) and task["Status"]["State"] == "running":
                running += 1
            if not self.done and replicas <= MAX_PROGRESS_BARS and mapped <= replicas:
                self._task_line(f"{mapped}/{replicas}", task)
        if not self.done:
            self._overall(running, replicas, rollback)
            self.done = running == replicas
        return running == replicas

    def _update_global(self, tasks: list[dict], active: set[str], rollback: bool) -> bool:
        by_node = _favoured(tasks, lambda t: t.get("NodeID", ""), None)
        count = len(by_node)
        if not self.initialized:
            if count == 0:
                self.writer.write("overall progress", "waiting for new tasks")
                return False
            self._overall(0, count, rollback)
            self.initialized = True
        if self.done and any(t["Status"]["State"] != "running" for t in by_node.values()):
            self.done = False
        running = 0
        for node_id, task in by_node.items():
            if node_id not in active:
                continue
            if not terminal(task["DesiredState"]) and task["Status"]["State"] == "running":
                running += 1
            if not self.done and count <= MAX_PROGRESS_BARS:
                self._task_line(truncate_id(node_id), task)
        if not self.done:
            self._overall(running, count, rollback)
            self.done = running == count
        return running == count

    def _task_line(self, ident: str, task: dict) -> None:
        status = task["Status"]
        if status.get("Err"):
            self.writer.write(ident, trunc_error(status["Err"]))
        elif not terminal(task["DesiredState"]) and not terminal(status["State"]):
            state = status["State"]
            self.writer.write(ident, state.ljust(LONGEST_STATE), STATE_ORDER[state], MAX_PROGRESS)


def _favoured(tasks: list[dict], key: Callable[[dict], Any], active: set[str] | None) -> dict:
    """One task per slot (or node): the lowest desired state wins, then the lowest observed
    state (a start-first update has two tasks in a slot for a while)."""
    chosen: dict = {}
    for task in tasks:
        desired = STATE_ORDER.get(task.get("DesiredState", ""), 0)
        observed = STATE_ORDER.get((task.get("Status") or {}).get("State", ""), 0)
        if not desired or not observed:
            continue
        k = key(task)
        existing = chosen.get(k)
        if existing is not None:
            e_desired = STATE_ORDER[existing["DesiredState"]]
            if e_desired < desired:
                continue
            if e_desired == desired and STATE_ORDER[existing["Status"]["State"]] <= observed:
                continue
        if active is not None and task.get("NodeID") and task["NodeID"] not in active:
            continue
        chosen[k] = task
    return chosen


class Updater(Protocol):
    def update(
        self, service: dict, tasks: list[dict], active: set[str], rollback: bool
    ) -> bool: ...


def updater_for(service: dict, writer: ProgressWriter) -> Updater:
    """The progress drawing for the service's mode, as Docker's CLI picks it."""
    mode = service["Spec"].get("Mode") or {}
    if "Replicated" in mode:
        return SlotProgress(writer, global_mode=False)
    if "Global" in mode:
        return SlotProgress(writer, global_mode=True)
    if "ReplicatedJob" in mode:
        return ReplicatedJobProgress.of(writer, service)
    if "GlobalJob" in mode:
        return GlobalJobProgress(writer)
    raise CLIError("unrecognized service mode")


class Interrupt:
    """Ctrl-C while the CLI follows a converge: noticed at the next pause between polls, as
    Docker's CLI notices it, so that the change goes on on the cluster and the CLI says so."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> Interrupt:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, self.event.set)
            self._loop = loop
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread: Ctrl-C stays a KeyboardInterrupt
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGINT)

    async def pause(self, seconds: float) -> bool:
        """Wait ``seconds``; True if interrupted (now or since the last pause)."""
        if not self.event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), seconds)
        return self.event.is_set()


async def wait_for_convergence(
    client: Client,
    service_id: str,
    quiet: bool = False,
    stream: TextIO | None = None,
) -> None:
    writer = ProgressWriter(stream or sys.stdout, quiet=quiet)
    with Interrupt() as interrupt:
        await _follow(client, service_id, writer, interrupt)


async def _follow(
    client: Client, service_id: str, writer: ProgressWriter, interrupt: Interrupt
) -> None:
    updater: Updater | None = None
    converged = False
    converged_at: float | None = None
    rollback = False
    final_message: str | None = None
    monitor = DEFAULT_MONITOR
    while True:
        service = await client.request("GET", f"/services/{service_id}")
        spec = service["Spec"]
        configured = (spec.get("UpdateConfig") or {}).get("Monitor")
        if configured:
            monitor = configured / 1e9
        if updater is None:
            updater = updater_for(service, writer)
        status = service.get("UpdateStatus") or {}
        state = status.get("State")
        if state == "updating":
            rollback = False
        elif state == "completed" and not converged:
            return
        elif state == "paused":
            raise CLIError(f"service update paused: {status.get('Message', '')}")
        elif state == "rollback_started":
            if not rollback and status.get("Message"):
                writer.write("rollback", status["Message"])
            rollback = True
        elif state == "rollback_paused":
            raise CLIError(f"service rollback paused: {status.get('Message', '')}")
        elif state == "rollback_completed":
            if not converged:
                final_message = f"rollback: {status.get('Message', '')}"
            rollback = True
        if converged and converged_at is not None and time.monotonic() - converged_at >= monitor:
            writer.write("verify", f"Service {service_id} converged")
            if final_message:
                writer.message(final_message)
            return
        tasks = await client.tasks({"service": [service["ID"]], "_up-to-date": ["true"]})
        nodes = await client.nodes()
        active = {n["ID"] for n in nodes if (n.get("Status") or {}).get("State") != "down"}
        converged = updater.update(service, tasks, active, rollback)
        if converged:
            if service.get("JobStatus") is not None:
                # A job stays done once done: nothing to verify.
                writer.message("job complete")
                return
            if converged_at is None:
                converged_at = time.monotonic()
            wait = monitor - (time.monotonic() - converged_at)
            if wait >= 0:
                writer.write(
                    "verify", f"Waiting {int(wait) + 1} seconds to verify that tasks are stable..."
                )
        else:
            if converged_at is not None:
                writer.write("verify", "Detected task failure")
            converged_at = None
        if await interrupt.pause(POLL):
            if not converged:
                writer.message("Operation continuing in background.")
                # Docker's words, naming this CLI (as "swarm init" names it in its hints).
                writer.message(f"Use `shoal service ps {service_id}` to check progress.")
            return

"""The ``container`` runtime: a task is a Docker container on the node's engine, made and
driven as Swarm's own executor does (moby's daemon/cluster/executor/container).

The container's name is unique to the task (``web.1.<task id>``), so every call goes by name
and a restarted agent finds its containers again without remembering anything. Each
container carries Swarm's labels, among them the node's ID: several nodes may share one
engine, and each keeps to its own containers."""

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from shoal.agent.exec.base import ExitError, NodeContext, TaskFailed
from shoal.agent.exec.container_config import (
    CONTAINER_DESTROYED,
    CONTAINER_UNHEALTHY,
    NODE_ID_LABEL,
    TASK_ID_LABEL,
    bind_address,
    container_name,
    container_status,
    create_body,
    expand_spec,
    has_healthcheck,
    health_status,
    join_networks,
    port_status,
    stop_timeout,
    volume_create_requests,
)
from shoal.agent.exec.engine import Engine, EngineError, EngineUnavailable
from shoal.agent.exec.networking import TaskNetworking as NodeOverlayLike
from shoal.agent.exec.networking import task_attachments
from shoal.agent.exec.task_file_set import TaskFileError, TaskFileSet
from shoal.api.objects import ContainerStatus, Task
from shoal.api.specs import EndpointPortConfig
from shoal.clock import Clock
from shoal.network.overlay.docker_driver import (
    DockerNetworkDriver,
    docker_network_body,
    endpoint_options,
)
from shoal.network.overlay.node import TaskAttachment

log = logging.getLogger(__name__)

RUNTIME = "container"
# How often to look again while the engine does not answer (a waiting task outlives an
# engine restart), or while a followed log waits for its container to start.
RETRY_PERIOD = 1.0
LOG_POLL = 0.2

_HEALTHY = "health_status: healthy"
_UNHEALTHY = "health_status: unhealthy"


class ContainerController:
    def __init__(
        self,
        task: Task,
        engine: Engine,
        node: NodeContext,
        clock: Clock,
        driver: DockerNetworkDriver | None = None,
    ) -> None:
        self.task = task
        self.engine = engine
        self.node = node
        self.clock = clock
        self.driver = driver
        self.name = container_name(task)
        self._inspect: dict[str, Any] | None = None  # the last inspect: status and ports
        self._removed = False
        self._registered = False  # the node knows the task's overlay endpoints
        self.files = TaskFileSet(task, node)  # its secrets and configs

    def update(self, task: Task) -> None:
        self.task = task
        self.files.task = task

    # --- engine calls -----------------------------------------------------------------------

    async def _refresh(self) -> dict[str, Any] | None:
        """Inspect the container again (None if it does not exist)."""
        try:
            self._inspect = await self.engine.inspect(self.name)
        except EngineError as err:
            if not err.not_found:
                raise TaskFailed(err.message) from None
            return None
        return self._inspect

    async def _inspect_existing(self) -> dict[str, Any]:
        insp = await self._refresh()
        if insp is None:
            raise TaskFailed(f"No such container: {self.name}")
        return insp

    def _events(self) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        return self.engine.events(
            {"type": ["container"], "label": [f"{TASK_ID_LABEL}={self.task.ID}"]}
        )

    # --- the interface ----------------------------------------------------------------------

    # --- overlay networks ---------------------------------------------------------------------

    def _overlay(self) -> tuple[NodeOverlayLike, DockerNetworkDriver]:
        networking, driver = self.node.networking, self.driver
        if networking is None or driver is None:
            raise TaskFailed(self.node.no_networking)
        return networking, driver

    async def _docker_networks(self, attachments: list[TaskAttachment]) -> list[str]:
        """Our Docker network on the engine for each of the task's networks, made if it
        is not there (or not right: a network re-created under the same name)."""
        _, driver = self._overlay()
        async with driver.networks_lock:
            return await self._make_docker_networks(driver.overlay.names.prefix, attachments)

    async def _make_docker_networks(
        self, prefix: str, attachments: list[TaskAttachment]
    ) -> list[str]:
        names = []
        for a in attachments:
            body = docker_network_body(prefix, a.network)
            try:
                have = await self.engine.network(body["Name"])
            except EngineError as err:
                if not err.not_found:
                    raise TaskFailed(err.message) from None
                have = None
            if have is not None and (have.get("Options") or {}) != body["Options"]:
                with contextlib.suppress(EngineError):
                    await self.engine.remove_network(body["Name"])
                have = None
            if have is None:
                try:
                    await self.engine.create_network(body)
                except EngineError as err:
                    if not err.conflict:
                        raise TaskFailed(err.message) from None
            names.append(body["Name"])
        return names

    async def _register(self) -> None:
        """Tell the node the container's endpoints (for its VIP table and the resolver)."""
        attachments = task_attachments(self.task)
        if not attachments or self._registered:
            return
        networking, _ = self._overlay()
        insp = self._inspect or await self._inspect_existing()
        sandbox = (insp.get("NetworkSettings") or {}).get("SandboxKey")
        if not sandbox:
            raise TaskFailed("the container has no network namespace")
        await networking.register(self.task.ID, attachments, sandbox)
        self._registered = True

    async def _file_binds(self) -> list[tuple[str, str]]:
        """The task's secret and config files, bound read-only into the container: empty
        for now (the engine checks that what it binds exists), filled in as it starts."""
        try:
            binds = self.files.binds()
            if binds and not self.engine.is_local:
                raise TaskFileError(
                    "secrets and configs need the Docker Engine on the node's own host"
                )
            await self.files.make_empty()
        except TaskFileError as err:
            raise TaskFailed(str(err)) from None
        except OSError as err:
            raise TaskFailed(f"error creating secret mount path: {err}") from None
        return binds

    async def prepare(self) -> None:
        spec = expand_spec(self.task, self.node)
        body = create_body(self.task, spec, bind_address(self.node.addr), await self._file_binds())
        attachments = task_attachments(self.task)
        networks: list[str] = []
        if attachments:
            networks = await self._docker_networks(attachments)
            join_networks(
                body,
                [
                    (n, endpoint_options(a.address, self.task.ID))
                    for n, a in zip(networks, attachments, strict=True)
                ],
                attachments[0].network.gateway,
            )
        image = body["Image"]
        try:
            if not await self.engine.image_exists(image):
                try:
                    await self.engine.pull(image)
                except EngineUnavailable:
                    raise
                except EngineError as err:
                    # As Swarm: the pull's failure is logged, and creating the container says
                    # what the task lacks ("No such image: nosuchimage:1.0").
                    log.warning("task %s: pulling image %s failed: %s", self.task.ID, image, err)
            for volume in volume_create_requests(spec):
                await self.engine.create_volume(volume)
            await self.engine.create_container(self.name, body)
            for name, a in list(zip(networks, attachments, strict=True))[1:]:
                await self.engine.connect_network(
                    name,
                    {
                        "Container": self.name,
                        "EndpointConfig": {"DriverOpts": endpoint_options(a.address, self.task.ID)},
                    },
                )
        except EngineError as err:
            if not err.conflict:
                raise TaskFailed(err.message) from None
            # Created before (by this agent before a restart): prepared already.
        await self._refresh()

    def _check_mounts(self) -> None:
        # Swarm refuses a bind mount whose source is missing rather than let the engine
        # create it. Only meaningful where the engine's paths are ours.
        if not self.engine.is_local:
            return
        for m in expand_spec(self.task, self.node).Mounts or []:
            if m.Type == "bind" and not os.path.exists(m.Source):
                raise TaskFailed(f"invalid bind mount source, source path not found: {m.Source}")

    async def start(self) -> None:
        insp = await self._inspect_existing()
        created = (insp.get("State") or {}).get("Status") == "created"
        if not has_healthcheck(insp):
            if created:
                await self._start_container()
            await self._refresh()
            await self._register()
            return
        # Running only once healthy: listen before starting, so no event is missed.
        try:
            async with self._events() as events:
                if created:
                    await self._start_container()
                    await self._refresh()
                    await self._register()
                await self._until_healthy(events)
        except EngineError as err:
            raise TaskFailed(err.message) from None
        finally:
            await self._refresh_quietly()

    async def _start_container(self) -> None:
        self._check_mounts()
        try:
            await self.files.write()
        except TaskFileError as err:
            raise TaskFailed(f"starting container failed: {err}") from None
        try:
            await self.engine.start(self.name)
        except EngineError as err:
            raise TaskFailed(f"starting container failed: {err.message}") from None

    async def _until_healthy(self, events: AsyncIterator[dict]) -> None:
        cause: str | None = None
        insp = await self._inspect_existing()
        state = insp.get("State") or {}
        if not state.get("Running"):
            return self._exited(insp, cause)
        status = health_status(insp)
        if status == "healthy":
            return None
        if status == "unhealthy":
            cause = await self._stop_unhealthy()
        async for event in events:
            action = event.get("Action") or event.get("status") or ""
            if action == _HEALTHY and cause is None:
                return None
            if action == _UNHEALTHY and cause is None:
                cause = await self._stop_unhealthy()
            elif action == "die":
                return self._exited(await self._inspect_existing(), cause)
            elif action == "destroy":
                raise TaskFailed(CONTAINER_DESTROYED)
        raise TaskFailed("the engine's event stream ended while the container started")

    def _exited(self, insp: dict[str, Any], cause: str | None) -> None:
        code = int((insp.get("State") or {}).get("ExitCode") or 0)
        if code != 0:
            raise ExitError(code, cause)

    async def _stop_unhealthy(self) -> str:
        log.info("task %s: container %s is unhealthy; stopping it", self.task.ID, self.name)
        await self._stop()
        return CONTAINER_UNHEALTHY

    async def wait(self) -> None:
        insp = await self._inspect_when_answered()
        if (insp.get("State") or {}).get("Running"):
            await self._register()  # a restarted daemon picks the task up here
        unhealthy: list[str] = []
        watcher = None
        if has_healthcheck(insp) and (insp.get("State") or {}).get("Running"):
            watcher = asyncio.ensure_future(self._watch_health(unhealthy))
        try:
            code = await self._wait_exit()
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
        await self.files.remove()  # the task has ended: its secrets go
        await self._refresh_quietly()
        if code != 0:
            raise ExitError(code, unhealthy[0] if unhealthy else None)

    async def _inspect_when_answered(self) -> dict[str, Any]:
        """Inspect the container, waiting for an engine that does not answer (a restarted
        agent may find its engine restarting too)."""
        while True:
            try:
                self._inspect = await self.engine.inspect(self.name)
                return self._inspect
            except EngineUnavailable as err:
                log.info("task %s: engine unavailable (%s)", self.task.ID, err)
                await self.clock.sleep(RETRY_PERIOD)
            except EngineError as err:
                raise TaskFailed(err.message) from None

    async def _wait_exit(self) -> int:
        """The container's exit code once it is not running. An engine that goes away
        (restarting) is waited for: the container may well outlive it."""
        while True:
            try:
                return await self.engine.wait(self.name)
            except EngineUnavailable as err:
                log.info("task %s: engine unavailable while waiting (%s)", self.task.ID, err)
                await self.clock.sleep(RETRY_PERIOD)
            except EngineError as err:
                raise TaskFailed(err.message) from None

    async def _watch_health(self, unhealthy: list[str]) -> None:
        """Stop the container when it turns unhealthy (the wait then sees it exit)."""
        try:
            async with self._events() as events:
                insp = await self.engine.inspect(self.name)
                if health_status(insp) != "unhealthy":
                    async for event in events:
                        if (event.get("Action") or "") == _UNHEALTHY:
                            break
                    else:
                        return
                # Known before stopping: the wait may see the exit before the stop returns.
                unhealthy.append(CONTAINER_UNHEALTHY)
                await self._stop_unhealthy()
        except EngineError as err:
            log.info("task %s: health watch ended: %s", self.task.ID, err)

    async def _stop(self) -> None:
        spec = self.task.Spec.ContainerSpec
        try:
            await self.engine.stop(self.name, stop_timeout(spec))
        except EngineError as err:
            if not err.not_found:
                raise

    async def shutdown(self) -> None:
        try:
            await self._stop()
        except EngineError as err:
            raise TaskFailed(err.message) from None
        await self.files.remove()
        await self._refresh_quietly()

    async def terminate(self) -> None:
        try:
            await self.engine.kill(self.name)
        except EngineError as err:
            if not (err.not_found or err.conflict):  # gone, or not running
                raise TaskFailed(err.message) from None
        await self._refresh_quietly()

    async def remove(self) -> None:
        self._removed = True
        if self._registered and self.node.networking is not None:
            await self.node.networking.detach(self.task.ID)
            self._registered = False
        try:
            await self._stop()
        except EngineError as err:
            log.debug("task %s: shutdown before removal failed: %s", self.task.ID, err)
        try:
            await self.engine.remove(self.name)
        except EngineError as err:
            if not err.not_found:
                raise TaskFailed(err.message) from None
        finally:
            await self.files.remove()

    async def _refresh_quietly(self) -> None:
        try:
            await self._refresh()
        except TaskFailed as err:
            log.debug("task %s: inspect failed: %s", self.task.ID, err)

    def container_status(self) -> ContainerStatus | None:
        return container_status(self._inspect)

    def port_status(self) -> list[EndpointPortConfig] | None:
        return port_status(self._inspect) or None

    # --- logs -------------------------------------------------------------------------------

    async def logs(self, options: Any) -> AsyncIterator[Any]:
        """The container's log lines that ``options`` (a shoal.logs LogOptions) select. With
        follow, waits for the container to start, then yields until it stops."""
        from shoal.logs.model import STDERR, STDOUT, LogLine
        from shoal.logs.timestamps import parse_rfc3339

        insp = await self._started_for_logs(options.follow)
        if insp is None:
            return
        params: dict[str, Any] = {
            "stdout": bool(options.stdout),
            "stderr": bool(options.stderr),
            "timestamps": True,
            "follow": bool(options.follow),
            "tail": "all" if options.tail is None else str(max(options.tail, 0)),
        }
        if options.since_ns is not None:
            seconds, nanos = divmod(options.since_ns, 1_000_000_000)
            params["since"] = f"{seconds}.{nanos:09d}"
        tty = bool((insp.get("Config") or {}).get("Tty"))
        try:
            async for number, payload in self.engine.logs(self.name, params, tty):
                stamp, _, data = payload.partition(b" ")
                try:
                    timestamp = parse_rfc3339(stamp.decode())
                except (ValueError, UnicodeDecodeError):
                    continue
                line = LogLine(
                    timestamp_ns=timestamp,
                    stream=STDERR if number == 2 else STDOUT,
                    data=data,
                )
                if options.selects(line):
                    yield line
        except EngineError as err:
            if not err.not_found:
                log.info("task %s: reading logs failed: %s", self.task.ID, err)

    async def _started_for_logs(self, follow: bool) -> dict[str, Any] | None:
        """The container's inspect once there is a log to read: at once without follow (None
        if there is no container), else once it has started (None if it never will)."""
        while True:
            try:
                insp = await self.engine.inspect(self.name)
            except EngineError as err:
                if not err.not_found and not isinstance(err, EngineUnavailable):
                    return None
                insp = None
            if not follow:
                return insp
            if insp is not None and (insp.get("State") or {}).get("Status") != "created":
                return insp
            if self._removed or self.task.Status.State.is_terminal:
                return insp
            await self.clock.sleep(LOG_POLL)


class ContainerExecutor:
    runtimes = [RUNTIME]

    def __init__(
        self,
        engine: Engine,
        node: NodeContext,
        clock: Clock,
        driver: DockerNetworkDriver | None = None,
    ) -> None:
        self.engine = engine
        self.node = node
        self.clock = clock
        self.driver = driver

    def controller(self, task: Task) -> ContainerController:
        return ContainerController(task, self.engine, self.node, self.clock, self.driver)

    async def containers(self) -> dict[str, str]:
        """This node's containers: task ID -> container ID."""
        found = await self.engine.containers({NODE_ID_LABEL: self.node.node_id})
        out = {}
        for c in found:
            task_id = (c.get("Labels") or {}).get(TASK_ID_LABEL)
            if task_id:
                out[task_id] = c["Id"]
        return out

    async def reconcile(self, keep: set[str]) -> list[str]:
        """Remove this node's containers of tasks not in ``keep`` (tasks no longer assigned
        here, left behind by an agent that stopped before it could remove them). Returns
        the IDs of the tasks whose containers were removed."""
        removed = []
        for task_id, container_id in (await self.containers()).items():
            if task_id in keep:
                continue
            try:
                await self.engine.remove(container_id)
            except EngineError as err:
                if not err.not_found:
                    log.warning("removing container %s failed: %s", container_id, err)
                    continue
            removed.append(task_id)
        return removed

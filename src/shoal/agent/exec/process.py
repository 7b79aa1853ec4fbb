"""The ``process`` runtime: a task is a command run as a supervised child of the node.

Each task has a directory of its own under the agent's state dir, holding the host ports it
was given, the pid of its shim (see ``shim``), the command's pid, its log and its exit code.
Everything a restarted daemon needs to pick the task up again is in that directory."""

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from shoal.agent.exec.base import ExitError, NodeContext, TaskFailed
from shoal.agent.exec.isolation import resolv_conf_text
from shoal.agent.exec.networking import task_attachments
from shoal.agent.exec.shim import proc_start_time
from shoal.agent.exec.task_file_set import TaskFileError, TaskFileSet
from shoal.agent.exec.task_files import SECRETS_DIR
from shoal.agent.exec.template import expand, expand_env
from shoal.api.objects import ContainerStatus, Task
from shoal.api.specs import SECOND, EndpointPortConfig
from shoal.api.types import PortProtocol, PublishMode
from shoal.errors import InvalidArgument
from shoal.logs.jsonfile import read_log
from shoal.logs.model import LogLine, LogOptions
from shoal.network.overlay.node import HostPort

RUNTIME = "process"
# Where a process task finds its secret and config files (see _file_env).
SECRETS_DIR_ENV = "SHOAL_SECRETS_DIR"
CONFIGS_DIR_ENV = "SHOAL_CONFIGS_DIR"
DEFAULT_STOP_GRACE = 10.0
SHIM_START_TIMEOUT = 30.0
KILL_RETRY = 0.2  # seconds between SIGKILLs to a task whose shim has not run its command yet


def parse_signal(name: str | None) -> int:
    if not name:
        return signal.SIGTERM
    text = name.strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise TaskFailed(f"invalid stop signal: {name}") from None


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def pid_alive(pid: int, start_time: int | None) -> bool:
    """The process with this pid exists and is the one started at ``start_time``."""
    now = proc_start_time(pid)
    if now is None:
        return False
    return start_time is None or now == start_time


async def wait_for_exit(pid: int, start_time: int | None) -> None:
    """Return when the process exits. Works for processes that are not our children (a shim
    started by a previous daemon), through a pidfd where the kernel has them."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except OSError:
        # No pidfd (old kernel): nothing to wait on but the process table itself.
        while pid_alive(pid, start_time):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        return
    try:
        if not pid_alive(pid, start_time):
            return  # the pid was reused: the process we meant has already gone
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not done.done():
                done.set_result(None)

        loop.add_reader(fd, readable)
        try:
            await done
        finally:
            loop.remove_reader(fd)
    finally:
        os.close(fd)


def _free_port(host: str, protocol: PortProtocol) -> int:
    kind = socket.SOCK_DGRAM if protocol == PortProtocol.UDP else socket.SOCK_STREAM
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ProcessController:
    def __init__(self, task: Task, directory: Path, node: NodeContext) -> None:
        self.task = task
        self.dir = directory
        self.node = node
        self._proc: subprocess.Popen | None = None  # the shim, when this daemon started it
        self._exited: asyncio.Task | None = None
        self._removed = False
        self._attached = False  # put on its networks by this daemon (prepare or wait)
        self.files = TaskFileSet(task, node)  # its secrets and configs

    def update(self, task: Task) -> None:
        self.task = task
        self.files.task = task

    @staticmethod
    def _as_root() -> bool:
        return os.geteuid() == 0

    def _file_env(self) -> dict[str, str]:
        """Where the task finds its files: as root, at the paths a container sees them
        (a private mount namespace shows them there); else in the node's private tmpfs
        directory for the task, which mirrors those paths."""
        task_dir = self.files.task_dir()
        if task_dir is None:
            return {}
        if self._as_root():
            return {SECRETS_DIR_ENV: SECRETS_DIR, CONFIGS_DIR_ENV: "/"}
        return {SECRETS_DIR_ENV: task_dir + SECRETS_DIR, CONFIGS_DIR_ENV: task_dir}

    # --- files in the task directory --------------------------------------------------------

    @property
    def _ports_file(self) -> Path:
        return self.dir / "ports.json"

    def _shim(self) -> dict | None:
        return _read_json(self.dir / "shim.json")

    def _child(self) -> dict | None:
        return _read_json(self.dir / "child.json")

    def _exit(self) -> dict | None:
        return _read_json(self.dir / "exit.json")

    # --- the interface ----------------------------------------------------------------------

    @property
    def _network_file(self) -> Path:
        return self.dir / "network.json"

    def _network(self) -> dict | None:
        """Where the task runs when it is on overlay networks: its namespace and resolver
        file (None for a task in the node's own network)."""
        return _read_json(self._network_file)

    async def _attach_networks(self) -> None:
        """Put the task on its overlay networks (again, after a restart of the daemon: the
        node re-learns its endpoints; what is in the kernel is adopted as it is)."""
        attachments = task_attachments(self.task)
        if not attachments:
            return
        networking = self.node.networking
        if networking is None:
            raise TaskFailed(self.node.no_networking)
        ports = [
            HostPort(str(p.Protocol), p.PublishedPort, p.TargetPort)
            for p in self.port_status() or []
            if p.PublishedPort
        ]
        net = await networking.attach(self.task.ID, attachments, ports=ports)
        resolv = self.dir / "resolv.conf"
        resolv.write_text(resolv_conf_text(net.nameservers))
        _write_json(self._network_file, {"netns": net.netns_path, "resolv_conf": str(resolv)})
        self._attached = True

    async def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self._ports_file.exists():
            ports = []
            for p in (self.task.Endpoint.Ports if self.task.Endpoint else None) or []:
                # A host-mode port is the published port itself, as in Swarm (the scheduler
                # keeps two on one node apart); an ingress port, or a host-mode one published
                # without a number, gets a free port for the routing mesh to forward to.
                fixed = p.PublishMode == PublishMode.HOST and p.PublishedPort
                ports.append(
                    EndpointPortConfig(
                        Protocol=p.Protocol,
                        TargetPort=p.TargetPort,
                        PublishedPort=p.PublishedPort
                        if fixed
                        else _free_port(self.node.addr, p.Protocol),
                        PublishMode=PublishMode.HOST,
                    ).to_json()
                )
            _write_json(self._ports_file, {"Ports": ports})
        # On overlay networks, each published port's host port is forwarded to the task.
        await self._attach_networks()
        argv = self._argv()
        env = self._env()
        if shutil.which(argv[0], path=env.get("PATH")) is None:
            raise TaskFailed(f'exec: "{argv[0]}": executable file not found in $PATH')

    def _argv(self) -> list[str]:
        cs = self.task.Spec.ContainerSpec
        if cs is None:
            raise TaskFailed("task has no command")
        program = list(cs.Command) if cs.Command else ([cs.Image] if cs.Image else [])
        argv = program + list(cs.Args or [])
        if not argv:
            raise TaskFailed("task has no command")
        return argv

    def _env(self) -> dict[str, str]:
        cs = self.task.Spec.ContainerSpec
        assert cs is not None
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        try:
            for item in expand_env(list(cs.Env or []), self.task, self.node):
                name, _, value = item.partition("=")
                env[name] = value
            if cs.Hostname:
                env["HOSTNAME"] = expand(cs.Hostname, self.task, self.node)
        except InvalidArgument as err:
            raise TaskFailed(err.message) from None
        try:
            env.update(self._file_env())
        except TaskFileError as err:
            raise TaskFailed(str(err)) from None
        if task_attachments(self.task):
            # In a namespace of its own, as a container: every address of the task, each
            # port as it is.
            env["HOST"] = "0.0.0.0"
            targets = [
                p.TargetPort
                for p in (self.task.Endpoint.Ports if self.task.Endpoint else None) or []
            ]
            for i, target in enumerate(targets):
                env[f"PORT_{target}"] = str(target)
                if i == 0:
                    env["PORT"] = str(target)
            return env
        env["HOST"] = self.node.addr
        ports = self.port_status() or []
        for i, p in enumerate(ports):
            env[f"PORT_{p.TargetPort}"] = str(p.PublishedPort)
            if i == 0:
                env["PORT"] = str(p.PublishedPort)
        return env

    def _cwd(self) -> str:
        cs = self.task.Spec.ContainerSpec
        if cs is not None and cs.Dir:
            try:
                return expand(cs.Dir, self.task, self.node)
            except InvalidArgument as err:
                raise TaskFailed(err.message) from None
        return str(self.dir)

    def _shim_alive(self) -> bool:
        shim = self._shim()
        return shim is not None and pid_alive(shim["pid"], shim.get("start_time"))

    async def start(self) -> None:
        if self._shim() is not None:
            return  # started before (perhaps by a daemon that has since restarted)
        cs = self.task.Spec.ContainerSpec
        args = [sys.executable, "-m", "shoal.agent.exec.shim", "--dir", str(self.dir)]
        args += ["--cwd", self._cwd()]
        if cs is not None and cs.User:
            args += ["--user", cs.User]
        network = self._network()
        if network is not None:
            args += ["--netns", network["netns"], "--resolv-conf", network["resolv_conf"]]
        try:
            await self.files.write()
            binds = self.files.binds() if self._as_root() else []
        except TaskFileError as err:
            raise TaskFailed(f"starting process failed: {err}") from None
        for source, target in binds:
            args += ["--file", source, target]
        task_dir = self.files.task_dir()
        if binds and task_dir is not None:
            args += ["--files-staging", os.path.join(task_dir, ".root")]
        args += ["--", *self._argv()]
        proc = await asyncio.to_thread(self._spawn_shim, args, self._env())
        self._proc = proc
        # Started means the command runs (or could not be run): wait for the shim to say so.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHIM_START_TIMEOUT
        # The shim writes child.json once the command runs: a file to watch for, not an event.
        while self._child() is None and self._exit() is None:
            if proc.poll() is not None or loop.time() > deadline:
                raise TaskFailed("task: the process supervisor did not start")
            await asyncio.sleep(0.01)
        ex = self._exit()
        if ex is not None and ex.get("error"):
            raise TaskFailed(f"starting process failed: {ex['error']}", ex.get("exit_code"))

    def _spawn_shim(self, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        with open(self.dir / "shim.log", "ab") as errors:  # the shim's own complaints
            proc = subprocess.Popen(
                args,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,
                close_fds=True,
            )
        _write_json(
            self.dir / "shim.json", {"pid": proc.pid, "start_time": proc_start_time(proc.pid)}
        )
        return proc

    def _exit_waiter(self) -> asyncio.Task:
        if self._exited is None or (self._exited.done() and self._exited.cancelled()):
            self._exited = asyncio.ensure_future(self._wait_shim())
        return self._exited

    async def _wait_shim(self) -> None:
        shim = self._shim()
        if shim is None:
            return
        await wait_for_exit(shim["pid"], shim.get("start_time"))
        if self._proc is not None:
            self._proc.wait()  # reap our own child

    async def wait(self) -> None:
        if self._shim() is None:
            raise TaskFailed("task: not started")
        if self._network() is not None and not self._attached:
            await self._attach_networks()  # a restarted daemon picks the task up here
        await asyncio.shield(self._exit_waiter())
        await self.files.remove()  # the task has ended: its secrets go
        ex = self._exit()
        if ex is None:
            raise TaskFailed("task: the process supervisor exited without a status")
        if ex.get("error"):
            raise TaskFailed(f"starting process failed: {ex['error']}", ex.get("exit_code"))
        if ex["exit_code"] != 0:
            raise ExitError(ex["exit_code"])

    def _signal(self, sig: int) -> None:
        child = self._child()
        if child is None or self._exit() is not None:
            return
        if not pid_alive(child["pid"], child.get("start_time")):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child["pid"], sig)

    async def shutdown(self) -> None:
        if self._shim() is None or not self._shim_alive():
            return
        cs = self.task.Spec.ContainerSpec
        grace = (
            cs.StopGracePeriod / SECOND
            if cs is not None and cs.StopGracePeriod is not None
            else DEFAULT_STOP_GRACE
        )
        self._signal(parse_signal(cs.StopSignal if cs else None))
        try:
            await asyncio.wait_for(asyncio.shield(self._exit_waiter()), timeout=grace)
        except TimeoutError:
            await self._kill()
        await self.files.remove()

    async def terminate(self) -> None:
        if self._shim() is None or not self._shim_alive():
            return
        await self._kill()

    async def _kill(self) -> None:
        """SIGKILL the command and wait for its shim to end. A shim still starting has no
        command to kill yet (child.json not written) and would then run it and wait on it:
        kill again until the shim is gone."""
        exited = self._exit_waiter()
        while True:
            self._signal(signal.SIGKILL)
            try:
                await asyncio.wait_for(asyncio.shield(exited), timeout=KILL_RETRY)
                return
            except TimeoutError:
                continue

    async def remove(self) -> None:
        await self.terminate()
        await self.files.remove()
        self._removed = True
        if self._network() is not None and self.node.networking is not None:
            await self.node.networking.detach(self.task.ID)
        await asyncio.to_thread(shutil.rmtree, self.dir, True)

    async def close(self) -> None:
        if self._exited is not None and not self._exited.done():
            self._exited.cancel()

    def container_status(self) -> ContainerStatus | None:
        child = self._child()
        ex = self._exit()
        if child is None and ex is None:
            return None
        return ContainerStatus(
            PID=child["pid"] if child and ex is None else 0,
            ExitCode=ex["exit_code"] if ex else 0,
        )

    def port_status(self) -> list[EndpointPortConfig] | None:
        data = _read_json(self._ports_file)
        if not data or not data["Ports"]:
            return None
        return [EndpointPortConfig.model_validate(p) for p in data["Ports"]]

    def is_running(self) -> bool:
        return self._shim_alive() and self._exit() is None

    # --- logs -------------------------------------------------------------------------------

    def logs(self, options: LogOptions) -> AsyncIterator[LogLine]:
        return read_log(self.dir / "log.json", options, self._log_complete)

    def _log_complete(self) -> bool:
        """Nothing more will be written to the log: the shim wrote the exit status (after
        closing the log), died without writing it, or the task's directory is gone."""
        if self._exit() is not None or self._removed:
            return True
        shim = self._shim()
        return shim is not None and not pid_alive(shim["pid"], shim.get("start_time"))


class ProcessExecutor:
    runtimes = [RUNTIME]

    def __init__(self, state_dir: Path, node: NodeContext) -> None:
        self.dir = state_dir
        self.node = node

    def controller(self, task: Task) -> ProcessController:
        return ProcessController(task, self.dir / task.ID, self.node)

    def log_path(self, task_id: str) -> Path:
        return self.dir / task_id / "log.json"

    def known_tasks(self) -> list[str]:
        """Task IDs with a directory here (running, or stopped but not yet removed)."""
        if not self.dir.exists():
            return []
        return sorted(p.name for p in self.dir.iterdir() if p.is_dir())

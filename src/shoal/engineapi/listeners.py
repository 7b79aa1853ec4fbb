"""Where the API listens, as dockerd's ``-H``: unix sockets and TCP addresses, TCP with TLS
(``--tls``) and with the client's certificate required and verified against a CA
(``--tlsverify``: a client without one from that CA is refused at the handshake)."""

import asyncio
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from shoal.engineapi.api_thread import ApiThread
from shoal.engineapi.engine_proxy import ENGINE
from shoal.engineapi.front import Front
from shoal.engineapi.read_lane import HOME_LOOP, ReadLane

log = logging.getLogger(__name__)

# dockerd's defaults: 2375 for plain TCP, 2376 with TLS; a host left out is localhost.
PLAIN_PORT = 2375
TLS_PORT = 2376
DEFAULT_TCP_HOST = "127.0.0.1"
# dockerd 20.10's warning (cmd/dockerd) for TCP without --tlsverify, word for word.
INSECURE_WARNING = (
    "[!] DON'T BIND ON ANY IP ADDRESS WITHOUT setting --tlsverify IF YOU DON'T KNOW WHAT "
    "YOU'RE DOING [!]"
)


@dataclass(frozen=True)
class Listener:
    """One ``-H``: a unix socket (``path``) or a TCP address (``host``, ``port``)."""

    path: Path | None = None
    host: str = ""
    port: int = 0

    @property
    def url(self) -> str:
        if self.path is not None:
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


def parse_host(value: str, tls: bool, default_socket: Path) -> Listener:
    """A ``-H`` value as dockerd reads it (unix:///path, unix://, tcp://host:port, tcp://:port,
    host:port); Docker's error for one it cannot."""
    text = value.strip()
    if text.startswith("unix://"):
        path = text[len("unix://") :]
        return Listener(path=Path(path) if path else default_socket)
    if text.startswith("fd://") or text.startswith("npipe://"):
        raise ValueError(f"Invalid bind address format: {value}")
    if "://" not in text:
        text = "tcp://" + text
    parts = urlsplit(text)
    if parts.scheme != "tcp" or (parts.path not in ("", "/")):
        raise ValueError(f"Invalid bind address format: {value}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"Invalid bind address format: {value}") from None
    return Listener(
        host=parts.hostname or DEFAULT_TCP_HOST, port=port or (TLS_PORT if tls else PLAIN_PORT)
    )


@dataclass(frozen=True)
class TLSSettings:
    """dockerd's --tlscert, --tlskey, --tlscacert and --tlsverify."""

    cert: Path
    key: Path
    cacert: Path | None = None
    verify: bool = False

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # As dockerd: TLS 1.2 at least.
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        if self.verify:
            if self.cacert is None:
                raise ValueError("--tlsverify needs --tlscacert")
            ctx.load_verify_locations(cafile=str(self.cacert))
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


def default_cert_dir() -> Path:
    """Docker's: $DOCKER_CERT_PATH, else ~/.docker."""
    return Path(os.environ.get("DOCKER_CERT_PATH") or Path.home() / ".docker")


class Serving:
    """The API on its listeners; ``cleanup()`` stops it."""

    def __init__(
        self,
        runner: web.AppRunner,
        front: Front,
        thread: ApiThread | None = None,
        read_runner: web.AppRunner | None = None,
    ) -> None:
        self.runner = runner
        self.front = front
        self.thread = thread
        self.read_runner = read_runner
        self.servers: list[asyncio.Server] = []

    async def cleanup(self) -> None:
        if self.thread is not None:
            await self.thread.run(self._stop_front())
            await self.thread.stop()
        else:
            await self._stop_front()
        await self.runner.cleanup()

    async def _stop_front(self) -> None:
        for server in self.servers:
            server.close()
        await self.front.close()
        if self.read_runner is not None:
            await self.read_runner.cleanup()


async def serve(
    app: web.Application,
    listeners: list[Listener],
    tls: TLSSettings | None,
    read_app: web.Application | None = None,
) -> Serving:
    """Serve ``app`` behind the front (which passes the engine's requests straight to it) on
    every listener; unix sockets are readable only by their owner's group and root (the
    socket is as good as root on the cluster).

    With ``read_app`` (``server.build_read_app``), the listeners and the front run on a thread
    of their own (``api_thread``), where ``read_app`` answers the reads of its routes; ``app``
    answers the rest on this loop."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    server = runner.server
    assert server is not None
    if read_app is None:
        serving = Serving(runner, Front(server, app[ENGINE]))
        try:
            await _listen(serving, listeners, tls)
        except BaseException:
            await serving.cleanup()
            raise
        return serving
    main_loop = asyncio.get_running_loop()
    read_app[HOME_LOOP] = main_loop
    thread = ApiThread()
    thread.start()
    read_runner = web.AppRunner(read_app, access_log=None, handle_signals=False)

    async def start() -> Serving:
        await read_runner.setup()
        assert read_runner.server is not None
        reads = ReadLane(read_routes(read_app), read_runner.server)
        front = Front(server, app[ENGINE], app_loop=main_loop, reads=reads)
        serving = Serving(runner, front, thread, read_runner)
        try:
            await _listen(serving, listeners, tls)
        except BaseException:
            await serving._stop_front()
            raise
        return serving

    try:
        return await thread.run(start())
    except BaseException:
        await thread.stop()
        await runner.cleanup()
        raise


def read_routes(app: web.Application) -> list[tuple[str, str]]:
    """The methods and paths ``app`` answers (its versioned twins left out)."""
    routes = []
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if not path.startswith("/{api_version"):
            routes.append((route.method, path))
    return routes


async def _listen(serving: Serving, listeners: list[Listener], tls: TLSSettings | None) -> None:
    loop = asyncio.get_running_loop()
    protocol = serving.front.protocol
    # TLS is for TCP listeners only (as dockerd: its unix sockets are plain), and its files
    # are read only where there is one.
    tcp = any(listener.path is None for listener in listeners)
    ssl_context = tls.server_context() if tls is not None and tcp else None
    for listener in listeners:
        if listener.path is not None:
            path = listener.path
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() or path.is_symlink():
                path.unlink()
            serving.servers.append(await loop.create_unix_server(protocol, str(path)))
            os.chmod(path, 0o660)
        else:
            if tls is None or not tls.verify:
                log.warning(INSECURE_WARNING)
            serving.servers.append(
                await loop.create_server(protocol, listener.host, listener.port, ssl=ssl_context)
            )
        log.info("API listen on %s", listener.url)

"""A client for the Docker Engine that container tasks run on: the calls the container
runtime makes, over aiodocker, with the engine's own error messages kept intact (they become
the tasks' errors, as in Swarm).

Streams (events, logs, waits) hold a connection each for as long as they last; the client's
connection pool is unbounded so that a node with many containers never starves."""

import asyncio
import json
import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiodocker
import aiohttp

DEFAULT_HOST = "unix:///var/run/docker.sock"

# Docker's multiplexed stream: a header of stream number (1 byte), 3 zero bytes, and the
# payload's length (big-endian uint32), then the payload.
_FRAME_HEADER = struct.Struct(">BxxxL")


class EngineError(Exception):
    """The engine answered with an error; ``message`` is Docker's wording."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


class EngineUnavailable(EngineError):
    """The engine could not be reached at all (not running, socket gone, restarting)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, message)


def engine_host(configured: str | None = None) -> str:
    """Where the engine is: the configured address, else $DOCKER_HOST, else Docker's socket."""
    return configured or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def _error(err: Exception) -> EngineError:
    if isinstance(err, aiodocker.DockerError):
        # aiodocker reports a failed connection as status 900.
        if err.status == 900:
            return EngineUnavailable(str(err.message))
        # Typed as str, but aiodocker passes on the engine's JSON body when it has one.
        message: object = err.message
        if isinstance(message, dict):
            message = message.get("message", json.dumps(message))
        return EngineError(err.status, str(message).strip())
    return EngineUnavailable(str(err) or type(err).__name__)


_TRANSPORT_ERRORS = (aiodocker.DockerError, aiohttp.ClientError, OSError)


class Engine:
    def __init__(self, host: str | None = None) -> None:
        self.host = engine_host(host)
        self._docker: aiodocker.Docker | None = None
        self._connector: aiohttp.BaseConnector | None = None

    @property
    def is_local(self) -> bool:
        """The engine runs on this machine (its paths are ours: bind mount sources)."""
        return self.host.startswith("unix://")

    def _client(self) -> aiodocker.Docker:
        if self._docker is None:
            if self.is_local:
                self._connector = aiohttp.UnixConnector(self.host[len("unix://") :], limit=0)
                # With a connector of our own, the URL only names the host in requests.
                self._docker = aiodocker.Docker(url="unix://localhost", connector=self._connector)
            else:
                self._docker = aiodocker.Docker(url=self.host)
        return self._docker

    async def close(self) -> None:
        if self._docker is not None:
            await self._docker.close()
            self._docker = None
        if self._connector is not None:
            await self._connector.close()
            self._connector = None

    async def _json(self, path: str, method: str = "GET", **kwargs: Any) -> Any:
        try:
            return await self._client()._query_json(path, method, **kwargs)
        except _TRANSPORT_ERRORS as err:
            raise _error(err) from None

    async def _call(self, path: str, method: str = "POST", **kwargs: Any) -> None:
        try:
            async with self._client()._query(path, method, **kwargs) as resp:
                await resp.read()
        except _TRANSPORT_ERRORS as err:
            raise _error(err) from None

    # --- the engine -------------------------------------------------------------------------

    async def ping(self) -> None:
        await self._call("_ping", "GET", versioned_api=False)

    async def info(self) -> dict[str, Any]:
        return await self._json("info")

    # --- images and volumes -----------------------------------------------------------------

    async def image_exists(self, ref: str) -> bool:
        try:
            await self._json(f"images/{ref}/json")
        except EngineError as err:
            if err.not_found:
                return False
            raise
        return True

    async def pull(self, ref: str) -> None:
        """Pull an image; the error the engine streams back, if any, is raised."""
        name, tag = split_tag(ref)
        params = {"fromImage": name}
        if tag:
            params["tag"] = tag
        try:
            async with self._client()._query("images/create", "POST", params=params) as resp:
                async for raw in resp.content:
                    line = raw.strip()
                    if not line:
                        continue
                    try:
                        msg = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(msg, dict) and msg.get("error"):
                        raise EngineError(0, str(msg["error"]).strip())
        except _TRANSPORT_ERRORS as err:
            raise _error(err) from None

    async def create_volume(self, body: dict[str, Any]) -> None:
        await self._json("volumes/create", "POST", data=body)

    # --- containers -------------------------------------------------------------------------

    async def create_container(self, name: str, body: dict[str, Any]) -> str:
        data = await self._json("containers/create", "POST", params={"name": name}, data=body)
        return data["Id"]

    async def start(self, ref: str) -> None:
        await self._call(f"containers/{ref}/start")

    async def inspect(self, ref: str) -> dict[str, Any]:
        return await self._json(f"containers/{ref}/json")

    async def wait(self, ref: str) -> int:
        """Wait until the container is not running; its exit code."""
        data = await self._json(
            f"containers/{ref}/wait",
            "POST",
            params={"condition": "not-running"},
            timeout=aiohttp.ClientTimeout(),
        )
        return int(data.get("StatusCode", 0))

    async def stop(self, ref: str, grace: int | None = None) -> None:
        """Send the stop signal; the engine kills the container ``grace`` seconds later
        (None: the container's own stop timeout)."""
        params = {"t": grace} if grace is not None else {}
        await self._call(f"containers/{ref}/stop", params=params, timeout=aiohttp.ClientTimeout())

    async def kill(self, ref: str, signal: str = "SIGKILL") -> None:
        await self._call(f"containers/{ref}/kill", params={"signal": signal})

    async def remove(self, ref: str) -> None:
        await self._call(f"containers/{ref}", "DELETE", params={"force": True, "v": True})

    # --- networks ---------------------------------------------------------------------------

    async def network(self, ref: str) -> dict[str, Any]:
        return await self._json(f"networks/{ref}")

    async def networks(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        return await self._json("networks", params={"filters": json.dumps(filters)})

    async def create_network(self, body: dict[str, Any]) -> str:
        data = await self._json("networks/create", "POST", data=body)
        return data["Id"]

    async def connect_network(self, ref: str, body: dict[str, Any]) -> None:
        await self._json(f"networks/{ref}/connect", "POST", data=body)

    async def remove_network(self, ref: str) -> None:
        await self._call(f"networks/{ref}", "DELETE")

    async def containers(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Every container (running or not) carrying all these labels."""
        wanted = [f"{k}={v}" if v else k for k, v in labels.items()]
        return await self._json(
            "containers/json",
            params={"all": True, "filters": json.dumps({"label": wanted})},
        )

    @asynccontextmanager
    async def events(self, filters: dict[str, list[str]]) -> AsyncIterator[AsyncIterator[dict]]:
        """Subscribe to the engine's events. The subscription is in place once this is
        entered (the engine answers only after subscribing), so nothing that happens after
        is missed."""
        try:
            async with self._client()._query(
                "events",
                "GET",
                params={"filters": json.dumps(filters)},
                timeout=aiohttp.ClientTimeout(),
            ) as resp:
                yield _event_messages(resp)
        except _TRANSPORT_ERRORS as err:
            raise _error(err) from None

    async def logs(
        self, ref: str, params: dict[str, Any], tty: bool
    ) -> AsyncIterator[tuple[int, bytes]]:
        """The container's log as (stream number, payload) pairs: 1 stdout, 2 stderr. A TTY
        container's log is one stream with no framing; it comes out as stdout, line by line."""
        try:
            async with self._client()._query(
                f"containers/{ref}/logs", "GET", params=params, timeout=aiohttp.ClientTimeout()
            ) as resp:
                if tty:
                    async for line in resp.content:
                        yield 1, line
                    return
                while True:
                    try:
                        header = await resp.content.readexactly(_FRAME_HEADER.size)
                    except asyncio.IncompleteReadError as err:
                        if err.partial:
                            raise EngineUnavailable("log stream cut short") from None
                        return
                    stream, length = _FRAME_HEADER.unpack(header)
                    payload = await resp.content.readexactly(length) if length else b""
                    yield stream, payload
        except asyncio.IncompleteReadError:
            raise EngineUnavailable("log stream cut short") from None
        except _TRANSPORT_ERRORS as err:
            raise _error(err) from None


async def _event_messages(resp: aiohttp.ClientResponse) -> AsyncIterator[dict]:
    try:
        async for raw in resp.content:
            if raw.strip():
                yield json.loads(raw)
    except (aiohttp.ClientError, OSError) as err:
        raise _error(err) from None


def split_tag(ref: str) -> tuple[str, str]:
    """``name[:tag][@digest]`` into what the pull API takes: (name, tag or digest)."""
    if "@" in ref:
        name, _, digest = ref.partition("@")
        return name, digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, ""

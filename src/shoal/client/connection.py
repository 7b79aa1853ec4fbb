"""A connection to a shoal daemon's Docker Engine API (a unix socket or TCP), and requests whose
errors come back as Docker prints them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    import aiohttp


class APIError(Exception):
    """The daemon refused: printed as "Error response from daemon: <message>"."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return f"Error response from daemon: {self.message}"


class ConnectError(Exception):
    pass


def filters_param(filters: dict[str, list[str]]) -> str:
    """Docker's filters query parameter: {"name": {"web": true}} (the map form every daemon
    version understands)."""
    return json.dumps({k: dict.fromkeys(v, True) for k, v in filters.items()})


def _connection_error() -> type[Exception]:
    import aiohttp  # loaded by then: the session that raised it imported it

    return aiohttp.ClientConnectionError


class Client:
    def __init__(self, host: str) -> None:
        self.host = host
        if host.startswith("unix://"):
            self._socket: str | None = host[len("unix://") :]
            self._base = "http://shoal"
        elif host.startswith(("tcp://", "http://")):
            self._socket = None
            self._base = "http://" + host.split("://", 1)[1]
        elif host.startswith("/"):
            self._socket = host
            self.host = "unix://" + host
            self._base = "http://shoal"
        else:
            raise ConnectError(f"unable to parse docker host `{host}`")
        self._session: aiohttp.ClientSession | None = None

    def _connect_error(self) -> ConnectError:
        return ConnectError(
            f"Cannot connect to the shoal daemon at {self.host}. Is the shoal daemon running?"
        )

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Imported on the first request, not with the module: a CLI call that never reaches
            # the daemon (--help, a usage error) is spared aiohttp's start-up.
            import aiohttp

            connector = (
                aiohttp.UnixConnector(path=self._socket) if self._socket else aiohttp.TCPConnector()
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def url(self, path: str) -> str:
        return self._base + path

    async def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        try:
            async with self.session.request(
                method,
                self.url(path),
                params=_clean(params),
                data=None if body is None else json.dumps(body),
                headers={"Content-Type": "application/json", **(headers or {})},
            ) as resp:
                text = await resp.text()
                return self._decode(resp.status, text)
        except (_connection_error(), FileNotFoundError, ConnectionRefusedError) as err:
            raise self._connect_error() from err

    async def stream(
        self, path: str, params: dict[str, Any] | None = None
    ) -> aiohttp.ClientResponse:
        """A streaming GET (logs); the caller reads and releases the response."""
        try:
            resp = await self.session.get(self.url(path), params=_clean(params))
        except (_connection_error(), FileNotFoundError, ConnectionRefusedError) as err:
            raise self._connect_error() from err
        if resp.status >= 400:
            text = await resp.text()
            resp.release()
            self._decode(resp.status, text)
        return resp

    @staticmethod
    def _decode(status: int, text: str) -> Any:
        data: Any = None
        if text.strip():
            try:
                data = json.loads(text)
            except ValueError:
                data = text
        if status >= 400:
            message = data.get("message") if isinstance(data, dict) else None
            raise APIError(status, message if message is not None else str(data or "").strip())
        return data

    # --- the calls the commands make ------------------------------------------------------

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params)

    async def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return await self.request("POST", path, params, body if body is not None else {})

    async def delete(self, path: str, **params: Any) -> Any:
        return await self.request("DELETE", path, params)

    async def info(self) -> dict:
        return await self.get("/info")

    async def node(self, ref: str) -> dict:
        return await self.get(f"/nodes/{quote(ref, safe='')}")

    async def nodes(self, filters: dict[str, list[str]] | None = None) -> list[dict]:
        params = {"filters": filters_param(filters)} if filters else None
        return await self.request("GET", "/nodes", params)

    async def service(self, ref: str) -> dict:
        return await self.get(f"/services/{quote(ref, safe='')}", insertDefaults="true")

    async def services(
        self, filters: dict[str, list[str]] | None = None, status: bool = False
    ) -> list[dict]:
        params: dict[str, Any] = {}
        if filters:
            params["filters"] = filters_param(filters)
        if status:
            params["status"] = "true"
        return await self.request("GET", "/services", params)

    async def tasks(self, filters: dict[str, list[str]] | None = None) -> list[dict]:
        params = {"filters": filters_param(filters)} if filters else None
        return await self.request("GET", "/tasks", params)


def _clean(params: dict[str, Any] | None) -> dict[str, str] | None:
    if not params:
        return None
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out

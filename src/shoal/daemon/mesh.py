"""A node's part of the routing mesh: the data path publishing every ingress port on this
node's address, kept converged to the table its manager session last sent."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from shoal.clock import Clock
from shoal.network.datapath import DataPath, MeshConfig
from shoal.network.routing import RoutingTable
from shoal.network.select import choose_data_path

log = logging.getLogger(__name__)


class NodeMesh:
    def __init__(self, config: MeshConfig, node_id: str, clock: Clock) -> None:
        # Several nodes may share one network namespace (a local cluster): each its own table.
        config.nft_table = f"shoal_{node_id[:12]}"
        config.clock = clock
        self.config = config
        self.data_path: DataPath | None = None
        self._wanted: RoutingTable | None = None
        self._changed = asyncio.Event()
        self._runner: asyncio.Task | None = None

    @property
    def name(self) -> str:
        return self.data_path.name if self.data_path is not None else ""

    async def start(self) -> None:
        self.data_path = await choose_data_path(self.config)
        await self.data_path.start()
        log.info("routing mesh: %s data path (%s)", self.data_path.name, self.data_path.reason)
        self._runner = asyncio.create_task(self._converge(), name="routing mesh")

    def offer(self, table_json: list) -> None:
        """The managers' latest table; only the newest is applied."""
        try:
            self._wanted = RoutingTable.from_json(table_json)
        except (ValueError, KeyError, TypeError):
            log.exception("routing mesh: unreadable table")
            return
        self._changed.set()

    async def _converge(self) -> None:
        assert self.data_path is not None
        while True:
            await self._changed.wait()
            self._changed.clear()
            table = self._wanted
            if table is None:
                continue
            try:
                await self.data_path.apply(table)
            except Exception:
                log.exception("routing mesh: applying the table failed")
            if self.data_path.errors:
                log.warning("routing mesh: ports not served: %s", self.data_path.errors)

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        if self.data_path is not None:
            await self.data_path.stop()
            self.data_path = None

"""Durability for a single manager: a write-ahead log of proposals plus periodic snapshots.

Each proposal is appended as one JSON line and fsynced before it is applied, so an
acknowledged write survives a crash. Every ``snapshot_interval`` proposals the whole store is
written to ``snapshot.json`` (atomically) and the log is started anew. Raft replaces this
proposer when managers replicate; the store does not change.
"""

import asyncio
import json
import os
from pathlib import Path

from shoal.store.memory import MemoryStore
from shoal.store.proposal import Proposal


class LocalLog:
    def __init__(self, store: MemoryStore, directory: Path, snapshot_interval: int = 10000):
        self._store = store
        self._dir = directory
        self._snapshot_interval = snapshot_interval
        self._since_snapshot = 0
        self._wal: int | None = None

    @property
    def snapshot_path(self) -> Path:
        return self._dir / "snapshot.json"

    @property
    def wal_path(self) -> Path:
        return self._dir / "wal.jsonl"

    def load(self) -> None:
        """Restore the store from the snapshot and replay the log after it."""
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.snapshot_path.exists():
            self._store.restore(json.loads(self.snapshot_path.read_text()))
        if self.wal_path.exists():
            with self.wal_path.open("rb") as f:
                for line in f:
                    try:
                        data = json.loads(line)
                    except json.JSONDecodeError:
                        break  # a torn last line: it was never acknowledged
                    proposal = Proposal.decode(data)
                    if proposal.version > self._store.version:
                        self._store.apply(proposal)
                        self._since_snapshot += 1
        self._open_wal()

    def _open_wal(self) -> None:
        if self._wal is not None:
            os.close(self._wal)
        self._wal = os.open(self.wal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def _append(self, line: bytes) -> None:
        assert self._wal is not None
        os.write(self._wal, line)
        os.fsync(self._wal)

    async def propose(self, proposal: Proposal) -> None:
        line = (json.dumps(proposal.encode(), separators=(",", ":")) + "\n").encode()
        await asyncio.to_thread(self._append, line)
        self._store.apply(proposal)
        self._since_snapshot += 1
        if self._since_snapshot >= self._snapshot_interval:
            await asyncio.to_thread(self._write_snapshot, self._store.snapshot())

    def _write_snapshot(self, data: dict) -> None:
        tmp = self.snapshot_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.snapshot_path)
        # Everything in the log is now in the snapshot.
        assert self._wal is not None
        os.ftruncate(self._wal, 0)
        os.fsync(self._wal)
        self._since_snapshot = 0

    def close(self) -> None:
        if self._wal is not None:
            os.close(self._wal)
            self._wal = None

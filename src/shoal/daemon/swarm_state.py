"""What a node remembers about its swarm membership across restarts (like Docker's
``swarm/docker-state.json`` and ``swarm/state.json``), and its certificates."""

import json
import os
from pathlib import Path

from pydantic import BaseModel, Field

from shoal.api.types import NodeRole


class SwarmState(BaseModel):
    NodeID: str
    ClusterID: str = ""
    Role: NodeRole = NodeRole.WORKER
    ListenAddr: str = ""
    AdvertiseAddr: str = ""  # host:port
    RemoteManagers: list[str] = Field(default_factory=list)  # host:port of managers


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically, readable by the owner only (keys and state are secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class SwarmDir:
    """``<state-dir>/swarm``: state.json, certificates/, manager/ (raft or log), worker/."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "swarm"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def certificates(self) -> Path:
        return self.root / "certificates"

    @property
    def manager_dir(self) -> Path:
        return self.root / "manager"

    @property
    def worker_dir(self) -> Path:
        return self.root / "worker"

    def load(self) -> SwarmState | None:
        if not self.state_file.exists():
            return None
        return SwarmState.model_validate(json.loads(self.state_file.read_text()))

    def save(self, state: SwarmState) -> None:
        _write_private(self.state_file, state.model_dump_json(indent=2).encode())

    def save_certificates(self, key: bytes, cert: bytes, ca: bytes) -> None:
        _write_private(self.certificates / "swarm-node.key", key)
        _write_private(self.certificates / "swarm-node.crt", cert)
        _write_private(self.certificates / "swarm-root-ca.crt", ca)

    def load_certificates(self) -> tuple[bytes, bytes, bytes] | None:
        d = self.certificates
        try:
            return (
                (d / "swarm-node.key").read_bytes(),
                (d / "swarm-node.crt").read_bytes(),
                (d / "swarm-root-ca.crt").read_bytes(),
            )
        except FileNotFoundError:
            return None

    def clear(self) -> None:
        """Forget the swarm (``swarm leave``)."""
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)

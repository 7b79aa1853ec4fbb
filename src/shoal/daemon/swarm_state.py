"""What a node remembers about its swarm membership across restarts (like Docker's
``swarm/docker-state.json`` and ``swarm/state.json``), and its certificates."""

import json
from pathlib import Path

from pydantic import BaseModel, Field

from shoal.api.types import NodeRole
from shoal.paths import write_private


class SwarmState(BaseModel):
    NodeID: str
    ClusterID: str = ""
    Role: NodeRole = NodeRole.WORKER
    ListenAddr: str = ""
    AdvertiseAddr: str = ""  # host:port
    RemoteManagers: list[str] = Field(default_factory=list)  # host:port of managers


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
        write_private(self.state_file, state.model_dump_json(indent=2).encode())

    def save_certificates(self, key: bytes, cert: bytes, ca: bytes) -> None:
        write_private(self.certificates / "swarm-node.key", key)
        write_private(self.certificates / "swarm-node.crt", cert)
        write_private(self.certificates / "swarm-root-ca.crt", ca)

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

"""What a node remembers about its swarm membership across restarts (like Docker's
``swarm/docker-state.json`` and ``swarm/state.json``), and its certificates."""

import json
from pathlib import Path

from pydantic import BaseModel, Field

from shoal.api.types import NodeRole
from shoal.ca import sealed_key
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

    @property
    def node_key_file(self) -> Path:
        return self.certificates / "swarm-node.key"

    def save_certificates(
        self, key: bytes, cert: bytes, ca: bytes, kek: bytes | None = None
    ) -> None:
        """``key`` is the plain key; with ``kek`` (autolock, on a manager) it is written
        sealed under it."""
        self.save_node_key(key, kek)
        write_private(self.certificates / "swarm-node.crt", cert)
        write_private(self.certificates / "swarm-root-ca.crt", ca)

    def save_node_key(self, key: bytes, kek: bytes | None) -> None:
        write_private(self.node_key_file, sealed_key.stored_form(key, kek))

    def load_certificates(self, kek: bytes | None = None) -> tuple[bytes, bytes, bytes] | None:
        """The plain key, the certificate and the roots. A sealed key needs ``kek``:
        sealed_key.KeySealed without it, WrongKEK when it does not open."""
        d = self.certificates
        try:
            key = self.node_key_file.read_bytes()
            cert = (d / "swarm-node.crt").read_bytes()
            ca = (d / "swarm-root-ca.crt").read_bytes()
        except FileNotFoundError:
            return None
        return sealed_key.unseal(key, kek), cert, ca

    # --- autolock's handover from one unlock key to the next -------------------------------

    @property
    def previous_kek_file(self) -> Path:
        return self.certificates / "swarm-previous-kek"

    def save_previous_kek(self, previous: bytes, kek: bytes) -> None:
        """While a manager moves its keys from ``previous`` to ``kek``: ``previous``, sealed
        under ``kek``, so that ``kek`` opens what was not moved yet if it stops midway."""
        write_private(self.previous_kek_file, sealed_key.seal_secret(previous, kek))

    def load_previous_kek(self, kek: bytes) -> bytes | None:
        """The previous unlock key that ``kek`` opens (None: no handover under way, or not
        one ``kek`` opens)."""
        try:
            return sealed_key.open_secret(self.previous_kek_file.read_bytes(), kek)
        except (FileNotFoundError, sealed_key.WrongKEK):
            return None

    def forget_previous_kek(self) -> None:
        self.previous_kek_file.unlink(missing_ok=True)

    def node_key_sealed(self) -> bool:
        try:
            return sealed_key.is_sealed(self.node_key_file.read_bytes())
        except FileNotFoundError:
            return False

    def clear(self) -> None:
        """Forget the swarm (``swarm leave``)."""
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)

"""Default locations, shared by the daemon and the CLI (like dockerd's /var/lib/docker and
/var/run/docker.sock; per-user places when not root, like rootless Docker)."""

import os
from pathlib import Path

DEFAULT_PORT = 2377


def _is_root() -> bool:
    return os.geteuid() == 0


def default_state_dir() -> Path:
    if _is_root():
        return Path("/var/lib/shoal")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "shoal"


def default_socket() -> Path:
    if _is_root():
        return Path("/var/run/shoal.sock")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "shoal.sock"
    return default_state_dir() / "shoal.sock"


def config_dir() -> Path:
    """The CLI's own settings (like ~/.docker): which daemon to talk to by default."""
    own = os.environ.get("SHOAL_CONFIG")
    if own:
        return Path(own)
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "shoal"


def write_private(path: Path, data: bytes) -> None:
    """Write atomically, readable by the owner only (keys and state are secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)

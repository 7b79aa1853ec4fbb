"""Putting a process task into its network namespace, with its own view of /etc/resolv.conf.

Called by the task's shim before it starts the command, so the command and everything it
starts inherit both. A private mount namespace (mounts made in it are seen by nobody else)
carries the resolver file bound over /etc/resolv.conf, as ``ip netns exec`` does with
/etc/netns/NAME; the network namespace is entered with setns. Python 3.11 has neither
``os.unshare`` nor ``os.setns``, hence ctypes on libc.
"""

import ctypes
import ctypes.util
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 1 << 19

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, flags: int) -> None:
    _check(
        _libc.mount(
            source.encode() if source is not None else None, target.encode(), None, flags, None
        ),
        f"mount {target}",
    )


def private_mounts() -> None:
    """A mount namespace of our own: mounts made from here on stay in it, whatever /
    propagates."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _mount(None, "/", MS_REC | MS_SLAVE)


def enter(netns_path: str, resolv_conf: str | None, unshared: bool = False) -> None:
    """Join the network namespace at ``netns_path``; with ``resolv_conf``, see that file as
    /etc/resolv.conf (in a mount namespace of our own; ``unshared``: already in one)."""
    if resolv_conf is not None:
        if not unshared:
            private_mounts()
        _mount(resolv_conf, "/etc/resolv.conf", MS_BIND)
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {netns_path}")
    finally:
        os.close(fd)


def resolv_conf_text(nameservers: list[str], search: list[str] | None = None) -> str:
    """A task's /etc/resolv.conf: its node's resolver for the task's networks, and ndots:0 as
    Docker writes it for containers on swarm networks (a bare name is tried as it is)."""
    lines = [f"nameserver {ns}" for ns in nameservers]
    if search:
        lines.append("search " + " ".join(search))
    lines.append("options ndots:0")
    return "\n".join(lines) + "\n"


MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MNT_DETACH = 0x2


def mount_tmpfs(target: str, options: str) -> None:
    """A fresh tmpfs at ``target`` (nosuid, nodev, noexec): memory only, never on disk."""
    _check(
        _libc.mount(
            b"tmpfs",
            target.encode(),
            b"tmpfs",
            MS_NOSUID | MS_NODEV | MS_NOEXEC,
            options.encode(),
        ),
        f"mount tmpfs on {target}",
    )


def unmount(target: str) -> None:
    """Detach the mount at ``target`` (lazily: what still uses it keeps it until done)."""
    _check(_libc.umount2(target.encode(), MNT_DETACH), f"unmount {target}")

"""Showing a process task its secret and config files at the paths a container would see
them (/run/secrets/<name>, /<config>...), read-only, without changing the host's own tree.

Called by the task's shim in a private mount namespace (root only). Each file is bound over
its target. Where a target's directory lacks an entry (no /run/secrets on the host), that
directory is shadowed in the namespace: a tmpfs over it holding binds of everything it had,
plus what the task needs. A new entry in / itself shadows the whole root in a tmpfs the
shim then chroots into. Nothing is created outside the namespace but under the node's own
task directory (``staging``)."""

import errno
import os
import stat

from shoal.agent.exec.isolation import (
    MS_BIND,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    _mount,
    mount_tmpfs,
    unmount,
)


def _populate(target: str, source_dir_fd: int) -> None:
    """Fill the (fresh, empty) directory ``target`` with binds of every entry of the directory
    open at ``source_dir_fd``, as it was before anything covered it."""
    for name in os.listdir(source_dir_fd):
        source = f"/proc/self/fd/{source_dir_fd}/{name}"
        dest = os.path.join(target, name)
        st = os.lstat(source)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(source), dest)
        elif stat.S_ISDIR(st.st_mode):
            os.mkdir(dest, stat.S_IMODE(st.st_mode))
            _mount(source, dest, MS_BIND | MS_REC)
        else:
            os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
            _mount(source, dest, MS_BIND)


def _tmpfs_like(path: str, st: os.stat_result) -> None:
    mode = stat.S_IMODE(st.st_mode)
    mount_tmpfs(path, f"mode={mode:o},uid={st.st_uid},gid={st.st_gid}")


def _shadow(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _tmpfs_like(directory, os.fstat(fd))
        _populate(directory, fd)
    finally:
        os.close(fd)


def _shadow_root(staging: str) -> None:
    """A copy of / on a tmpfs at ``staging`` (binds of all it holds), then chroot into it."""
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.makedirs(staging, mode=0o700, exist_ok=True)
        _tmpfs_like(staging, os.fstat(fd))
        _populate(staging, fd)
    finally:
        os.close(fd)
    # Binding the directory that holds ``staging`` copied the staging tmpfs into itself.
    nested = os.path.join(staging, staging.lstrip("/"))
    if os.path.ismount(nested):
        unmount(nested)
    os.chroot(staging)
    os.chdir("/")


def _first_missing(path: str) -> str | None:
    """The directory that would get a new entry for ``path`` to exist: the deepest existing
    ancestor of ``path`` (None if ``path`` exists)."""
    if os.path.lexists(path):
        return None
    parent = os.path.dirname(path)
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    return parent


def place_files(binds: list[tuple[str, str]], staging: str) -> None:
    """Show each ``(source, target)``: the node's file at ``target``, read-only."""
    ours: set[str] = set()  # directories on a tmpfs of ours: free to add entries to
    if any(_first_missing(target) == "/" for _, target in binds):
        _shadow_root(staging)
        ours.add("/")
    for source, target in binds:
        parent = os.path.dirname(target)
        _ensure_dir(parent, ours)
        if not os.path.lexists(target):
            if parent not in ours:
                _shadow(parent)
                ours.add(parent)
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        elif os.path.isdir(target):
            raise OSError(errno.EISDIR, f"{target}: is a directory")
        _mount(source, target, MS_BIND)
        _mount(None, target, MS_BIND | MS_REMOUNT | MS_RDONLY)


def _ensure_dir(path: str, ours: set[str]) -> None:
    if os.path.isdir(path):
        return
    if os.path.lexists(path):
        raise OSError(errno.ENOTDIR, f"{path}: not a directory")
    parent = os.path.dirname(path)
    _ensure_dir(parent, ours)
    if parent not in ours:
        _shadow(parent)
        ours.add(parent)
    os.mkdir(path, 0o755)
    ours.add(path)

"""The Docker Engine the container tests use, and the image they run.

No registry is reachable where the tests run, so the image is made here: a root filesystem
holding a static busybox (Debian's busybox-static) and its applets, imported into the engine
as ``shoal-test/busybox:latest``.

    python -m tests.docker.testimage ping    # exit 0 when the engine answers
    python -m tests.docker.testimage build   # import the image unless the engine has it
"""

import http.client
import io
import json
import os
import socket
import struct
import subprocess
import sys
import tarfile
import urllib.parse

IMAGE = "shoal-test/busybox:latest"
BUSYBOX = "/bin/busybox"
DEFAULT_HOST = "unix:///var/run/docker.sock"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def engine_host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def _connection(timeout: float) -> http.client.HTTPConnection:
    host = engine_host()
    if host.startswith("unix://"):
        return _UnixConnection(host[len("unix://") :], timeout)
    parsed = urllib.parse.urlparse(host.replace("tcp://", "http://", 1))
    return http.client.HTTPConnection(
        parsed.hostname or "localhost", parsed.port or 2375, timeout=timeout
    )


def request(
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = 10,
) -> tuple[int, bytes]:
    conn = _connection(timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def unreachable_reason() -> str | None:
    """None if the engine answers; else why not, in a sentence for a skip message."""
    try:
        status, body = request("GET", "/_ping", timeout=5)
    except OSError as err:
        return f"no Docker Engine reachable at {engine_host()} ({err})"
    if status != 200:
        return f"the Docker Engine at {engine_host()} answered /_ping with {status}: {body[:200]!r}"
    return None


def image_present(name: str = IMAGE) -> bool:
    status, _ = request("GET", f"/images/{name}/json")
    return status == 200


def _is_static(path: str) -> bool:
    """An ELF executable with no program interpreter (PT_INTERP) is statically linked."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only, as Debian's amd64/arm64
            return False
        endian = "<" if head[5] == 1 else ">"
        (phoff,) = struct.unpack_from(endian + "Q", head, 0x20)
        phentsize, phnum = struct.unpack_from(endian + "HH", head, 0x36)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            (ptype,) = struct.unpack(endian + "I", f.read(4))
            if ptype == 3:
                return False
    return True


def rootfs_tar(busybox: str = BUSYBOX) -> bytes:
    applets = subprocess.run(
        [busybox, "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))

        for d in ("bin", "etc", "root", "var", "usr", "usr/bin", "sbin"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        with open(busybox, "rb") as f:
            add_file("bin/busybox", f.read(), 0o755)
        for applet in applets:
            if applet == "busybox":
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        add_file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    return buf.getvalue()


def build(name: str = IMAGE) -> None:
    """Import the test image into the engine, unless it has it already."""
    if image_present(name):
        return
    if not os.path.exists(BUSYBOX) or not _is_static(BUSYBOX):
        raise RuntimeError(f"{BUSYBOX} is missing or not statically linked: install busybox-static")
    repo, _, tag = name.rpartition(":")
    query = [("fromSrc", "-"), ("repo", repo), ("tag", tag)]
    query += [("changes", PATH_ENV.join(["ENV ", ""])), ("changes", 'CMD ["sh"]')]
    status, body = request(
        "POST",
        "/images/create?" + urllib.parse.urlencode(query),
        body=rootfs_tar(),
        headers={"Content-Type": "application/x-tar"},
        timeout=120,
    )
    errors = []
    for line in body.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict) and msg.get("error"):
            errors.append(msg["error"])
    if status != 200 or errors:
        raise RuntimeError(f"importing {name} failed ({status}): {errors or body[:300]!r}")


def main(argv: list[str]) -> int:
    if argv[1:] == ["ping"]:
        reason = unreachable_reason()
        if reason:
            print(reason, file=sys.stderr)
            return 1
        return 0
    if argv[1:] == ["build"]:
        build()
        print(f"test image {IMAGE} ready")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

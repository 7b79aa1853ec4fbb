"""The supervisor of one process task: ``python -m shoal.agent.exec.shim --dir D -- ARGV``.

It starts the command in its own process group, records the command's pid, copies its
stdout and stderr into ``D/log.json`` as JSON lines (Docker's json-file format), waits, and
writes the exit code to ``D/exit.json``. It runs in a session of its own, so the node daemon
can die and restart while the task goes on, and the restarted daemon still learns how the
task ended. It ignores the signals a terminal or a dying parent would send it: stopping the
task is done by signalling the command's process group.
"""

import argparse
import datetime as dt
import json
import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path

from shoal.agent.exec import file_mounts, isolation


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def proc_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat): with
    the pid, it names one process even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def _timestamp() -> str:
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000Z"


class LogWriter:
    """JSON lines, one per line of output, split at 16 KiB like Docker's json-file driver."""

    MAX_LINE = 16 * 1024

    def __init__(self, path: Path) -> None:
        self._file = open(path, "a", buffering=1)  # lives as long as the shim
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def feed(self, stream: str, data: bytes) -> None:
        buf = self._partial[stream] + data
        while True:
            nl = buf.find(b"\n")
            if nl < 0 and len(buf) < self.MAX_LINE:
                break
            cut = nl + 1 if 0 <= nl < self.MAX_LINE else self.MAX_LINE
            self._emit(stream, buf[:cut])
            buf = buf[cut:]
        self._partial[stream] = buf

    def flush(self, stream: str) -> None:
        if self._partial[stream]:
            self._emit(stream, self._partial[stream])
            self._partial[stream] = b""

    def _emit(self, stream: str, line: bytes) -> None:
        record = {"log": line.decode("utf-8", "replace"), "stream": stream, "time": _timestamp()}
        self._file.write(json.dumps(record) + "\n")

    def close(self) -> None:
        self._file.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="shoal-shim")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--cwd", default=None)
    parser.add_argument("--user", default=None)
    parser.add_argument("--netns", default=None, help="the task's network namespace")
    parser.add_argument("--resolv-conf", default=None, help="seen as /etc/resolv.conf")
    parser.add_argument(
        "--file",
        nargs=2,
        action="append",
        default=[],
        metavar=("SOURCE", "TARGET"),
        help="a node file the command sees, read-only, at TARGET",
    )
    parser.add_argument("--files-staging", default=None, help="where to build a shadow root")
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    task_dir: Path = args.dir
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)

    log = LogWriter(task_dir / "log.json")
    if args.file:
        try:
            isolation.private_mounts()
            if not args.files_staging:
                raise OSError("--files-staging is needed with --file")
            file_mounts.place_files([(s, t) for s, t in args.file], args.files_staging)
        except OSError as err:
            log.close()
            write_json(task_dir / "exit.json", {"exit_code": 126, "error": str(err)})
            return 0
    if args.netns:
        try:
            isolation.enter(args.netns, args.resolv_conf, unshared=bool(args.file))
        except OSError as err:
            log.close()
            write_json(task_dir / "exit.json", {"exit_code": 126, "error": str(err)})
            return 0
    user, group = None, None
    if args.user:
        user, _, group = args.user.partition(":")
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=args.cwd,
            process_group=0,
            user=user or None,
            group=group or None,
            # The command must not inherit our ignored signals.
            restore_signals=True,
            preexec_fn=lambda: [
                signal.signal(s, signal.SIG_DFL) for s in (signal.SIGTERM, signal.SIGINT)
            ],
        )
    except (OSError, ValueError, KeyError) as err:
        log.close()
        code = 127 if isinstance(err, FileNotFoundError) else 126
        write_json(task_dir / "exit.json", {"exit_code": code, "error": str(err)})
        return 0
    write_json(task_dir / "child.json", {"pid": proc.pid, "start_time": proc_start_time(proc.pid)})

    sel = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    open_streams = 2
    while open_streams:
        for key, _ in sel.select(timeout=0.5):
            data = os.read(key.fd, 65536)
            if data:
                log.feed(key.data, data)
            else:
                log.flush(key.data)
                sel.unregister(key.fileobj)
                open_streams -= 1
        if open_streams and proc.poll() is not None:
            # The command exited but something it started still holds its output open:
            # take what is there now and stop listening.
            while ready := sel.select(timeout=0):
                progressed = False
                for key, _ in ready:
                    data = os.read(key.fd, 65536)
                    if data:
                        log.feed(key.data, data)
                        progressed = True
                    else:
                        sel.unregister(key.fileobj)
                if not progressed:
                    break
            log.flush("stdout")
            log.flush("stderr")
            break
    status = proc.wait()
    log.close()
    # Like a container: killed by signal N reads as exit code 128+N.
    code = status if status >= 0 else 128 - status
    write_json(task_dir / "exit.json", {"exit_code": code})
    return 0


if __name__ == "__main__":
    sys.exit(main())

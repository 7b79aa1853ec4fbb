"""The converge display on a terminal: lines redrawn in place, bars, then "converged"."""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

from tests.e2e.conftest import WHOAMI
from tests.e2e.harness import LocalCluster


def run_in_pty(argv: list[str], columns: int = 120) -> tuple[int, str]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def test_create_on_a_terminal_draws_bars_and_converges(cluster: LocalCluster):
    m = cluster.manager
    argv = [sys.executable, "-m", "shoal", "-H", f"unix://{m.socket}", "service", "create"]
    argv += ["--runtime", "process", "--name", "tty", "--replicas", "2", "--update-monitor", "1s"]
    status, output = run_in_pty([*argv, sys.executable, WHOAMI])
    assert status == 0, output
    service_id = output.split()[0]
    assert "\x1b[1A\x1b[2K\roverall progress: 0 out of 2 tasks \r\x1b[1B" in output
    assert "1/2: running   [" + "=" * 50 + ">] " in output
    assert "overall progress: 2 out of 2 tasks" in output
    assert f"verify: Service {service_id} converged" in output

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import LocalCluster, local_cluster

WHOAMI = str(Path(__file__).parent / "apps" / "whoami.py")


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # Unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="shoal-e2e-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cluster(short_tmp: Path) -> Iterator[LocalCluster]:
    """1 manager and 2 workers, as separate daemon processes."""
    with local_cluster(short_tmp, workers=2, init_args=("--dispatcher-heartbeat", "1s")) as c:
        yield c


def whoami_args(name: str = "web", replicas: int = 3, *extra: str) -> list[str]:
    """`service create` arguments for the test HTTP service under the process runtime."""
    return [
        "service",
        "create",
        "-d",
        "--runtime",
        "process",
        "--name",
        name,
        "--replicas",
        str(replicas),
        "-p",
        "8080:80",
        "--env",
        "WHOAMI={{.Service.Name}}.{{.Task.Slot}}@{{.Node.Hostname}}",
        *extra,
        sys.executable,
        WHOAMI,
    ]

"""Imported first by the benches that use the e2e harness (tests/) and start `shoal daemon`
processes: this checkout's tests/ and src/ go first on the path, for the bench and for the
`python -m shoal` subprocesses it starts (they must run this tree's shoal too)."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
)

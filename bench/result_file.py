"""How a bench writes its figures: one JSON file under bench/results/, and a line saying where.

Imported by the bench scripts as a sibling module (they run as ``python bench/NAME.py``, which
puts bench/ first on the path)."""

import json
import os
import platform
from pathlib import Path
from typing import Any

import shoal

RESULTS = Path(__file__).parent / "results"


def write_result(path: Path, report: dict[str, Any]) -> None:
    """Write ``report`` to ``path`` as indented JSON and say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


def run_facts() -> dict[str, Any]:
    """What the figures depend on besides the code: the machine's load as the run ends (2 cores
    shared with others: a loaded machine makes slower figures), Python's version and the CPU."""
    return {
        "loadavg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def write_labelled_result(bench: str, label: str, fields: dict[str, Any]) -> None:
    """Write the result of a bench run before and after a change: to bench/results/BENCH.json,
    or BENCH-LABEL.json with ``--label``, saying which shoal source it measured (the "before"
    runs with ``PYTHONPATH=<an older src>``) and the label, then ``fields``, then
    ``run_facts()``."""
    write_result(
        RESULTS / f"{bench}{'-' + label if label else ''}.json",
        {
            "bench": bench,
            "shoal_src": str(Path(shoal.__file__).parent),
            "label": label,
            **fields,
            **run_facts(),
        },
    )

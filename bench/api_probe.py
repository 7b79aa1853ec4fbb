"""The fleet benchmark's API client, in a process of its own (issue 15's control API p99).

A user's `docker service ls` is a process of its own. Made from a thread of the benchmark,
each call also waited for that process's own interpreter lock, held meanwhile by its other
threads (parsing three managers' /metrics and a `service ls` every second, and at times a
100,000-task list): part of what was measured was the benchmark. This process does nothing
but the calls: every ``--interval`` seconds `service ls` (GET /services?status=true), `node
ls`, a `service inspect` of the probe service and a one-service update of it (a label), each
on a new connection to the manager named in ``--target`` (a file the benchmark rewrites when
the leader changes: a socket path and a name). One JSON line per call to ``--out``: the call,
the manager, when it was made (``time.monotonic()``, the system's clock shared by every
process), how long it took, and the error if it failed. Stops on SIGTERM."""

import argparse
import http.client
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import checkout_path  # noqa: F401  (first: this checkout's tests/ and src/)

from tests.e2e.harness import unix_api

TIMEOUT = 60.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--target", type=Path, required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    out = args.out.open("a", buffering=1)

    def timed(what: str, method: str, target: str, body: Any = None) -> Any:
        try:
            path, name = args.target.read_text().split("\n")[:2]
        except (OSError, ValueError):
            path = name = ""
        t = time.monotonic()
        record: dict[str, Any] = {"call": what, "via": name or None, "t": t}
        result = None
        try:
            if not path:
                raise RuntimeError("no manager says it is the leader")
            resp = unix_api(path, method, target, body, TIMEOUT)
            if resp.status >= 400:
                record["error"] = f"{resp.status} {resp.body}"[:200]
            else:
                result = resp.body
        except (OSError, http.client.HTTPException, RuntimeError, ValueError) as err:
            record["error"] = f"{type(err).__name__}: {err}"[:200]
        record["ms"] = round((time.monotonic() - t) * 1000, 2)
        record["ok"] = "error" not in record
        out.write(json.dumps(record) + "\n")
        return result

    while not stopping.wait(args.interval):
        timed("service ls", "GET", "/services?status=true")
        timed("node ls", "GET", "/nodes")
        svc = timed("service inspect", "GET", f"/services/{args.service}")
        if svc is not None:
            spec = svc["Spec"]
            spec.setdefault("Labels", {})["probe"] = str(time.monotonic())
            version = svc["Version"]["Index"]
            timed(
                "service update",
                "POST",
                f"/services/{args.service}/update?version={version}",
                spec,
            )
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

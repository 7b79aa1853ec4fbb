"""How soon the dashboard shows a change: its follow latency, in a real browser.

Three `shoal daemon` processes (1 manager serving the dashboard, 2 workers) on loopback
addresses; a headless Chromium (Debian's, see tests/e2e/browser.py) has the manager's
dashboard open. Each trial scales a service through the manager's Docker API (as `service
scale` does) and measures, from just before the request, until the page shows the new
desired count: the API's write (raft commit), the hub (which sends a change at once, and
what follows it within 0.1 s together after it), the websocket and the page's render. A second figure is until the page shows every replica
running, which is mostly the cluster's own scheduling and task start-up.

Prints the figures and writes bench/results/dashboard.json.
Run: .venv/bin/python bench/dashboard.py [--trials 20]
"""

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import checkout_path  # noqa: F401  (first: this checkout's tests/ and src/)

from tests.e2e.browser import browser_missing, chromium
from tests.e2e.harness import LocalCluster, free_port, wait_for

RESULTS = Path(__file__).parent / "results" / "dashboard.json"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def figures(values: list[float]) -> dict[str, float]:
    return {
        "median_seconds": round(statistics.median(values), 3),
        "p90_seconds": round(percentile(values, 90), 3),
        "max_seconds": round(max(values), 3),
        "min_seconds": round(min(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    missing = browser_missing()
    if missing:
        sys.exit(missing)

    root = Path(tempfile.mkdtemp(prefix="shoal-bench-dash-", dir="/tmp"))
    cluster = LocalCluster(root)
    results = []
    try:
        port = free_port("127.0.0.1")
        m = cluster.add("manager1", ["--dashboard-addr", f"127.0.0.1:{port}"])
        cluster.init("--dispatcher-heartbeat", "1s")
        for i in range(2):
            cluster.join_worker(cluster.add(f"worker{i + 1}"))
        m.process_service("--name", "web", "--replicas", "1", "sleep", "3600")
        wait_for(lambda: len(cluster.running_tasks("web")) == 1, what="web running")

        with chromium() as browser:
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#services tr[data-name=web][data-running='1']")
            for trial in range(args.trials):
                replicas = 2 + trial % 4  # 2..5, each a change from the one before
                service = m.get("/services/web")
                spec = service["Spec"]
                spec["Mode"]["Replicated"]["Replicas"] = replicas
                version = service["Version"]["Index"]
                start = time.monotonic()
                resp = m.api("POST", f"/services/{service['ID']}/update?version={version}", spec)
                assert resp.status == 200, resp.body
                page.wait_for_selector(
                    f"#services tr[data-name=web][data-desired='{replicas}']",
                    timeout=30_000,
                )
                shown = time.monotonic() - start
                page.wait_for_selector(
                    f"#services tr[data-name=web][data-running='{replicas}']"
                    f"[data-desired='{replicas}']",
                    timeout=60_000,
                )
                running = time.monotonic() - start
                results.append(
                    {
                        "trial": trial,
                        "replicas": replicas,
                        "desired_shown_seconds": round(shown, 3),
                        "all_running_shown_seconds": round(running, 3),
                    }
                )
                print(
                    f"trial {trial:2}: replicas -> {replicas}: page shows the new desired count "
                    f"after {shown * 1000:.0f} ms, every replica running after "
                    f"{running * 1000:.0f} ms"
                )
            navigations = page.evaluate("performance.getEntriesByType('navigation').length")
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)

    shown_all = [r["desired_shown_seconds"] for r in results]
    running_all = [r["all_running_shown_seconds"] for r in results]
    report = {
        "benchmark": "dashboard",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "nodes": 3,
        "trials": len(results),
        "page_loads": navigations,
        "desired_shown": figures(shown_all),
        "all_running_shown": figures(running_all),
        "target_seconds": 1.0,
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    d, r = report["desired_shown"], report["all_running_shown"]
    print(
        f"\nfollow latency (write to page, {len(results)} trials): median "
        f"{d['median_seconds'] * 1000:.0f} ms, p90 {d['p90_seconds'] * 1000:.0f} ms, max "
        f"{d['max_seconds'] * 1000:.0f} ms (target: under 1 s)"
    )
    print(
        f"until every replica shows running: median {r['median_seconds'] * 1000:.0f} ms, "
        f"max {r['max_seconds'] * 1000:.0f} ms"
    )
    print(f"page loads: {navigations} (the page never reloaded)")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

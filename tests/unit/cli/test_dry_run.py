"""How the CLI prints a plan, and the one error of its own (no plan endpoint)."""

import pytest

from shoal.cli.dry_run import NO_PLANS, check_format, print_plan, summary_lines
from shoal.cli.framework import CLIError


def _task(action: str, slot: int, node: str = "", previous: str = "", batch: int = 0, error=""):
    return {
        "Action": action,
        "Name": f"web.{slot}",
        "Slot": slot,
        "NodeID": node and node + "-id",
        "Node": node,
        "PreviousNodeID": previous and previous + "-id",
        "PreviousNode": previous,
        "Batch": batch,
        "Error": error,
    }


ERR = "no suitable node (insufficient resources on 3 nodes)"
PLAN = {
    "Services": [
        {
            "ID": "abcdefghijklmnop",
            "Name": "web",
            "Operation": "update",
            "Mode": "replicated",
            "Tasks": [
                _task("replace", 1, "n1", "n1", 1),
                _task("replace", 2, "", "n2", 2, ERR),
                _task("create", 4, "", error=ERR),
                _task("stop", 3, previous="n3"),
            ],
            "Summary": {
                "Create": 1,
                "Replace": 2,
                "Stop": 1,
                "Unplaced": 2,
                "Unchanged": 0,
                "Outdated": 1,
            },
            "Update": {
                "Parallelism": 1,
                "Delay": 10**10,
                "Order": "stop-first",
                "FailureAction": "pause",
                "Batches": 2,
                "State": "updating",
            },
        }
    ],
    "Complete": True,
}


def test_the_table_and_its_summary(capsys):
    print_plan(PLAN, None)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Service web (abcdefghijkl): update, replicated"
    assert lines[1].split() == ["ACTION", "TASK", "NODE", "FROM", "BATCH", "ERROR"]
    assert lines[2].split() == ["replace", "web.1", "n1", "n1", "1"]
    assert lines[3].split()[:5] == ["replace", "web.2", "-", "n2", "2"] and ERR in lines[3]
    assert lines[5].split() == ["stop", "web.3", "n3"]
    assert lines[6:] == [
        "web: 1 task to create (1 cannot be placed), 2 tasks to replace in 2 update batches "
        "(parallelism 1, delay 10s, stop-first), 1 of them cannot be placed, 1 task to stop.",
        "web: the update would not finish: 1 task would stay on the previous spec.",
        "Dry run: nothing was changed.",
    ]


def test_a_service_with_nothing_to_do():
    service = {**PLAN["Services"][0], "Tasks": [], "Update": None}
    service["Summary"] = dict.fromkeys(service["Summary"], 0) | {"Unchanged": 3}
    assert summary_lines(service) == ["web: 3 unchanged."]


def test_json_is_the_plan_as_the_daemon_sent_it(capsys):
    import json

    print_plan(PLAN, "json")
    assert json.loads(capsys.readouterr().out) == PLAN


def test_format_is_for_dry_runs_only():
    check_format(None, False)
    check_format("json", True)
    with pytest.raises(CLIError, match="only for --dry-run"):
        check_format("json", False)
    with pytest.raises(CLIError, match='invalid --format "yaml"'):
        check_format("yaml", True)


def test_the_message_for_a_daemon_without_plans():
    assert NO_PLANS.format(path="/shoal/plan/services/create").startswith(
        "--dry-run needs a shoal manager: the daemon answered 404 for /shoal/plan/services/create"
    )

"""Job progress, fed the states Docker's CLI would poll: what it prints with and without a
terminal (docker/cli's replicatedJobProgressUpdater and globalJobProgressUpdater)."""

import io

from shoal.cli.job_progress import GlobalJobProgress, ReplicatedJobProgress
from shoal.cli.progress import updater_for
from shoal.cli.progress_writer import ProgressWriter


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def job(total: int, concurrent: int, iteration: int = 0) -> dict:
    return {
        "Spec": {
            "Mode": {"ReplicatedJob": {"TotalCompletions": total, "MaxConcurrent": concurrent}}
        },
        "JobStatus": {"JobIteration": {"Index": iteration}},
    }


def global_job(iteration: int = 0) -> dict:
    return {
        "Spec": {"Mode": {"GlobalJob": {}}},
        "JobStatus": {"JobIteration": {"Index": iteration}},
    }


def task(state: str, slot: int = 0, node: str = "n1", iteration: int = 0, err: str = "") -> dict:
    t = {
        "NodeID": node,
        "DesiredState": "complete",
        "Status": {"State": state, "Err": err},
        "JobIteration": {"Index": iteration},
    }
    if slot:
        t["Slot"] = slot  # Docker leaves out slot 0
    return t


def test_a_replicated_job_without_a_terminal():
    out = io.StringIO()
    progress = ReplicatedJobProgress.of(ProgressWriter(out), job(3, 2))
    assert not progress.update({}, [], set(), False)
    assert not progress.update({}, [task("running", 0), task("pending", 1)], set(), False)
    assert not progress.update(
        {}, [task("complete", 0), task("running", 1), task("pending", 2)], set(), False
    )
    # an old iteration's task is not counted
    done = [task("complete", n) for n in range(3)] + [task("running", 0, iteration=9)]
    assert progress.update({}, done, set(), False)
    assert out.getvalue().splitlines() == [
        "active tasks: 0 out of 2 tasks",
        "1/3:  ",
        "2/3:  ",
        "3/3:  ",
        "active tasks: 0 out of 2 tasks",
        "active tasks: 2 out of 2 tasks",
        "active tasks: 2 out of 2 tasks",
        "active tasks: 0 out of 0 tasks",
    ]


def test_a_replicated_job_pads_its_counts_and_names_slots_from_one():
    out = TTY()
    writer = ProgressWriter(out)
    writer.width = 0
    progress = ReplicatedJobProgress.of(writer, job(10, 10))
    progress.update({}, [task("failed", 0, err="boom")], set(), False)
    text = out.getvalue()
    assert "job progress:  0 out of 10 complete" in text
    assert "active tasks:  0 out of 10 tasks" in text
    assert "1/10: boom" in text


def test_the_worst_task_of_a_slot_speaks_for_it():
    out = TTY()
    writer = ProgressWriter(out)
    writer.width = 0
    progress = ReplicatedJobProgress.of(writer, job(1, 1))
    assert not progress.update({}, [task("complete", 0), task("starting", 0)], set(), False)
    assert out.getvalue().endswith("active tasks: 1 out of 1 tasks \r\x1b[2B")
    assert "1/1: starting " in out.getvalue()


def test_a_global_job_without_a_terminal_prints_only_its_waiting():
    out = io.StringIO()
    progress = GlobalJobProgress(ProgressWriter(out))
    assert not progress.update(global_job(), [], {"a", "b"}, False)
    tasks = [task("running", node="a"), task("pending", node="b")]
    assert not progress.update(global_job(), tasks, {"a", "b"}, False)
    tasks = [task("complete", node="a"), task("complete", node="b")]
    assert progress.update(global_job(), tasks, {"a", "b"}, False)
    assert out.getvalue().splitlines() == ["job progress: waiting for tasks"]


def test_a_global_job_on_a_terminal_draws_a_line_per_node_by_full_id():
    out = TTY()
    writer = ProgressWriter(out)
    writer.width = 150
    progress = GlobalJobProgress(writer)
    node = "r3yy950w0xpgpttgvrwr28sm4"
    progress.update(global_job(), [task("preparing", node=node)], {node}, False)
    progress.update(global_job(), [task("complete", node=node)], {node}, False)
    text = out.getvalue()
    assert f"{node}: preparing [{'=' * 30}>{' ' * 20}] " in text  # 6 of 10 steps
    assert "job progress: 0 out of 1 complete [>" in text
    assert f"{node}: complete  [{'=' * 50}>] " in text
    assert f"job progress: 1 out of 1 complete [{'=' * 50}>] " in text


def test_a_global_job_follows_only_the_nodes_of_its_first_tasks():
    out = io.StringIO()
    progress = GlobalJobProgress(ProgressWriter(out))
    assert not progress.update(
        global_job(1), [task("running", node="a", iteration=1)], set(), False
    )
    later = [task("complete", node="a", iteration=1), task("pending", node="new", iteration=1)]
    assert progress.update(global_job(1), later, set(), False)


def test_a_global_job_with_no_eligible_node_is_done_at_once():
    # No task, and no active node either: Docker counts 0 out of 0 and is done.
    out = io.StringIO()
    progress = GlobalJobProgress(ProgressWriter(out))
    assert progress.update(global_job(), [], set(), False)
    assert out.getvalue().splitlines() == ["job progress: 0 out of 0 complete"] * 2


def test_the_updater_follows_the_mode():
    writer = ProgressWriter(io.StringIO())
    assert isinstance(updater_for(global_job(), writer), GlobalJobProgress)
    assert isinstance(updater_for(job(1, 1), writer), ReplicatedJobProgress)

"""The converge display, fed the service and task states Docker's CLI would poll."""

import io
import os
import signal

from shoal.cli.progress import Interrupt, SlotProgress
from shoal.cli.progress_writer import ProgressWriter


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def svc(replicas: int) -> dict:
    return {"Spec": {"Mode": {"Replicated": {"Replicas": replicas}}}}


def task(slot: int, state: str, desired: str = "running", err: str = "", node: str = "n1") -> dict:
    return {
        "Slot": slot,
        "NodeID": node,
        "DesiredState": desired,
        "Status": {"State": state, "Err": err},
    }


def test_non_tty_prints_counts_and_errors_but_not_bars():
    out = io.StringIO()
    progress = SlotProgress(ProgressWriter(out), global_mode=False)
    assert not progress.update(svc(2), [task(1, "pending"), task(2, "assigned")], {"n1"}, False)
    assert not progress.update(
        svc(2), [task(1, "pending", err="no suitable node (x)"), task(2, "running")], {"n1"}, False
    )
    assert progress.update(svc(2), [task(1, "running"), task(2, "running")], {"n1"}, False)
    assert out.getvalue().splitlines() == [
        "overall progress: 0 out of 2 tasks",
        "1/2:  ",
        "2/2:  ",
        "overall progress: 0 out of 2 tasks",
        "1/2: no suitable node (x)",
        "overall progress: 1 out of 2 tasks",
        "overall progress: 2 out of 2 tasks",
    ]


def test_tasks_on_down_nodes_and_old_slots_do_not_count():
    out = io.StringIO()
    progress = SlotProgress(ProgressWriter(out), global_mode=False)
    tasks = [task(1, "running", node="gone"), task(1, "running", desired="shutdown")]
    assert not progress.update(svc(1), tasks, {"n1"}, False)


def test_rollback_wording():
    out = io.StringIO()
    progress = SlotProgress(ProgressWriter(out), global_mode=False)
    progress.update(svc(1), [task(1, "running")], {"n1"}, True)
    assert (
        out.getvalue().splitlines()[-1] == "overall progress: rolling back update: 1 out of 1 tasks"
    )


def test_tty_redraws_lines_in_place():
    out = TTY()
    writer = ProgressWriter(out)
    writer.width = 0
    writer.write("overall progress", "0 out of 1 tasks")
    writer.write("1/1", " ")
    writer.write("1/1", "new      ", 1, 9)
    writer.write("overall progress", "0 out of 1 tasks")
    assert out.getvalue() == (
        "\n\x1b[1A\x1b[2K\roverall progress: 0 out of 1 tasks \r\x1b[1B"
        "\n\x1b[1A\x1b[2K\r1/1:   \r\x1b[1B"
        "\x1b[1A\x1b[2K\r1/1: new       \r\x1b[1B"
        "\x1b[2A\x1b[2K\roverall progress: 0 out of 1 tasks \r\x1b[2B"
    )


def test_tty_bar_on_a_wide_terminal():
    out = TTY()
    writer = ProgressWriter(out)
    writer.width = 120
    writer.write("1/2", "pending  ", 3, 9)
    assert (
        "1/2: pending   [================>                                  ] \r" in out.getvalue()
    )


def test_global_counts_one_task_per_node():
    out = io.StringIO()
    progress = SlotProgress(ProgressWriter(out), global_mode=True)
    assert not progress.update({}, [], set(), False)
    tasks = [task(0, "running", node="a"), task(0, "starting", node="b")]
    assert not progress.update({}, tasks, {"a", "b"}, False)
    assert out.getvalue().splitlines() == [
        "overall progress: waiting for new tasks",
        "overall progress: 0 out of 2 tasks",
        "overall progress: 1 out of 2 tasks",
    ]


async def test_ctrl_c_is_noticed_at_the_next_pause_and_then_left_to_python():
    with Interrupt() as interrupt:
        assert not await interrupt.pause(0.01)
        os.kill(os.getpid(), signal.SIGINT)  # caught: no KeyboardInterrupt
        assert await interrupt.pause(5)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

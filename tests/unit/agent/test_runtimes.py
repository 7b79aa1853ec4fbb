"""Tasks go to the executor of their runtime; a runtime the node lacks refuses the task."""

import pytest

from shoal.agent.exec.base import NodeContext, TaskFailed
from shoal.agent.exec.process import ProcessController, ProcessExecutor
from shoal.agent.exec.runtimes import RuntimeExecutor, UnsupportedController
from shoal.api.objects import Task


def task(runtime: str | None) -> Task:
    return Task.model_validate(
        {
            "ID": "t1",
            "ServiceAnnotations": {"Name": "web"},
            "Spec": {"Runtime": runtime, "ContainerSpec": {"Image": "sh"}},
        }
    )


async def test_dispatch_by_runtime(tmp_path):
    node = NodeContext(node_id="n1", hostname="h", addr="127.0.0.1")
    ex = RuntimeExecutor({"process": ProcessExecutor(tmp_path, node)})
    assert ex.runtimes == ["process"]
    assert isinstance(ex.controller(task("process")), ProcessController)
    # No runtime means a container, as in Docker; this node has none.
    ctl = ex.controller(task(None))
    assert isinstance(ctl, UnsupportedController)
    with pytest.raises(TaskFailed, match=r'^unsupported runtime: "container"$'):
        await ctl.prepare()
    await ctl.shutdown()
    await ctl.remove()
    assert ctl.container_status() is None and ctl.port_status() is None
    await ex.reconcile({"t1"})  # no executor keeps anything outside the agent: nothing to do

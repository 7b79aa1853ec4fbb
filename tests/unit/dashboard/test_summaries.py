"""A service's line on the dashboard: replicas as `service ls` counts them, and an update's
progress as the running tasks on the service's current spec."""

from shoal.api.base import Version
from shoal.api.objects import Service, Task, TaskStatus, UpdateStatus
from shoal.api.specs import (
    ContainerSpec,
    EndpointPortConfig,
    EndpointSpec,
    GlobalService,
    ReplicatedService,
    ServiceMode,
    ServiceSpec,
    TaskSpec,
)
from shoal.api.types import PublishMode, TaskState, UpdateState
from shoal.clock import SystemClock
from shoal.dashboard.hub import Hub
from shoal.engineapi.event_log import EventLog
from shoal.store import MemoryStore


class Source:
    events = EventLog()

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def dashboard_store(self) -> MemoryStore:
        return self.store

    def dashboard_node_id(self) -> str:
        return ""


def task(ident: str, service: str, state: TaskState, version: int, node: str = "n1") -> Task:
    return Task(
        ID=ident,
        ServiceID=service,
        NodeID=node,
        DesiredState=TaskState.RUNNING,
        Status=TaskStatus(State=state),
        SpecVersion=Version(Index=version),
    )


async def summaries(*objects: Service | Task) -> dict[str, dict]:
    store = MemoryStore()
    await store.update(lambda tx: [tx.create(o) for o in objects])
    hub = Hub(Source(store), SystemClock())
    await hub._load(store)
    return {s["name"]: s for s in hub.state()["services"]}


async def test_an_update_in_progress_counts_the_tasks_on_the_new_spec():
    web = Service(
        ID="web",
        Spec=ServiceSpec(
            Name="web",
            Mode=ServiceMode(Replicated=ReplicatedService(Replicas=3)),
            TaskTemplate=TaskSpec(
                Runtime="process", ContainerSpec=ContainerSpec(Image="python3", Args=["-m", "x"])
            ),
            EndpointSpec=EndpointSpec(
                Ports=[
                    EndpointPortConfig(TargetPort=80, PublishedPort=8080),
                    EndpointPortConfig(
                        TargetPort=81, PublishedPort=8081, PublishMode=PublishMode.HOST
                    ),
                ]
            ),
        ),
        SpecVersion=Version(Index=7),
        UpdateStatus=UpdateStatus(State=UpdateState.UPDATING),
    )
    got = (
        await summaries(
            web,
            task("a", "web", TaskState.RUNNING, 7),
            task("b", "web", TaskState.RUNNING, 3),
            task("c", "web", TaskState.STARTING, 7),
        )
    )["web"]
    assert (got["running"], got["desired"], got["updated"]) == (2, 3, 1)
    assert got["update"]["state"] == "updating"
    assert (got["image"], got["command"], got["runtime"]) == ("python3", ["-m", "x"], "process")
    assert got["ports"] == ["*:8080->80/tcp", "8081->81/tcp"]


async def test_a_global_service_wants_a_task_per_node_it_has_one_meant_to_run_on():
    ops = Service(ID="ops", Spec=ServiceSpec(Name="ops", Mode=ServiceMode(Global=GlobalService())))
    got = (
        await summaries(
            ops,
            task("a", "ops", TaskState.RUNNING, 1, "n1"),
            task("b", "ops", TaskState.PREPARING, 1, "n2"),
        )
    )["ops"]
    assert (got["mode"], got["running"], got["desired"]) == ("global", 1, 2)

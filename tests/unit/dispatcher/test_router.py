"""The dispatcher's router: each store change goes only to the sessions it concerns, in
commit order, from the instant a session's COMPLETE snapshot was read; and a session fed
only what the router sends it is sent exactly the messages it would be sent if it saw every
change (as when each session had a subscription of its own), the routing table included,
though the routed sessions share one table worked out once per change that may move it."""

import random

from shoal.api.objects import (
    Config,
    Network,
    Node,
    Secret,
    Service,
    Task,
)
from shoal.api.types import TaskState
from shoal.manager.dispatcher.assignments import NodeAssignments
from shoal.manager.dispatcher.dependencies import node_dependencies
from shoal.manager.dispatcher.fanout import SharedFlags, cluster_flags
from shoal.manager.dispatcher.router import KINDS, Router, recipients
from shoal.rpc import pb
from shoal.store import Event, MemoryStore, Subscription, Tx
from shoal.store.watch import Action

PORTS = {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 30080}]}


def task(tid: str = "t1", node: str = "n2", **fields: object) -> Task:
    return Task.model_validate({"ID": tid, "NodeID": node, **fields})


def attached(network_id: str, addr: str = "10.0.1.5/24") -> list[dict]:
    return [{"Network": {"ID": network_id}, "Addresses": [addr]}]


def to(ev: Event, members: dict[str, set[str]] | None = None) -> set[str] | None:
    routes, networks = cluster_flags(ev) if not ev.is_commit else (False, False)
    return recipients(ev, routes, networks, members or {})


# --- recipients: pure ----------------------------------------------------------------------


def test_a_plain_task_goes_to_its_node_only() -> None:
    assert to(Event(Action.UPDATE, task(), task())) == {"n2"}
    assert to(Event(Action.CREATE, task())) == {"n2"}
    assert to(Event(Action.REMOVE, task(), task())) == {"n2"}


def test_a_task_not_yet_on_a_node_goes_nowhere() -> None:
    assert to(Event(Action.CREATE, task(node=""))) == set()


def test_a_task_that_moved_goes_to_both_nodes() -> None:
    assert to(Event(Action.UPDATE, task(node="n3"), task(node="n2"))) == {"n2", "n3"}
    assert to(Event(Action.UPDATE, task(node=""), task(node="n2"))) == {"n2"}


def test_a_task_with_published_ports_goes_everywhere() -> None:
    ported = task(Status={"PortStatus": PORTS})
    assert to(Event(Action.UPDATE, ported, task())) is None
    # Leaving the table: the old version carried the ports.
    assert to(Event(Action.REMOVE, ported, ported)) is None


def test_a_task_on_an_overlay_goes_to_the_nodes_whose_map_holds_it() -> None:
    members = {"net1": {"n5", "n6"}, "net2": {"n7"}}
    on_net1 = task(NetworksAttachments=attached("net1"))
    assert to(Event(Action.CREATE, on_net1), members) == {"n2", "n5", "n6"}
    # Leaving net2 for net1: both networks' nodes.
    on_net2 = task(NetworksAttachments=attached("net2"))
    assert to(Event(Action.UPDATE, on_net1, on_net2), members) == {"n2", "n5", "n6", "n7"}
    # A network nobody's map holds yet: its own node only (which maps it afterwards).
    on_net3 = task(NetworksAttachments=attached("net3"))
    assert to(Event(Action.CREATE, on_net3), members) == {"n2"}


def test_cluster_wide_objects_go_everywhere() -> None:
    for obj in (
        Service.model_validate({"ID": "s"}),
        Node.model_validate({"ID": "n3"}),
        Network.model_validate({"ID": "net"}),
        Secret.model_validate({"ID": "sec"}),
        Config.model_validate({"ID": "cfg"}),
    ):
        assert to(Event(Action.UPDATE, obj, obj)) is None, obj.KIND


def test_commits_go_nowhere() -> None:
    assert to(Event(None, None, None)) == set()


# --- the router on a store -------------------------------------------------------------------


def _put(*objs: object) -> "callable":
    def fn(tx: Tx) -> None:
        for obj in objs:
            current = tx.get(type(obj), obj.ID)  # type: ignore[attr-defined]
            if current is None:
                tx.create(obj)
            else:
                obj = obj.clone() if obj is current else obj  # type: ignore[attr-defined]
                obj.Version = current.Version  # type: ignore[attr-defined]
                tx.update(obj)

    return fn


def _drain(source: object) -> list[Event]:
    events = []
    while (ev := source.get_nowait()) is not None:  # type: ignore[attr-defined]
        if not ev.is_commit:
            events.append(ev)
    return events


async def test_an_inbox_gets_its_nodes_changes_after_it_attached_in_order() -> None:
    store = MemoryStore()
    router = Router(store)
    await store.update(_put(task("t0", "n1")))
    view, inbox = router.view_and_attach("n1")
    _, other = router.view_and_attach("n2")
    assert view.get(Task, "t0") is not None  # before: in the snapshot, not in the inbox
    await store.update(_put(task("t1", "n1")))
    await store.update(_put(task("t2", "n2"), task("t3", "n1")))
    assert [e.obj.ID for e in _drain(inbox)] == ["t1", "t3"]  # type: ignore[union-attr]
    assert [e.obj.ID for e in _drain(other)] == ["t2"]  # type: ignore[union-attr]
    # Nothing queued for commits: a session wakes only for what concerns it.
    assert inbox.pending() == other.pending() == 0
    inbox.close()
    await store.update(_put(task("t4", "n1")))
    assert inbox.get_nowait() is None
    router.close()
    await store.update(_put(task("t5", "n2")))
    assert other.get_nowait() is None


async def test_network_members_follow_what_each_inbox_says() -> None:
    store = MemoryStore()
    router = Router(store)
    _, a = router.view_and_attach("n1")
    _, b = router.view_and_attach("n1")  # a node's old stream, not yet ended
    router.follow_networks(a, frozenset({"net1"}))
    router.follow_networks(b, frozenset({"net1", "net2"}))
    assert {k: set(v) for k, v in router.members().items()} == {
        "net1": {"n1"},
        "net2": {"n1"},
    }
    b.close()
    assert {k: set(v) for k, v in router.members().items()} == {"net1": {"n1"}}
    await store.update(_put(task("t1", "n9", NetworksAttachments=attached("net1"))))
    assert [e.obj.ID for e in _drain(a)] == ["t1"]  # type: ignore[union-attr]
    router.follow_networks(a, frozenset())
    assert router.members() == {}


async def test_a_failure_while_routing_ends_the_streams_not_the_write() -> None:
    store = MemoryStore()
    router = Router(store)

    class Broken(SharedFlags):
        def of(self, ev: Event) -> tuple[bool, bool]:
            raise RuntimeError("boom")

    router._flags = Broken()
    _, inbox = router.view_and_attach("n1")
    await store.update(_put(task("t1", "n1")))
    assert store.view().get(Task, "t1") is not None
    assert inbox.closed
    assert inbox.get_nowait() is None


async def test_the_shared_routing_table_is_kept_until_a_change_may_move_it() -> None:
    store = MemoryStore()
    router = Router(store)
    view, _ = router.view_and_attach("n1")
    table = router.routes.table(view)
    await store.update(_put(task("t1", "n2")))  # no published port: the table stays
    assert router.routes.table(store.view()) is table
    svc = Service.model_validate({"ID": "s1", "Endpoint": {"Ports": PORTS["Ports"]}})
    await store.update(_put(svc))
    moved = router.routes.table(store.view())
    assert moved is not table and [r.port for r in moved] == [30080]
    assert router.routes.table(store.view()) is moved
    store.restore(store.snapshot())  # replaces the state and tells nobody
    assert router.routes.table(store.view()) is not moved
    router.close()


# --- routed sessions are sent what sessions seeing everything are sent -----------------------


NODES = [f"node{i}" for i in range(6)]
NETWORKS = ["netA", "netB", "netC"]
SECRETS = ["sec1", "sec2"]


def _network(i: int, network_id: str) -> Network:
    return Network.model_validate(
        {
            "ID": network_id,
            "Spec": {"Name": network_id},
            "DriverState": {
                "Name": "overlay",
                "Options": {"com.docker.network.driver.overlay.vxlanid_list": str(4097 + i)},
            },
            "IPAMOptions": {
                "Configs": [{"Subnet": f"10.0.{i + 1}.0/24", "Gateway": f"10.0.{i + 1}.1"}]
            },
        }
    )


def _service(rng: random.Random, sid: str) -> Service:
    nets = rng.sample(NETWORKS, rng.randint(0, 2))
    svc = Service.model_validate(
        {
            "ID": sid,
            "Spec": {
                "Name": sid,
                "TaskTemplate": {"Networks": [{"Target": n, "Aliases": [sid + "x"]} for n in nets]},
            },
        }
    )
    svc.Endpoint = svc.Endpoint.model_validate(
        {
            "Ports": (
                [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 30000 + int(sid[3:])}]
                if rng.random() < 0.4
                else None
            ),
            "VirtualIPs": [
                {"NetworkID": n, "Addr": f"10.0.{NETWORKS.index(n) + 1}.{200 + int(sid[3:])}/24"}
                for n in nets
            ],
        }
    )
    return svc


def _task(rng: random.Random, tid: str, services: list[Service], old: Task | None) -> Task:
    svc = rng.choice(services)
    n = int(tid[1:])
    state = rng.choice(
        [TaskState.NEW, TaskState.ASSIGNED, TaskState.RUNNING, TaskState.RUNNING, TaskState.FAILED]
    )
    nets = [t.Target for t in svc.Spec.TaskTemplate.Networks or ()]
    fields: dict = {
        "ID": tid,
        "ServiceID": svc.ID,
        "Slot": n,
        "NodeID": "" if state == TaskState.NEW else rng.choice(NODES),
        "ServiceAnnotations": {"Name": svc.Spec.Name},
        "DesiredState": rng.choice([TaskState.RUNNING, TaskState.RUNNING, TaskState.SHUTDOWN]),
        "Spec": {
            "ContainerSpec": {
                "Image": rng.choice(["busybox", "busybox:2"]),
                "Secrets": [
                    {"SecretID": s, "SecretName": s, "File": {"Name": s}}
                    for s in rng.sample(SECRETS, rng.randint(0, 1))
                ],
            }
        },
        "Status": {"State": state},
        "NetworksAttachments": [
            {
                "Network": {"ID": net},
                "Addresses": [f"10.0.{NETWORKS.index(net) + 1}.{n % 190 + 2}/24"],
            }
            for net in nets
        ],
    }
    if svc.Endpoint.Ports and state == TaskState.RUNNING:
        fields["Status"]["PortStatus"] = {
            "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 31000 + n}]
        }
    if old is not None and rng.random() < 0.5:
        # A status report: the same task, further on.
        moved = old.clone()
        moved.Status.State = max(old.Status.State, TaskState.RUNNING)
        return moved
    return Task.model_validate(fields)


class _Both:
    """One session fed every change (as with a subscription each), one fed by the router."""

    def __init__(self, store: MemoryStore, router: Router, node_id: str) -> None:
        view, self.inbox = router.view_and_attach(node_id)
        self.sub: Subscription = store.watch(kinds=KINDS)  # same instant: no await between
        self.router = router
        self.everything = NodeAssignments(node_id)
        self.routed = NodeAssignments(node_id, router._flags, router.routes)
        first = self.everything.complete(view)
        assert first == self.routed.complete(view)
        router.follow_networks(self.inbox, self.routed.network_ids)

    def step(self, store: MemoryStore) -> tuple[pb.AssignmentsMessage | None, int, int]:
        """The message each session works out for what it has been given since the last
        step (its batch), which must be the same; and how many events each was given."""
        every, routed = _drain(self.sub), _drain(self.inbox)
        now = store.view()
        a = self.everything.incremental(every, now) if every else None
        b = self.routed.incremental(routed, now) if routed else None
        self.router.follow_networks(self.inbox, self.routed.network_ids)
        assert a == b, (a, b)
        assert self.everything.sent == self.routed.sent
        assert self.everything.networks == self.routed.networks
        assert self.everything.routes == self.routed.routes
        assert self.everything.dependencies == self.routed.dependencies
        # Worked out from the changes alone, they are what the node's tasks name now.
        assert self.routed.dependencies == node_dependencies(now, self.routed.node_id)
        return a, len(every), len(routed)

    def close(self) -> None:
        self.sub.close()
        self.inbox.close()


async def _workload(seed: int) -> tuple[int, int, int]:
    rng = random.Random(seed)
    store = MemoryStore()
    router = Router(store)
    nodes = {
        n: Node.model_validate({"ID": n, "Status": {"Addr": f"198.18.0.{i + 1}"}})
        for i, n in enumerate(NODES)
    }
    await store.update(_put(*nodes.values()))
    await store.update(_put(*(_network(i, n) for i, n in enumerate(NETWORKS))))
    await store.update(
        _put(*(Secret.model_validate({"ID": s, "Spec": {"Name": s}}) for s in SECRETS))
    )
    services = [_service(rng, f"svc{i}") for i in range(4)]
    await store.update(_put(*services))
    sessions: dict[str, _Both] = {}
    tasks: dict[str, Task] = {}
    messages = seen_every = seen_routed = with_routes = 0
    for step in range(300):
        if sessions and rng.random() < 0.03:  # every session ends: changes go by unseen
            for session in sessions.values():
                session.close()
            sessions.clear()
            if rng.random() < 0.5:  # and the router stops listening until the next
                router.close()
        elif rng.random() < 0.08 or not sessions:  # a session starts (again) mid-stream
            node_id = rng.choice(NODES)
            if node_id in sessions:
                sessions.pop(node_id).close()
            sessions[node_id] = _Both(store, router, node_id)
        for _ in range(rng.randint(1, 3)):  # a few writes within a batch window
            roll = rng.random()
            if roll < 0.65:
                tid = f"t{rng.randint(0, 40)}"
                new = _task(rng, tid, services, tasks.get(tid))
                tasks[tid] = new
                await store.update(_put(new))
            elif roll < 0.75 and tasks:
                tid = rng.choice(sorted(tasks))
                gone = tasks.pop(tid)
                await store.update(lambda tx, gone=gone: tx.delete(Task, gone.ID))
            elif roll < 0.82:
                i = rng.randrange(len(services))
                services[i] = _service(rng, services[i].ID)
                await store.update(_put(services[i]))
            elif roll < 0.9:
                node = nodes[rng.choice(NODES)].clone()
                node.Status.Addr = f"198.18.1.{rng.randint(1, 9)}"
                nodes[node.ID] = node
                await store.update(_put(node))
            else:
                sid = rng.choice(SECRETS)
                secret = Secret.model_validate(
                    {"ID": sid, "Spec": {"Name": sid, "Labels": {"v": str(step)}}}
                )
                await store.update(_put(secret))
        for session in sessions.values():
            message, every, routed = session.step(store)
            messages += message is not None
            with_routes += message is not None and bool(message.routes)
            seen_every += every
            seen_routed += routed
        # The routed sessions share one table: worked out once, not by each.
        assert len({id(s.routed.routes) for s in sessions.values()}) <= 1
    for session in sessions.values():
        session.close()
    router.close()
    return messages, with_routes, seen_every, seen_routed


async def test_routed_sessions_are_sent_what_they_would_be_sent_seeing_everything() -> None:
    for seed in range(6):
        messages, with_routes, every, routed = await _workload(seed)
        assert messages > 50, seed  # the workload moves things the sessions are sent
        # Among them the routing table: tasks that report published ports come and go.
        assert with_routes > 20, seed
        assert routed < every, seed  # and the router spared them some

"""The plan of a stack deploy: every change the CLI would send (a service pruned, a network
and a secret the stack creates, services created and updated) made together in one sandbox,
then for real in the same order; each service's plan is what really happened to it."""

from typing import Any

from shoal.api.objects import EngineDescription, Node
from shoal.manager.plan.stack import StackChanges, Versioned, plan_stack, with_reference_ids
from tests.unit.orchestrator.helpers import node
from tests.unit.plan.cluster import MiniCluster
from tests.unit.plan.test_plan_matches_real import observed, spec

CPU = 10**9
NETWORK = {"Name": "app_net", "DriverConfiguration": {"Name": "overlay"}, "Scope": "swarm"}
SECRET = {"Name": "app_token", "Data": "c2VjcmV0"}


def overlay_node(name: str, **kw: Any) -> Node:
    n = node(name, **kw)
    assert n.Description is not None
    n.Description.Engine = EngineDescription.model_validate(
        {"Plugins": [{"Type": "Network", "Name": "overlay"}]}
    )
    return n


def _plan_rows(service: dict[str, Any]) -> dict[str, Any]:
    rows = {
        (
            t["Action"],
            t["Slot"],
            t["NodeID"] if t["Action"] != "stop" else "",
            t["PreviousNodeID"],
            t["Batch"],
            t["Error"],
        )
        for t in service["Tasks"]
    }
    return {"rows": rows, "batches": (service["Update"] or {}).get("Batches", 0)}


async def test_a_stack_plan_is_what_the_deploy_then_does(store, clock):
    cluster = MiniCluster(store, clock)
    await cluster.start(*(overlay_node(f"n{i}", cpus=2 * CPU) for i in (1, 2, 3)))
    try:
        old = await cluster.create(spec("app_old", replicas=2))
        db = await cluster.create(
            spec("app_db", replicas=1, Resources={"Reservations": {"NanoCPUs": CPU}})
        )
        api = spec(
            "app_api",
            replicas=4,
            Networks=[{"Target": "app_net"}],
            Resources={"Reservations": {"NanoCPUs": CPU}},
        )
        api["TaskTemplate"]["ContainerSpec"]["Secrets"] = [
            {
                "File": {"Name": "token", "UID": "0", "GID": "0", "Mode": 292},
                "SecretName": "app_token",
            }
        ]
        db_spec = db.to_api()["Spec"]
        db_spec["TaskTemplate"]["ContainerSpec"]["Image"] = "img:2"
        changes = StackChanges(
            remove=[old.ID],
            networks=[NETWORK],
            secrets=[Versioned(SECRET)],
            services=[Versioned(api), Versioned(db_spec, db.ID, db.Version.Index)],
        )

        version, contents = store.version, store.snapshot()
        plan = (await plan_stack(store, clock, changes)).to_json()
        assert (store.version, store.snapshot()) == (version, contents)
        by_name = {s["Name"]: s for s in plan["Services"]}
        assert [s["Operation"] for s in plan["Services"]] == ["remove", "create", "update"]
        assert by_name["app_api"]["Summary"]["Create"] == 4
        assert by_name["app_db"]["Summary"]["Replace"] == 1
        assert by_name["app_old"]["Summary"]["Stop"] == 2

        # The deploy, in the CLI's order.
        before = {s.ID: cluster.tasks(s.ID) for s in (old, db)}
        await cluster.control.remove_service(old.ID)
        await cluster.control.create_network(NETWORK)
        await cluster.control.create_secret(SECRET)
        created = await cluster.control.create_service(with_reference_ids(cluster.control, api))
        await cluster.control.update_service(db.ID, db.Version.Index, db_spec)
        await cluster.converge()
        for sid, name in ((old.ID, "app_old"), (created.ID, "app_api"), (db.ID, "app_db")):
            real = observed(before.get(sid, []), cluster.tasks(sid), is_global=False)
            assert _plan_rows(by_name[name]) == real, name
    finally:
        await cluster.stop()

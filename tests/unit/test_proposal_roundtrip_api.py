"""Objects made by the real control API and orchestrator paths from hypothesis-generated
Docker-style specs (Go-style JSON: field names in any case, unknown fields) survive the raft
log field for field: the store here checks every proposal (SHOAL_CHECK_PROPOSALS, set by
tests/conftest.py) and, at the end, every object it holds is compared with its round trip.
Specs the API refuses are simply skipped: what it accepts is what gets stored."""

import asyncio
import base64
import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shoal.api.ids import new_id
from shoal.api.objects import Cluster, Node, NodeStatus, RootCA, Service
from shoal.api.specs import NodeSpec, ServiceSpec, TaskSpec
from shoal.api.types import NodeRole, NodeState
from shoal.ca.rootca import create_root_ca
from shoal.clock import FakeClock
from shoal.errors import ShoalError
from shoal.manager.controlapi.control import ControlAPI
from shoal.manager.orchestrator.task import new_task
from shoal.store import MemoryStore
from shoal.store.roundtrip import CHECK_PROPOSALS, differences
from tests.unit.test_proposal_roundtrip import as_go_json, field_values, round_trip

CA = create_root_ca()
names = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)


@st.composite
def service_specs(draw: st.DrawFn, name: str, mode: str) -> dict[str, Any]:
    """A Docker-style service spec: generated TaskTemplate and update/rollback/endpoint
    parts, with what the API needs to accept it (a name, an image, no references to
    networks, secrets or configs that do not exist)."""
    spec = draw(field_values(ServiceSpec))
    template = draw(field_values(TaskSpec))
    container = template.get("ContainerSpec") or {}
    container.update({"Image": "busybox:latest", "Secrets": None, "Configs": None})
    template.update({"ContainerSpec": container, "Networks": None})
    spec.update(
        {
            "Name": name,
            "TaskTemplate": template,
            "Networks": None,
            "Mode": {mode: {"Replicas": draw(st.integers(0, 3))} if mode == "Replicated" else {}},
        }
    )
    return as_go_json(spec, draw, ServiceSpec)


async def control_api() -> ControlAPI:
    store = MemoryStore(clock=FakeClock())
    cluster = Cluster(
        ID=new_id(), RootCA=RootCA(CACert=CA.cert_pem.decode(), CAKey=CA.key_pem.decode())
    )
    manager = Node(
        ID=new_id(),
        Spec=NodeSpec(Role=NodeRole.MANAGER),
        Role=NodeRole.MANAGER,
        Status=NodeStatus(State=NodeState.READY),
        Description={"Hostname": "manager1"},
    )
    await store.update(lambda tx: (tx.create(cluster), tx.create(manager)))
    return ControlAPI(store, store.clock)


async def accepted(what: str, call: Any) -> Any:
    try:
        result = await call
    except ShoalError as err:
        event(f"{what}: refused ({type(err).__name__})")
        return None  # refused as bad input: nothing stored
    event(f"{what}: stored")
    return result


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_what_the_control_api_and_orchestrator_store_decodes_to_itself(data):
    assert CHECK_PROPOSALS  # every write below is checked against its encoding as it is made

    async def run() -> None:
        control = await control_api()
        store = control.store
        mode = data.draw(st.sampled_from(["Replicated", "Global", "ReplicatedJob", "GlobalJob"]))
        name = data.draw(names)
        raw = json.loads(json.dumps(data.draw(service_specs(name, mode))))
        svc = await accepted("service create", control.create_service(raw))
        if svc is not None:
            # the orchestrator's tasks for it, then a generated update, then a rollback
            now = store.clock.now()
            tasks = [new_task(svc, now=now, slot=k + 1) for k in range(2)]
            await store.batch([lambda tx, t=t: tx.create(t) for t in tasks])
            again = json.loads(json.dumps(data.draw(service_specs(name, mode))))
            updated = await accepted(
                "service update", control.update_service(svc.ID, svc.Version.Index, again)
            )
            if updated is not None:
                await accepted(
                    "rollback", control.update_service(svc.ID, updated.Version.Index, None, True)
                )
        secret = {
            "Name": data.draw(names),
            "Labels": data.draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5))),
            "Data": base64.b64encode(data.draw(st.binary(max_size=20))).decode(),
        }
        await accepted("secret", control.create_secret(secret))
        await accepted("config", control.create_config(dict(secret, Name=data.draw(names))))
        await accepted(
            "network",
            control.create_network(
                {
                    "Name": data.draw(names),
                    "Driver": "overlay",
                    "Attachable": data.draw(st.booleans()),
                }
            ),
        )
        view = store.view()
        for obj in [o for t in store._tables.values() for o in t.objects.values()]:
            assert differences(obj, round_trip(obj)) == [], obj.KIND
        assert view.count(Service) <= 1
        store.close()  # and nothing stored was changed in place

    asyncio.run(run())

"""Control API calls on any manager: reads from its own store, writes on the leader.

Every manager holds the whole store (followers apply the same log), so reads are served
where they arrive. Writes must be proposed by the leader: on a follower, ``RoutedControl``
sends the call (method name and JSON arguments) to the leader's ``Control.Call``, which runs
it on its ``ControlAPI`` and answers with the result (or the error, with its class, so the
user sees the same message and HTTP status as on the leader) and the raft index applied
after it. The follower then waits until it has applied that index too, so a user who writes
through a follower reads the write back from it at once.
"""

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from shoal import errors
from shoal.api.objects import OBJECT_TYPES, StoredObject
from shoal.ca.server import NodeCAServicer
from shoal.clock import Clock
from shoal.manager.consensus.replica import NoLeader, Replica
from shoal.manager.controlapi.control import ControlAPI
from shoal.raft.types import NotLeader
from shoal.rpc import from_rpc_error, pb, pb_grpc, rpc_errors
from shoal.store import MemoryStore

log = logging.getLogger(__name__)

# How long a write waits for a leader to be elected before giving up with NO_LEADER.
LEADER_WAIT = 5.0
CALL_TIMEOUT = 60.0
# How long a follower waits to apply a forwarded write before answering anyway.
CATCH_UP_WAIT = 5.0


def encode_value(value: Any) -> Any:
    if isinstance(value, StoredObject):
        return {"Kind": value.KIND, "Object": value.to_json()}
    if isinstance(value, list | tuple):
        return {"List": [encode_value(v) for v in value]}
    return {"Value": value}


def decode_value(data: Any) -> Any:
    if "Kind" in data:
        return OBJECT_TYPES[data["Kind"]].model_validate(data["Object"])
    if "List" in data:
        return [decode_value(v) for v in data["List"]]
    return data["Value"]


def encode_error(err: errors.ShoalError) -> dict[str, str]:
    # The nearest class shoal.errors knows (raft's errors are Unavailable underneath).
    cls = next(c for c in type(err).__mro__ if getattr(errors, c.__name__, None) is c)
    return {"Type": cls.__name__, "Message": err.message}


def decode_error(data: dict[str, str]) -> errors.ShoalError:
    cls = getattr(errors, data.get("Type", ""), errors.ShoalError)
    if not (isinstance(cls, type) and issubclass(cls, errors.ShoalError)):
        cls = errors.ShoalError
    return cls(data.get("Message", ""))


def _writes(control: ControlAPI) -> set[str]:
    """The control API's writes: its public coroutine methods."""
    return {
        name
        for name, fn in inspect.getmembers(type(control), inspect.iscoroutinefunction)
        if not name.startswith("_")
    }


class RoutedControl:
    """What the engine API uses on a manager in place of the ``ControlAPI`` itself."""

    def __init__(self, local: ControlAPI, replica: Replica, clock: Clock) -> None:
        self._local = local
        self._replica = replica
        self._clock = clock
        self._write_names = _writes(local)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._local, name)
        if name not in self._write_names:
            return attr

        async def routed(*args: Any, **kwargs: Any) -> Any:
            return await self._write(name, attr, args, kwargs)

        return routed

    async def _write(
        self, name: str, local: Callable[..., Awaitable[Any]], args: tuple, kwargs: dict
    ) -> Any:
        payload = json.dumps({"Args": list(args), "Kwargs": kwargs}).encode()
        for _attempt in range(3):
            if self._replica.is_leader:
                try:
                    return await local(*args, **kwargs)
                except NotLeader:
                    pass  # lost leadership before proposing: nothing happened; go to the new one
            channel = await self._replica.leader_channel(LEADER_WAIT)
            if channel is None:
                continue  # this manager has just become the leader
            try:
                resp = await pb_grpc.ControlStub(channel).Call(
                    pb.ControlRequest(method=name, args=payload),
                    timeout=CALL_TIMEOUT,
                    metadata=self._replica.transport.metadata(),
                )
            except grpc.aio.AioRpcError as err:
                raise from_rpc_error(err) from None
            answer = json.loads(resp.result)
            if answer.get("NotLeader"):
                await self._clock.sleep(0.1)
                continue
            await self._catch_up(int(answer.get("Applied", 0)))
            if "Error" in answer:
                raise decode_error(answer["Error"])
            return decode_value(answer["Result"])
        raise NoLeader()

    async def _catch_up(self, index: int) -> None:
        node = self._replica.node
        if node is None or index <= 0:
            return
        try:
            await asyncio.wait_for(node.wait_applied(index), CATCH_UP_WAIT)
        except (TimeoutError, errors.ShoalError):
            log.info("answering before this manager applied index %d", index)


class ControlService(pb_grpc.ControlServicer):
    """The leader's end of forwarded control API writes."""

    def __init__(self, control: ControlAPI, replica: Replica) -> None:
        self._control = control
        self._replica = replica
        self._write_names = _writes(control)

    def add_to_server(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_ControlServicer_to_server(self, server)

    @rpc_errors
    async def Call(self, request, context):  # type: ignore[no-untyped-def]
        if request.method not in self._write_names:
            raise errors.InvalidArgument(f"no control method {request.method!r}")
        if not self._replica.is_leader:
            return pb.ControlResponse(result=json.dumps({"NotLeader": True}).encode())
        call = json.loads(request.args)
        answer: dict[str, Any] = {}
        try:
            fn = getattr(self._control, request.method)
            answer["Result"] = encode_value(await fn(*call["Args"], **call["Kwargs"]))
        except NotLeader:
            answer["NotLeader"] = True
        except errors.ShoalError as err:
            answer["Error"] = encode_error(err)
        node = self._replica.node
        answer["Applied"] = node.core.log.applied if node is not None and node.core else 0
        return pb.ControlResponse(result=json.dumps(answer).encode())


class ForwardingNodeCA(NodeCAServicer):
    """The NodeCA service on any manager: a follower passes certificate requests (which
    create the joining Node in the store) on to the leader."""

    def __init__(self, store: MemoryStore, clock: Clock, replica: Replica) -> None:
        super().__init__(store, clock)
        self._replica = replica

    @rpc_errors
    async def IssueNodeCertificate(self, request, context):  # type: ignore[no-untyped-def]
        channel = await self._replica.leader_channel(LEADER_WAIT)
        if channel is None:
            return await NodeCAServicer.IssueNodeCertificate.__wrapped__(self, request, context)  # type: ignore[attr-defined]
        try:
            return await pb_grpc.NodeCAStub(channel).IssueNodeCertificate(
                request, timeout=CALL_TIMEOUT, metadata=self._replica.transport.metadata()
            )
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None

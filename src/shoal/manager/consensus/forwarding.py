"""Control API calls on any manager: reads from its own store, writes on the leader.

Every manager holds the whole store (followers apply the same log), so reads are served
where they arrive (while a leader is known: a manager cut off from the others refuses, as
Swarm does, rather than serve state that may be stale). Writes must be proposed by the leader: on a follower, ``RoutedControl``
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
from typing import Any, TypeVar

import grpc
import grpc.aio

from shoal import errors
from shoal.api.objects import OBJECT_TYPES, StoredObject
from shoal.clock import Clock
from shoal.manager.consensus.replica import NoLeader, Replica
from shoal.manager.controlapi.control import ControlAPI
from shoal.manager.controlapi.sliced_read import is_sliced_read
from shoal.manager.nodeca.server import NodeCAServicer
from shoal.raft.types import NONE, NotLeader, ProposalDropped
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
    """The control API's writes: its public coroutine methods, but for the reads that are
    coroutines only to let the event loop run while they work (``@sliced_read``)."""
    return {
        name
        for name, fn in inspect.getmembers(type(control), inspect.iscoroutinefunction)
        if not name.startswith("_") and not is_sliced_read(fn)
    }


T = TypeVar("T")


def _never_reached(err: grpc.aio.AioRpcError) -> bool:
    """The call failed before reaching the leader (it is down): safe to make again."""
    return err.code() == grpc.StatusCode.UNAVAILABLE and "connect" in (err.details() or "")


class _TryAgain(Exception):
    pass


async def on_leader(
    replica: Replica,
    clock: Clock,
    local: Callable[[], Awaitable[T]],
    remote: Callable[[grpc.aio.Channel], Awaitable[T]],
    wait: float = LEADER_WAIT,
) -> T:
    """Run ``local()`` if this manager leads, else ``remote(channel)`` against the leader.
    While the leader cannot be reached (it died, and the election that replaces it has not
    ended yet) try again, for up to ``wait`` seconds; then fail with Swarm's no-leader error.
    ``remote`` may raise ``_TryAgain`` (the leader it reached had just lost leadership)."""
    deadline = clock.monotonic() + wait
    while True:
        if replica.is_leader:
            try:
                return await local()
            except (NotLeader, ProposalDropped):
                # Lost leadership before proposing, or the next leader overwrote the entry:
                # nothing happened; make the request again, of the new leader.
                pass
        channel = await replica.leader_channel(max(0.0, deadline - clock.monotonic()))
        if channel is not None:
            try:
                return await remote(channel)
            except grpc.aio.AioRpcError as err:
                if not _never_reached(err):
                    raise from_rpc_error(err) from None
                log.debug("leader unreachable (%s); waiting for the next one", err.details())
            except _TryAgain:
                pass
        if clock.monotonic() >= deadline:
            raise NoLeader()
        await clock.sleep(0.05)


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
            if callable(attr) and not name.startswith("_"):
                # Reads: this manager's store, unless no leader is known (the state may be
                # stale: Swarm refuses then too).
                if self._replica.leader_id == NONE:
                    raise NoLeader()
            return attr

        async def routed(*args: Any, **kwargs: Any) -> Any:
            return await self._write(name, attr, args, kwargs)

        return routed

    async def _write(
        self, name: str, local: Callable[..., Awaitable[Any]], args: tuple, kwargs: dict
    ) -> Any:
        payload = json.dumps({"Args": list(args), "Kwargs": kwargs}).encode()
        # With slow writes logged (see shoal.store.slow_writes): when each try was made and
        # answered, and how long this manager then took to catch up.
        slow = self._replica.store.slow_writes
        started = self._clock.monotonic()
        tries: list[str] = []

        async def remote(channel: grpc.aio.Channel) -> Any:
            made = self._clock.monotonic()
            resp = await pb_grpc.ControlStub(channel).Call(
                pb.ControlRequest(method=name, args=payload),
                timeout=CALL_TIMEOUT,
                metadata=self._replica.transport.metadata(),
            )
            answer = json.loads(resp.result)
            answered = self._clock.monotonic()
            if slow is not None:
                what = "not the leader" if answer.get("NotLeader") else "done"
                tries.append(
                    f"{what} {answered - made:.3f} s after a try at {made - started:.3f} s"
                )
            if answer.get("NotLeader"):
                raise _TryAgain()
            await self._catch_up(int(answer.get("Applied", 0)))
            if slow is not None:
                tries.append(f"caught up {self._clock.monotonic() - answered:.3f} s after")
            if "Error" in answer:
                raise decode_error(answer["Error"])
            return decode_value(answer["Result"])

        async def here() -> Any:
            if slow is not None:
                tries.append(f"run here, as leader, at {self._clock.monotonic() - started:.3f} s")
            return await local(*args, **kwargs)

        try:
            return await on_leader(self._replica, self._clock, here, remote)
        finally:
            took = self._clock.monotonic() - started
            if slow is not None and took >= slow:
                where = "; ".join(tries) or "no leader reached"
                log.info("slow forwarded write: %.3f s for %s (%s)", took, name, where)

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
    async def Call(
        self, request: pb.ControlRequest, context: grpc.aio.ServicerContext
    ) -> pb.ControlResponse:
        if request.method not in self._write_names:
            raise errors.InvalidArgument(f"no control method {request.method!r}")
        if not self._replica.is_leader:
            return pb.ControlResponse(result=json.dumps({"NotLeader": True}).encode())
        call = json.loads(request.args)
        answer: dict[str, Any] = {}
        try:
            fn = getattr(self._control, request.method)
            answer["Result"] = encode_value(await fn(*call["Args"], **call["Kwargs"]))
        except (NotLeader, ProposalDropped):
            answer["NotLeader"] = True  # nothing happened: the caller tries the new leader
        except errors.ShoalError as err:
            answer["Error"] = encode_error(err)
        node = self._replica.node
        # What this leader's store holds now, its answer's write included: the caller waits
        # to have applied as much before it answers (a client reads its own write there).
        answer["Applied"] = node.applied if node is not None else 0
        return pb.ControlResponse(result=json.dumps(answer).encode())


class ForwardingNodeCA(NodeCAServicer):
    """The NodeCA service on any manager: a follower passes certificate requests (which
    create the joining Node in the store) on to the leader."""

    def __init__(self, store: MemoryStore, clock: Clock, replica: Replica) -> None:
        super().__init__(store, clock)
        self._replica = replica

    @rpc_errors
    async def IssueNodeCertificate(
        self, request: pb.IssueNodeCertificateRequest, context: grpc.aio.ServicerContext
    ) -> pb.IssueNodeCertificateResponse:
        if not request.token:
            return self.renew(request, context)  # signing alone: any manager does it
        return await on_leader(
            self._replica,
            self._clock,
            lambda: self.join(request, context),
            lambda channel: pb_grpc.NodeCAStub(channel).IssueNodeCertificate(
                request, timeout=CALL_TIMEOUT, metadata=self._replica.transport.metadata()
            ),
        )

"""A proposal: the changes of one transaction, as they travel through the log."""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from shoal.api.base import share_field_sets
from shoal.api.objects import OBJECT_TYPES, StoredObject, Task

# Decodes a task's JSON values for the store (``MemoryStore.decode_task``).
TaskDecoder = Callable[[dict[str, Any]], Task]


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    obj: StoredObject  # for REMOVE, the object as it was last stored

    @property
    def kind(self) -> str:
        return self.obj.KIND


@dataclass(slots=True)
class Proposal:
    """The changes of one committed transaction; ``version`` becomes each object's
    Version.Index, and is strictly increasing along the log."""

    version: int
    changes: list[Change] = field(default_factory=list)

    def encode(self) -> dict[str, Any]:
        actions = []
        for c in self.changes:
            obj = {"ID": c.obj.ID} if c.action is Action.REMOVE else c.obj.to_json()
            actions.append({"Action": c.action.value, "Kind": c.kind, "Object": obj})
        return {"Version": self.version, "Actions": actions}

    def encode_json(self) -> bytes:
        """``encode()`` as compact JSON, each object serialized by pydantic directly (see
        ``Model.to_json_text``) rather than through Python values and ``json.dumps``."""
        actions = []
        for c in self.changes:
            obj = (
                json.dumps({"ID": c.obj.ID}) if c.action is Action.REMOVE else c.obj.to_json_text()
            )
            actions.append(f'{{"Action":"{c.action.value}","Kind":"{c.kind}","Object":{obj}}}')
        return f'{{"Version":{int(self.version)},"Actions":[{",".join(actions)}]}}'.encode()

    @classmethod
    def decode(cls, data: dict[str, Any], decode_task: TaskDecoder | None = None) -> "Proposal":
        """``decode_task``: how to decode a task that is to be stored (the store's, see
        ``MemoryStore.decode_task``); ``data`` is the caller's no longer then."""
        changes = []
        for a in data["Actions"]:
            action = Action(a["Action"])
            if decode_task is not None and a["Kind"] == "task" and action is not Action.REMOVE:
                obj: StoredObject = decode_task(a["Object"])
            else:
                obj = decode_object(a["Kind"], a["Object"])
            changes.append(Change(action, obj))
        return cls(version=int(data["Version"]), changes=changes)


def decode_object(kind: str, raw: dict[str, Any]) -> StoredObject:
    """An object of ``kind`` from its JSON values, decoded (and validated) to go into the
    store: its field-name sets shared (see share_field_sets: a third of a task's memory). A
    task to be stored is decoded by the store's ``decode_task`` instead, where there is one."""
    obj = OBJECT_TYPES[kind].model_validate(raw)
    share_field_sets(obj)
    return obj


def encode_proposal(proposal: Proposal) -> bytes:
    """A proposal as a raft log entry holds it."""
    return proposal.encode_json()


def decode_proposal(data: bytes, decode_task: TaskDecoder | None = None) -> Proposal:
    """A raft log entry's proposal, its objects decoded (and validated) afresh; its tasks by
    ``decode_task`` if given (see ``Proposal.decode``)."""
    return Proposal.decode(json.loads(data), decode_task)


class Proposer(Protocol):
    """The commit step of the write path.

    ``propose`` returns once the proposal is committed (durable on this node, or on a quorum
    of managers) and applied to the store; it raises if it cannot commit (for example, this
    manager is not the Raft leader), and then nothing is applied.
    """

    async def propose(self, proposal: Proposal) -> None: ...


@runtime_checkable
class PipelinedProposer(Proposer, Protocol):
    """A proposer that takes a proposal before the ones ahead of it have committed: the
    store's writes then follow one another through the log without each waiting for the
    last (a raft round trip under load is 100-200 ms: with one at a time, the leader of a
    1,000-node fleet sat idle a third of the time while writes queued, issue 15).

    Proposals submitted with one ``chain`` are each built on the state the ones before it
    leave, and are committed in that order or not at all: the first that fails fails every
    one after it."""

    def chain(self) -> object | None:
        """A new chain to submit on (None: this proposer takes no writes now)."""
        ...

    def continues(self, chain: object) -> bool:
        """Whether a proposal may still follow those of ``chain`` (none failed, and nothing
        happened that would make the next one fail, such as a change of leader)."""
        ...

    def submit(self, proposal: Proposal, chain: object) -> Awaitable[None]:
        """Take ``proposal`` after those submitted on ``chain`` before it, at once (its place
        in the order is fixed when this returns), and give what to await for its commit and
        apply (which ends as ``propose`` does). Raises at once if it cannot be taken."""
        ...

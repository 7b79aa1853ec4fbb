"""Is a proposal's object exactly what its encoding decodes to?

The raft leader stores the objects of its own proposals as the transaction made them, where a
follower (and the leader itself, replaying its log after a restart) stores what it decodes
from the log entry. That is sound only if decoding an encoded object gives it back field for
field: ``differences`` says where two objects differ, stricter than ``==`` (the types must
match too: an enum and its string, an int and a float, two time zones at one instant are all
``==`` but behave apart), and ``check_proposal`` compares a proposal with its encoding.

Tests turn the check on for every proposal (``SHOAL_CHECK_PROPOSALS=1``; see
``CHECK_PROPOSALS``): the stores of the unit suite and the leader's own applies then fail
loudly on an object that would not survive the log.
"""

import datetime as dt
import math
import os
from typing import Any

from pydantic import BaseModel

from shoal.api.objects import StoredObject
from shoal.store.proposal import Action, Proposal, decode_proposal

# Decode every proposal a store applies from its writer's objects, and compare (tests).
CHECK_PROPOSALS = os.environ.get("SHOAL_CHECK_PROPOSALS", "") not in ("", "0")


class ProposalMismatch(AssertionError):
    """An object of a proposal is not what its encoding decodes to."""


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where ``a`` and ``b`` differ: each a path and what differs there (empty: the same).

    Models: every field and every extra field, in order (the fields set, which nothing in
    shoal reads, is not compared). Dicts: the same keys in the same order. Datetimes: the
    same instant in the same zone. Floats: ``==`` and the same sign (0.0 and -0.0).
    Everything else: the same type and ``==``."""
    where = path or "<object>"
    if type(a) is not type(b):
        return [f"{where}: {type(a).__name__} {a!r} != {type(b).__name__} {b!r}"]
    if isinstance(a, BaseModel):
        found: list[str] = []
        for name in type(a).__pydantic_fields__:
            found += differences(a.__dict__.get(name), b.__dict__.get(name), f"{path}.{name}")
        found += differences(
            dict(a.__pydantic_extra__ or {}), dict(b.__pydantic_extra__ or {}), f"{path}.<extra>"
        )
        return found
    if isinstance(a, dict):
        if list(a) != list(b):
            return [f"{where}: keys {list(a)!r} != {list(b)!r}"]
        return [d for k in a for d in differences(a[k], b[k], f"{path}[{k!r}]")]
    if isinstance(a, list | tuple):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items != {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, dt.datetime):
        # The same zone: the same offset under the same name (datetime.UTC and pydantic's
        # TzInfo(0), which decoding gives, are both "UTC" at +00:00, alike in every use).
        if a.tzinfo is not b.tzinfo and (
            a.utcoffset() != b.utcoffset() or a.tzname() != b.tzname()
        ):
            return [f"{where}: zone {a.tzinfo!r} != {b.tzinfo!r}"]
        return [] if a == b else [f"{where}: {a.isoformat()} != {b.isoformat()}"]
    if isinstance(a, float) and a == b and math.copysign(1, a) != math.copysign(1, b):
        return [f"{where}: {a!r} != {b!r}"]  # 0.0 and -0.0
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def check_proposal(proposal: Proposal, data: bytes) -> None:
    """Raise ``ProposalMismatch`` unless ``data`` (the proposal's encoding) decodes to the
    proposal's changes: same actions and kinds, and each object field for field (a removal
    carries only its ID in the log, which is all applying it uses)."""
    decoded = decode_proposal(data)
    found: list[str] = []
    if decoded.version != proposal.version or len(decoded.changes) != len(proposal.changes):
        found.append(
            f"version {proposal.version} with {len(proposal.changes)} changes decoded as "
            f"{decoded.version} with {len(decoded.changes)}"
        )
    for mine, theirs in zip(proposal.changes, decoded.changes, strict=False):
        label = f"{mine.action.value} {mine.kind} {mine.obj.ID}"
        if (mine.action, mine.kind) != (theirs.action, theirs.kind):
            found.append(f"{label}: decoded as {theirs.action.value} {theirs.kind}")
        elif mine.action is Action.REMOVE:
            if mine.obj.ID != theirs.obj.ID:
                found.append(f"{label}: decoded as ID {theirs.obj.ID}")
        else:
            found += [f"{label}: {d}" for d in differences(mine.obj, theirs.obj)]
    if found:
        raise ProposalMismatch(
            "an object would not survive the raft log as it is:\n  " + "\n  ".join(found)
        )


class StoredObjectChanged(AssertionError):
    """An object was changed in place after the store took it (writers clone first)."""


class StoredTexts:
    """With ``CHECK_PROPOSALS`` on, a store remembers each object it stores as the log would
    hold it, and checks the object still reads so when it is replaced, removed, or the store
    closes: objects in the store are shared (with readers, watchers, and on the leader with
    the writer that proposed them) and must never change."""

    def __init__(self) -> None:
        self._texts: dict[tuple[str, str], tuple[StoredObject, str]] = {}

    def stored(self, obj: StoredObject) -> None:
        self._texts[(obj.KIND, obj.ID)] = (obj, obj.to_json_text())

    def left(self, obj: StoredObject) -> None:
        """``obj`` is no longer in the store (replaced or removed)."""
        held = self._texts.pop((obj.KIND, obj.ID), None)
        if held is not None and held[0] is obj:
            self._check(obj, held[1])

    def check_all(self) -> None:
        for obj, text in self._texts.values():
            self._check(obj, text)

    def clear(self) -> None:
        self._texts.clear()

    @staticmethod
    def _check(obj: StoredObject, text: str) -> None:
        if obj.to_json_text() == text:
            return
        was = type(obj).model_validate_json(text)
        found = differences(was, obj) or ["(its JSON differs)"]
        raise StoredObjectChanged(
            f"{obj.KIND} {obj.ID} was changed in place after it was stored:\n  "
            + "\n  ".join(found)
        )

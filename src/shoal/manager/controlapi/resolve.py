"""Finding an object from what a user typed: a full ID, a name, or an ID prefix (in that
order), with Docker's "not found" and "ambiguous" errors."""

from typing import TypeVar

from shoal.api.objects import Node, Service, StoredObject, Task
from shoal.errors import InvalidArgument, NotFound
from shoal.store import ReadTx

T = TypeVar("T", bound=StoredObject)


def _pick(kind: str, ref: str, found: list[T]) -> T:
    if not found:
        raise NotFound(f"{kind} {ref} not found")
    if len(found) > 1:
        raise InvalidArgument(f"{kind} {ref} is ambiguous ({len(found)} matches found)")
    return found[0]


def resolve_service(view: ReadTx, ref: str) -> Service:
    if ref and (svc := view.get(Service, ref)) is not None:
        return svc
    by_name = view.find(Service, "name", ref.lower()) if ref else []
    found = [s for s in by_name if s.Spec.Name == ref] or by_name
    if not found and ref:
        found = view.find_by_prefix(Service, ref)
    return _pick("service", ref, found)


def resolve_node(view: ReadTx, ref: str) -> Node:
    if ref and (node := view.get(Node, ref)) is not None:
        return node
    found = view.find(Node, "name", ref.lower()) if ref else []
    if not found and ref:
        found = view.find_by_prefix(Node, ref)
    return _pick("node", ref, found)


def resolve_task(view: ReadTx, ref: str) -> Task:
    if ref and (task := view.get(Task, ref)) is not None:
        return task
    found = view.find_by_prefix(Task, ref) if ref else []
    return _pick("task", ref, found)

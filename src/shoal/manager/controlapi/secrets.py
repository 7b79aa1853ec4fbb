"""The control API's secrets and configs: create, read, list, update (labels only) and
remove, looked up as Docker's daemon looks them up, refused in swarmkit's words. Secrets and
configs behave alike, so one set of functions serves both, told which by an ``ObjectKind``.

A secret's data is stored (the store is replicated to managers only) but never shown: the
engine API answers with ``Secret.to_api()``, which leaves ``Spec.Data`` out.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from shoal.api.ids import new_id
from shoal.api.objects import Config, Secret, Service
from shoal.api.specs import ConfigSpec, SecretSpec, ServiceSpec
from shoal.errors import Conflict, InvalidArgument, NotFound, swarm_error
from shoal.manager.controlapi.filters import Filters
from shoal.manager.controlapi.validate_secrets import (
    check_labels_only,
    in_use,
    references_not_found,
    validate_config_spec,
    validate_secret_spec,
)
from shoal.store import MemoryStore, ReadTx, Tx

Obj = TypeVar("Obj", Secret, Config)


@dataclass(frozen=True)
class ObjectKind(Generic[Obj]):
    word: str  # "secret" or "config", as messages name it
    cls: type[Obj]
    validate: Callable[[Any], None]
    # The list filters Docker's daemon accepts (configs have no "names").
    filters: frozenset[str]


SECRETS: ObjectKind[Secret] = ObjectKind(
    "secret", Secret, validate_secret_spec, frozenset({"names", "name", "id", "label"})
)
CONFIGS: ObjectKind[Config] = ObjectKind(
    "config", Config, validate_config_spec, frozenset({"name", "id", "label"})
)


def _spec_type(kind: ObjectKind[Any]) -> type[SecretSpec] | type[ConfigSpec]:
    return SecretSpec if kind.cls is Secret else ConfigSpec


def parse_spec(kind: ObjectKind[Obj], data: Any) -> Any:
    try:
        spec = _spec_type(kind).model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise InvalidArgument(f"invalid {kind.word} spec: {loc}: {first['msg']}") from None
    # Docker shows a secret's or config's labels as {} when it has none.
    spec.Labels = dict(spec.Labels or {})
    return spec


def resolve(view: ReadTx, kind: ObjectKind[Obj], ref: str) -> Obj:
    """By full ID, then by name (any case, as swarmkit's name index), then by ID prefix: the
    order of Docker's daemon (daemon/cluster/helpers.go)."""
    if ref:
        found = view.get(kind.cls, ref)
        if found is not None:
            return found
        by_name = view.find(kind.cls, "name", ref.lower())
        if by_name:
            return by_name[0]
        by_prefix = view.find_by_prefix(kind.cls, ref)
        if len(by_prefix) > 1:
            raise InvalidArgument(
                f"{kind.word} {ref} is ambiguous ({len(by_prefix)} matches found)"
            )
        if by_prefix:
            return by_prefix[0]
    raise NotFound(f"{kind.word} {ref} not found")


def _labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    """swarmkit's label filter: each label present, with the value given if one is."""
    for item in wanted:
        key, _, value = item.partition("=")
        if key not in labels or (value and labels[key] != value):
            return False
    return True


def select(kind: ObjectKind[Obj], objects: list[Obj], filters: Filters) -> list[Obj]:
    """Docker's list filters: ``names`` (exact), ``name`` (prefix; both any case) and ``id``
    (prefix) select what matches any of them; every ``label`` must match."""
    filters.validate(kind.filters)
    names = [n.lower() for n in filters.get("names")]
    prefixes = [n.lower() for n in filters.get("name")]
    ids = filters.get("id")
    result = []
    for obj in sorted(objects, key=lambda o: o.ID):
        name = obj.Spec.Name.lower()
        if (names or prefixes or ids) and not (
            name in names
            or any(name.startswith(p) for p in prefixes)
            or any(obj.ID.startswith(i) for i in ids)
        ):
            continue
        if not _labels_match(obj.Spec.Labels or {}, filters.get("label")):
            continue
        result.append(obj)
    return result


def check_references_exist(view: ReadTx, spec: ServiceSpec) -> None:
    """Every secret and config a service names is there, under that name (swarmkit's
    checkSecretExistence and checkConfigExistence)."""
    container = spec.TaskTemplate.ContainerSpec
    if container is None:
        return
    missing = [
        ref.SecretName
        for ref in container.Secrets or ()
        if (s := view.get(Secret, ref.SecretID)) is None or s.Spec.Name != ref.SecretName
    ]
    if missing:
        raise references_not_found("secret", missing)
    missing = [
        ref.ConfigName
        for ref in container.Configs or ()
        if (c := view.get(Config, ref.ConfigID)) is None or c.Spec.Name != ref.ConfigName
    ]
    if missing:
        raise references_not_found("config", missing)


class SecretControl:
    """Mixed into ControlAPI: its store and write path."""

    store: MemoryStore
    _update: Callable[[Callable[[Tx], Any]], Awaitable[Any]]

    # --- secrets ----------------------------------------------------------------------------

    async def create_secret(self, spec: dict[str, Any]) -> Secret:
        return await self._create(SECRETS, spec)

    def list_secrets(self, filters: Filters | None = None) -> list[Secret]:
        return select(SECRETS, self.store.view().list(Secret), filters or Filters())

    def get_secret(self, ref: str) -> Secret:
        return resolve(self.store.view(), SECRETS, ref)

    async def update_secret(self, ref: str, version: int, spec: dict[str, Any]) -> Secret:
        return await self._update_labels(SECRETS, ref, version, spec)

    async def remove_secret(self, ref: str) -> None:
        await self._remove(SECRETS, ref)

    # --- configs ----------------------------------------------------------------------------

    async def create_config(self, spec: dict[str, Any]) -> Config:
        return await self._create(CONFIGS, spec)

    def list_configs(self, filters: Filters | None = None) -> list[Config]:
        return select(CONFIGS, self.store.view().list(Config), filters or Filters())

    def get_config(self, ref: str) -> Config:
        return resolve(self.store.view(), CONFIGS, ref)

    async def update_config(self, ref: str, version: int, spec: dict[str, Any]) -> Config:
        return await self._update_labels(CONFIGS, ref, version, spec)

    async def remove_config(self, ref: str) -> None:
        await self._remove(CONFIGS, ref)

    # --- both -------------------------------------------------------------------------------

    async def _create(self, kind: ObjectKind[Obj], data: dict[str, Any]) -> Obj:
        spec = parse_spec(kind, data)
        kind.validate(spec)
        obj = kind.cls(ID=new_id(), Spec=spec)

        def fn(tx: Tx) -> Obj:
            if tx.find(kind.cls, "name", spec.Name.lower()):
                raise swarm_error(Conflict, f"{kind.word} {spec.Name} already exists")
            return tx.create(obj)

        result: Obj = await self._update(fn)
        return result

    async def _update_labels(
        self, kind: ObjectKind[Obj], ref: str, version: int, data: dict[str, Any]
    ) -> Obj:
        new_spec = parse_spec(kind, data)
        obj_id = resolve(self.store.view(), kind, ref).ID

        def fn(tx: Tx) -> Obj:
            current = tx.get(kind.cls, obj_id)
            if current is None:
                raise swarm_error(NotFound, f"{kind.word} {obj_id} not found")
            labels = check_labels_only(current.Spec, new_spec)
            obj = current.clone()
            obj.Version.Index = version
            obj.Spec.Labels = labels
            return tx.update(obj)

        result: Obj = await self._update(fn)
        return result

    async def _remove(self, kind: ObjectKind[Obj], ref: str) -> None:
        obj_id = resolve(self.store.view(), kind, ref).ID

        def fn(tx: Tx) -> None:
            current = tx.get(kind.cls, obj_id)
            if current is None:
                raise swarm_error(NotFound, f"could not find {kind.word} {obj_id}")
            users = sorted(tx.find(Service, kind.word, obj_id), key=lambda s: s.ID)
            if users:
                raise in_use(kind.word, current.Spec.Name, [s.Spec.Name for s in users])
            tx.delete(kind.cls, obj_id)

        await self._update(fn)

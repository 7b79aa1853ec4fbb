"""Common pieces of every stored object: the base model, versions and metadata."""

import datetime as _dt
from collections.abc import Mapping
from typing import Annotated, Any, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator
from pydantic_core import core_schema

EPOCH = _dt.datetime(1, 1, 1, tzinfo=_dt.UTC)
_object_setattr = object.__setattr__


def rfc3339nano(t: _dt.datetime) -> str:
    """A time as Go's RFC3339Nano writes it: UTC as "Z", no trailing zeros in the fraction
    (Docker's clients re-encode what they read, so this is what they print)."""
    t = t.astimezone(_dt.UTC) if t.tzinfo else t.replace(tzinfo=_dt.UTC)
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if t.microsecond:
        text += f".{t.microsecond:06d}".rstrip("0")
    return text + "Z"


class _InUTC:
    """A pydantic marker: a datetime in UTC, and nothing else (a time without a zone, or at
    another offset, is refused as bad input; pydantic checks it, at no cost).

    So that an object a manager made and the same object decoded from the raft log (which
    writes every time in UTC) hold the same time in the same zone, ``.hour`` and ``.date()``
    included. Every time shoal makes is in UTC (the clock's, agents', Docker's); converting
    instead would cost every decode a Python call per timestamp (about 20% of a task's).
    UTC here is ``datetime.UTC`` or, parsed from text, pydantic's ``TzInfo(0)``: the same in
    every use (name, offset, arithmetic, hash)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.datetime_schema(tz_constraint=0)


# Every timestamp of the API model: a datetime in UTC that serializes as Go's RFC3339Nano.
Timestamp = Annotated[_dt.datetime, _InUTC, PlainSerializer(rfc3339nano, when_used="json")]


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


class _FieldNames:
    """A model's field names as the body decoder looks them up."""

    def __init__(self, model: type[BaseModel]) -> None:
        fields = model.__pydantic_fields__
        self.exact = frozenset(fields)
        self.lower = {name.lower(): name for name in fields}


_FIELD_NAMES: dict[type[BaseModel], _FieldNames] = {}


def _field_names(model: type[BaseModel]) -> _FieldNames:
    names = _FIELD_NAMES.get(model)
    if names is None:
        names = _FIELD_NAMES[model] = _FieldNames(model)
    return names


def go_field_names(data: dict[str, Any], names: _FieldNames) -> dict[str, Any]:
    """A JSON object's keys as Go's encoding/json matches them to a struct's fields: the
    exact name, else the one equal to it regardless of case; unknown keys kept as they are,
    but for those whose value is null (as absent: an extra field set to None would not
    survive the raft log, which leaves out every None). Where two keys name one field the
    later wins, as in Go."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key if key in names.exact else names.lower.get(key.lower())
        if name is not None:
            out[name] = value
        elif value is not None:
            out[key] = value
    return out


# One set per distinct set of names; see ``share_field_sets``. And their ids (they live as
# long as the process): a model whose set is one of them is shared already, with its models.
_FIELD_SETS: dict[frozenset[str], set[str]] = {}
_SHARED_IDS: set[int] = set()


def share_field_sets(model: BaseModel) -> None:
    """Make ``model`` and the models in it share their ``__pydantic_fields_set__`` (the
    names given when each was made) with every other model that has the same names.

    For objects kept in the store: pydantic gives each model its own set, over a third of a
    stored task's memory (12 models, 3.6 KB of 9.2 KB). Nothing in shoal reads these sets
    (no ``exclude_unset``); pydantic copies the set when it copies a model and only adds to
    it when a field of that very model is set, which stored objects never are (they are
    copied before being changed).

    A model shared already is left as it is, with the models in it (they were shared with
    it): the raft leader stores its writers' objects, mostly copies of stored objects with a
    few parts new (``model_copy`` gives the copy a set of its own), and walks only those."""
    names = model.__pydantic_fields_set__
    if id(names) in _SHARED_IDS:
        return
    key = frozenset(names)
    shared = _FIELD_SETS.get(key)
    if shared is None:
        shared = _FIELD_SETS[key] = set(key)
        _SHARED_IDS.add(id(shared))
    _object_setattr(model, "__pydantic_fields_set__", shared)
    values = model.__dict__
    for name in _model_fields(type(model)):
        value = values.get(name)
        if value is None:
            continue
        if isinstance(value, BaseModel):
            share_field_sets(value)
        elif type(value) is list or type(value) is dict:
            for item in value.values() if type(value) is dict else value:
                if isinstance(item, BaseModel):
                    share_field_sets(item)


# Per model class: the fields whose type may hold models (directly, in a list or a dict).
_MODEL_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {}


def _model_fields(cls: type[BaseModel]) -> tuple[str, ...]:
    found = _MODEL_FIELDS.get(cls)
    if found is None:
        found = _MODEL_FIELDS[cls] = tuple(
            name
            for name, info in cls.__pydantic_fields__.items()
            if _may_hold_models(info.annotation)
        )
    return found


def _may_hold_models(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_may_hold_models(arg) for arg in get_args(annotation))


class Model(BaseModel):
    """Base of every API model.

    Unknown fields are kept (``extra="allow"``) so that a Docker client that reads an object,
    changes one field and sends it back loses nothing we do not model yet.

    Every object is read as Docker's daemon decodes a request body (Go's encoding/json):
    field names in any case (docker-py sends ``"Mode": {"global": {}}``). (A ``null`` is as
    if absent, as to Go: ``read_json`` drops them from every body the API reads.)
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, validate_assignment=False)

    @model_validator(mode="before")
    @classmethod
    def _go_json(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        names = _field_names(cls)
        # The common case (our own objects, Docker's CLI), every key exact, costs one set
        # comparison: clone() validates every object the store changes.
        if data.keys() <= names.exact:
            return data
        return go_field_names(data, names)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """As pydantic's ``model_copy``; the shallow copy (what the store's writers make for
        every task they change) without its generic ``copy.copy`` calls, about a third
        cheaper. Same result: the fields and extras copied, ``update`` applied (its unknown
        keys become extras), the updated names added to the fields set."""
        private = getattr(self, "__pydantic_private__", None)
        if deep or private:
            return super().model_copy(update=update, deep=deep)
        cls = type(self)
        new = cls.__new__(cls)
        values = self.__dict__.copy()
        extra = self.__pydantic_extra__
        if extra is not None:
            extra = extra.copy()
        fields_set = self.__pydantic_fields_set__.copy()
        if update:
            fields = cls.__pydantic_fields__
            for key, value in update.items():
                if key in fields:
                    values[key] = value
                elif value is not None:  # an unknown key set to None is as absent: see above
                    if extra is None:
                        extra = {}
                    extra[key] = value
            fields_set.update(update.keys())
        _object_setattr(new, "__dict__", values)
        _object_setattr(new, "__pydantic_extra__", extra)
        _object_setattr(new, "__pydantic_fields_set__", fields_set)
        _object_setattr(new, "__pydantic_private__", private)
        return new

    def clone(self) -> Self:
        """A deep copy to modify: objects read from the store are shared and must not change."""
        # A round trip through Python values is about four times faster than copy.deepcopy.
        return type(self).model_validate(self.model_dump())

    def to_json(self) -> dict[str, Any]:
        """The object as the Docker Engine API shows it."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_json_text(self) -> str:
        """``to_json()`` as JSON text, serialized by pydantic in one call: half the cost of
        ``json.dumps(to_json())`` (the raft log and snapshots write every object this way).
        Non-ASCII characters are written as UTF-8 rather than escaped; the value is the same."""
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def from_json(cls, data: Any) -> Self:
        return cls.model_validate(data)


class Version(Model):
    Index: int = 0


_Version = Version


class Annotations(Model):
    Name: str = ""
    Labels: dict[str, str] = Field(default_factory=dict)


class Meta(Model):
    """ID, version and timestamps, shared by all stored objects (flattened into each)."""

    ID: str = ""
    Version: _Version = Field(default_factory=_Version)
    CreatedAt: Timestamp = EPOCH
    UpdatedAt: Timestamp = EPOCH

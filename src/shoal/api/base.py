"""Common pieces of every stored object: the base model, versions and metadata."""

import datetime as _dt
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

EPOCH = _dt.datetime(1, 1, 1, tzinfo=_dt.UTC)


def rfc3339nano(t: _dt.datetime) -> str:
    """A time as Go's RFC3339Nano writes it: UTC as "Z", no trailing zeros in the fraction
    (Docker's clients re-encode what they read, so this is what they print)."""
    t = t.astimezone(_dt.UTC) if t.tzinfo else t.replace(tzinfo=_dt.UTC)
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if t.microsecond:
        text += f".{t.microsecond:06d}".rstrip("0")
    return text + "Z"


# Every timestamp of the API model: a datetime that serializes as Go's RFC3339Nano.
Timestamp = Annotated[_dt.datetime, PlainSerializer(rfc3339nano, when_used="json")]


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


class Model(BaseModel):
    """Base of every API model.

    Unknown fields are kept (``extra="allow"``) so that a Docker client that reads an object,
    changes one field and sends it back loses nothing we do not model yet.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, validate_assignment=False)

    def clone(self) -> Self:
        """A deep copy to modify: objects read from the store are shared and must not change."""
        # A round trip through Python values is about four times faster than copy.deepcopy.
        return type(self).model_validate(self.model_dump())

    def to_json(self) -> dict[str, Any]:
        """The object as the Docker Engine API shows it."""
        return self.model_dump(mode="json", exclude_none=True)

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

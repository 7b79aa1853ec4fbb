"""Common pieces of every stored object: the base model, versions and metadata."""

import datetime as _dt
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

EPOCH = _dt.datetime(1, 1, 1, tzinfo=_dt.UTC)


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
    CreatedAt: _dt.datetime = EPOCH
    UpdatedAt: _dt.datetime = EPOCH

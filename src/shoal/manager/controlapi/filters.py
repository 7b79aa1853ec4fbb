"""Docker's list filters: ``?filters={"name":{"web":true}}`` (or the older
``{"name":["web"]}``), validated against the keys each list accepts."""

import json
from collections.abc import Iterable

from shoal.errors import InvalidArgument


class Filters:
    def __init__(self, values: dict[str, list[str]] | None = None) -> None:
        self.values: dict[str, list[str]] = values or {}

    @classmethod
    def parse(cls, raw: str | None) -> "Filters":
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as err:
            raise InvalidArgument(f"invalid filter '{raw}': {err.msg}") from None
        if not isinstance(data, dict):
            raise InvalidArgument(f"invalid filter '{raw}'")
        values: dict[str, list[str]] = {}
        for key, val in data.items():
            if isinstance(val, dict):
                values[key] = [k for k, on in val.items() if on]
            elif isinstance(val, list):
                values[key] = [str(v) for v in val]
            else:
                raise InvalidArgument(f"invalid filter '{raw}'")
        return cls(values)

    def validate(self, accepted: Iterable[str]) -> None:
        allowed = set(accepted)
        for key in self.values:
            if key not in allowed:
                # Docker 20.10's words (filters.Args.Validate), for every list.
                raise InvalidArgument(f"Invalid filter '{key}'")

    def get(self, key: str) -> list[str]:
        return self.values.get(key, [])

    def __contains__(self, key: str) -> bool:
        return bool(self.values.get(key))

    def to_json(self) -> dict[str, list[str]]:
        return self.values

    def match_prefix(self, key: str, value: str) -> bool:
        """No filter on ``key``, or ``value`` starts with one of its values."""
        wanted = self.get(key)
        return not wanted or any(value.startswith(w) for w in wanted)

    def match_exact(self, key: str, value: str) -> bool:
        wanted = self.get(key)
        return not wanted or value in wanted

    def match_labels(self, key: str, labels: dict[str, str]) -> bool:
        """``label=k`` needs the label; ``label=k=v`` needs that value. All must hold."""
        for item in self.get(key):
            name, sep, val = item.partition("=")
            if name not in labels or (sep and labels[name] != val):
                return False
        return True

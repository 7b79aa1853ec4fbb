"""Docker's filters of ``GET /events`` (daemon/events/filter.go): type, event, scope and
label match exactly; the name filters (container, image, network, service, node, secret,
config, volume, plugin, daemon) match the actor's ID or name, or a prefix of either, on
events of every type. Keys the daemon does not know are accepted and change nothing, as
Docker's do."""

from shoal.engineapi.event_log import Message
from shoal.manager.controlapi.filters import Filters

# The name filters, each the type its values name.
_NAME_FILTERS = (
    "daemon",
    "container",
    "plugin",
    "volume",
    "network",
    "image",
    "node",
    "service",
    "secret",
    "config",
)
# Events whose action carries a detail after a colon ("exec_start: sh"): a filter on one of
# these matches any action that starts with it.
_FUZZY_EVENTS = frozenset({"health_status", "exec_create", "exec_start"})


class EventFilter:
    def __init__(self, filters: Filters) -> None:
        self._filters = filters

    @property
    def empty(self) -> bool:
        return not any(self._filters.values.values())

    def matches(self, message: Message) -> bool:
        f = self._filters
        actor = message.get("Actor") or {}
        attributes = actor.get("Attributes") or {}
        return (
            self._match_event(message.get("Action", ""))
            and f.match_exact("type", message.get("Type", ""))
            and f.match_exact("scope", message.get("scope", ""))
            and all(
                self._fuzzy(key, actor.get("ID", "")) or self._fuzzy(key, attributes.get("name"))
                for key in _NAME_FILTERS
            )
            and self._match_labels(attributes)
        )

    def _match_event(self, action: str) -> bool:
        wanted = self._filters.get("event")
        if not wanted or action in wanted:
            return True
        if _FUZZY_EVENTS.intersection(wanted):
            return any(action.startswith(w) for w in wanted)
        return False

    def _fuzzy(self, key: str, value: str | None) -> bool:
        """Docker's FuzzyMatch: no filter on ``key``, or a value equal to or a prefix of
        ``value`` (an absent name is the empty string)."""
        wanted = self._filters.get(key)
        if not wanted:
            return True
        text = value or ""
        return any(text.startswith(w) for w in wanted)

    def _match_labels(self, attributes: dict[str, str]) -> bool:
        """Docker's MatchKVList: every ``label=k`` needs the attribute, ``label=k=v`` that
        value; nothing matches a label filter when there are no attributes."""
        wanted = self._filters.get("label")
        if not wanted:
            return True
        if not attributes:
            return False
        return self._filters.match_labels("label", attributes)

"""When each node must next be heard from. Pure: the caller passes the time."""

HEARTBEAT_MISSES = 3  # a node is down after this many heartbeat periods without one


class HeartbeatDeadlines:
    def __init__(self) -> None:
        self._deadline: dict[str, float] = {}

    def beat(self, node_id: str, now: float, period: float) -> None:
        self._deadline[node_id] = now + period * HEARTBEAT_MISSES

    def forget(self, node_id: str) -> None:
        self._deadline.pop(node_id, None)

    def __contains__(self, node_id: str) -> bool:
        return node_id in self._deadline

    def expired(self, now: float) -> list[str]:
        """Nodes whose deadline passed; they are forgotten (report each once)."""
        late = [n for n, d in self._deadline.items() if d <= now]
        for n in late:
            del self._deadline[n]
        return late

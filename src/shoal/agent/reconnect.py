"""How long the agent waits before it tries the managers again. Pure: no clock, no I/O."""

FIRST_DELAY = 0.1
MAX_DELAY = 5.0


class ReconnectBackoff:
    """Doubling waits between failed tries (0.1, 0.2, 0.4... up to 5 s), started afresh once
    a session was up: a session that breaks after running a while is retried 0.1 s later,
    whatever the tries before it cost. (Carried over, the doubling left a node that had lost
    a few sessions over its life waiting 5 s before its first try, past the managers'
    reconnect grace, so its tasks were moved for nothing.) A manager that names the leader
    is followed at once."""

    def __init__(self) -> None:
        self._delay = FIRST_DELAY

    def next_delay(self, *, session_was_up: bool, redirected: bool = False) -> float:
        """Seconds to wait before the next try, after one that ended as described."""
        if session_was_up or redirected:
            self._delay = FIRST_DELAY
        if redirected:
            return 0.0
        delay = self._delay
        self._delay = min(self._delay * 2, MAX_DELAY)
        return delay

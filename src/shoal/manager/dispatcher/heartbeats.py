"""When each node must next be heard from. Pure: the caller passes the time.

Two ways to miss a deadline: a node that says nothing for HEARTBEAT_MISSES heartbeat periods
(its machine vanished: no packet says so), and a node whose session broke (its connection
closed or reset: its daemon or machine died, and the kernel said so) and that opened no new
one within the reconnect grace. The second is what lets a lost worker's tasks move in
seconds rather than after three heartbeat periods."""

HEARTBEAT_MISSES = 3  # a node is down after this many heartbeat periods without one
# How long a node whose session broke has to open a new one before it is down. An agent that
# is alive reconnects at once (its first retry is 0.1 s after the break, then 0.2, 0.4, 0.8:
# four tries within 1.5 s, each a TLS handshake on a loaded machine); 2 s leaves room for
# those and still puts a lost worker's tasks back within about 3 s.
DEFAULT_RECONNECT_GRACE = 2.0


HEARTBEAT = "heartbeat"  # why a node is down: nothing heard for HEARTBEAT_MISSES periods
SESSION = "session"  # its session broke and no new one came within the grace
# Each reason in words, for the log line that says a node is down.
DOWN_WHY = {
    HEARTBEAT: f"no heartbeat for {HEARTBEAT_MISSES} heartbeat periods",
    SESSION: "its session broke and it opened no new one within the reconnect grace",
}


class HeartbeatDeadlines:
    def __init__(self) -> None:
        self._deadline: dict[str, float] = {}
        self._restarting: set[str] = set()
        self._broken: set[str] = set()  # whose deadline is a broken session's grace

    def beat(self, node_id: str, now: float, period: float) -> None:
        """The node was heard from (a heartbeat, or a new session)."""
        self._deadline[node_id] = now + period * HEARTBEAT_MISSES
        self._restarting.discard(node_id)
        self._broken.discard(node_id)

    def restarting(self, node_id: str, now: float, period: float) -> None:
        """The node said its daemon is stopping on purpose: when its session ends, it keeps
        its heartbeat timeout to come back (until it is heard from again)."""
        self.beat(node_id, now, period)
        self._restarting.add(node_id)

    def session_broke(self, node_id: str, now: float, grace: float) -> None:
        """The node's session ended from its side: it is down unless a new session comes
        within ``grace`` (or, if it said it was restarting, within its heartbeat timeout).
        Never moves a deadline later."""
        if node_id in self._restarting:
            return
        deadline = now + max(0.0, grace)
        current = self._deadline.get(node_id)
        if current is None or deadline < current:
            self._deadline[node_id] = deadline
            self._broken.add(node_id)

    def postpone(self, seconds: float) -> None:
        """Move every deadline later: the dispatcher could not hear anyone for ``seconds``
        (its event loop was held), and a heartbeat or a new session that came meanwhile is
        still waiting to be read. Time nobody could be heard in does not count against them."""
        if seconds <= 0:
            return
        for node_id in self._deadline:
            self._deadline[node_id] += seconds

    def forget(self, node_id: str) -> None:
        self._deadline.pop(node_id, None)
        self._restarting.discard(node_id)
        self._broken.discard(node_id)

    def __contains__(self, node_id: str) -> bool:
        return node_id in self._deadline

    def deadline(self, node_id: str) -> float | None:
        return self._deadline.get(node_id)

    def expired(self, now: float) -> list[str]:
        """Nodes whose deadline passed; they are forgotten (report each once)."""
        return [node_id for node_id, _ in self.expired_with_reasons(now)]

    def expired_with_reasons(self, now: float) -> list[tuple[str, str]]:
        """As ``expired``, each with why: HEARTBEAT or SESSION."""
        late = [n for n, d in self._deadline.items() if d <= now]
        reasons = []
        for n in late:
            reasons.append((n, SESSION if n in self._broken else HEARTBEAT))
            self.forget(n)
        return reasons

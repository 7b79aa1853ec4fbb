"""How long the agent waits before it tries the managers again. Pure: no clock, no I/O."""

FIRST_DELAY = 0.1
MAX_DELAY = 5.0
# After a manager refused the session as not the leader and named none (an election is under
# way): about one raft election timeout of the managers, ElectionTick (10, raft's
# RaftConfig.election_tick) ticks of 0.1 s (manager/consensus/replica.py's DEFAULT_TICK).
# The election is unlikely to be over sooner, and asking sooner costs a manager that is
# holding it one more call per node (issue 15: 1,000 nodes made 1,000-6,000 such attempts
# after a leader was killed). Not imported from there: the agent knows nothing of raft.
NO_LEADER_DELAY = 1.0


class ReconnectBackoff:
    """Doubling waits between failed tries (0.1, 0.2, 0.4... up to 5 s), started afresh once
    a session was up: a session that breaks after running a while is retried 0.1 s later,
    whatever the tries before it cost. (Carried over, the doubling left a node that had lost
    a few sessions over its life waiting 5 s before its first try, past the managers'
    reconnect grace, so its tasks were moved for nothing.) A manager that names the leader
    is followed at once; one that names no leader is asked again after ``NO_LEADER_DELAY``,
    whatever the doubling had reached, and the doubling goes on from there for other
    failures."""

    def __init__(self) -> None:
        self._delay = FIRST_DELAY

    def next_delay(
        self, *, session_was_up: bool, redirected: bool = False, no_leader: bool = False
    ) -> float:
        """Seconds to wait before the next try, after one that ended as described."""
        if session_was_up or redirected:
            self._delay = FIRST_DELAY
        if redirected:
            return 0.0
        if no_leader:
            return NO_LEADER_DELAY
        delay = self._delay
        self._delay = min(self._delay * 2, MAX_DELAY)
        return delay

"""Heartbeats a thread sends for a leader whose event loop is held up (issue 15): what the
driver publishes at each turn, when the stand-in sends, and when it stops."""

import asyncio
import threading

from shoal.raft.stand_in import LeaderView, Mode, StandInHeartbeats
from shoal.raft.types import MessageType
from tests.unit.raft.harness import Cluster as CoreCluster
from tests.unit.raft.test_node import Cluster

MT = MessageType


class Time:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def stand_in(t: Time) -> StandInHeartbeats:
    return StandInHeartbeats(interval=0.1, late_after=0.3, give_up_after=10.0, now=t)


VIEW = LeaderView(leader=1, term=7, commits=((2, 40), (3, 38)))


def test_nothing_is_sent_while_the_loop_turns_nor_for_a_node_that_does_not_lead() -> None:
    t = Time()
    s = stand_in(t)
    s.publish(None)
    t.t += 5.0
    assert s.due() == [] and s.mode() is Mode.IDLE and s.silence() == 0.0
    s.publish(VIEW)
    for _ in range(5):
        t.t += 0.1
        s.publish(VIEW)  # the driver turns every tick: it beats for itself
        assert s.due() == []


def test_a_late_loop_gets_its_heartbeats_sent_once_per_interval_then_given_up() -> None:
    t = Time()
    s = stand_in(t)
    s.publish(VIEW)
    t.t += 0.29
    assert s.due() == []
    t.t += 0.01
    beats = s.due()
    assert [(m.type, m.to, m.from_, m.term, m.commit, m.context) for m in beats] == [
        (MT.HEARTBEAT, 2, 1, 7, 40, 0),
        (MT.HEARTBEAT, 3, 1, 7, 38, 0),
    ]
    assert s.mode() is Mode.STANDING_IN
    assert round(s.silence(), 6) == 0.3
    t.t += 0.05
    assert s.due() == []  # within the interval
    t.t += 0.06
    assert len(s.due()) == 2
    t.t = 100.0 + 10.0
    assert len(s.due()) == 2  # 10 s without a turn: still standing in
    t.t += 0.2
    assert s.due() == [] and s.mode() is Mode.GAVE_UP  # wedged: the followers elect another
    s.publish(VIEW)  # the loop turns again: it beats for itself, the stand-in is ready again
    assert s.mode() is Mode.IDLE
    t.t += 0.31
    assert len(s.due()) == 2


def test_losing_leadership_or_stopping_ends_the_heartbeats_at_once() -> None:
    t = Time()
    s = stand_in(t)
    s.publish(VIEW)
    t.t += 1.0
    assert s.due()
    s.publish(None)  # stepped down
    t.t += 1.0
    assert s.due() == []
    s.publish(VIEW)
    s.stop()
    s.publish(VIEW)  # a publish after stop (the driver's last turn) changes nothing
    t.t += 1.0
    assert s.due() == [] and s.stopped


def test_the_thread_sleeps_while_following_and_wakes_only_when_beats_may_be_due() -> None:
    t = Time()
    s = stand_in(t)
    assert s.next_due() is None  # a follower: nothing until it leads
    s.publish(VIEW)
    assert round(s.next_due() or 0, 6) == 0.3  # late_after from the driver's last turn
    t.t += 0.2
    s.publish(VIEW)  # a turn moves that on
    t.t += 0.1
    assert round(s.next_due() or 0, 6) == 0.2
    t.t += 0.2
    assert s.next_due() == 0.0
    assert len(s.due()) == 2
    t.t += 0.04
    assert round(s.next_due() or 0, 6) == 0.06  # the rest of the interval
    t.t += 20.0
    assert s.mode() is Mode.GAVE_UP and s.next_due() == 0.3  # looks now and then
    s.publish(None)
    assert s.next_due() is None
    s.stop()
    assert s.next_due() == 0.0  # the thread must wake and end


def test_leading_or_stopping_wakes_the_waiting_thread() -> None:
    s = StandInHeartbeats(interval=0.1, late_after=0.3, give_up_after=10.0)
    s.publish(None)
    woke = threading.Event()

    def waiter() -> None:
        s.wait()
        woke.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not woke.wait(0.2)  # following: it sleeps
    s.publish(VIEW)
    assert woke.wait(5.0)
    thread.join()
    woke.clear()
    s.publish(VIEW)
    thread = threading.Thread(target=waiter)
    thread.start()
    s.stop()
    assert woke.wait(5.0)
    thread.join()


def test_heartbeat_commits_are_those_the_core_sends() -> None:
    c = CoreCluster()
    c.campaign(1)
    leader = c.cores[1]
    leader.propose(b"x")
    c.flush(1)  # the appends are lost: the followers' match stays behind the commit
    leader.tick()
    sent = {m.to: m.commit for m in leader.msgs if m.type is MT.HEARTBEAT}
    assert dict(leader.heartbeat_commits()) == sent
    assert set(sent) == {2, 3}


async def test_the_driver_publishes_its_leadership_its_term_and_safe_commits() -> None:
    c = Cluster()
    t = Time()
    standins = {i: stand_in(t) for i in c.ids}

    original = c.attach

    def attach(i, node, sm) -> None:
        node.stand_in = standins[i]
        original(i, node, sm)

    c.attach = attach  # type: ignore[method-assign]
    await c.start_all()
    try:
        await c.until(lambda: any(n.leader_ready for n in c.net.nodes.values()))
        leader = c.leader()
        await leader.propose(b"k=v")
        await c.run(0.5)
        t.t += 1.0  # no turn for a second: the leader's stand-in has heartbeats to send
        beats = standins[leader.id].due()
        core = leader.core
        assert core is not None
        assert {(m.to, m.term, m.commit) for m in beats} == {
            (p, core.term, commit) for p, commit in core.heartbeat_commits()
        }
        assert all(m.commit == core.log.committed for m in beats)  # followers caught up
        for i in c.ids:
            if i != leader.id:
                assert standins[i].due() == []  # followers publish None
        stopped = leader.id
        await c.stop(stopped)
        t.t += 1.0
        assert standins[stopped].due() == [] and standins[stopped].stopped
    finally:
        await c.stop_all()


async def test_a_follower_takes_a_stand_in_heartbeat_as_the_leaders_own() -> None:
    c = Cluster()
    await c.start_all()
    try:
        await c.until(lambda: any(n.leader_ready for n in c.net.nodes.values()))
        leader = c.leader()
        core = leader.core
        assert core is not None
        follower = next(n for i, n in c.net.nodes.items() if i != leader.id)
        fcore = follower.core
        assert fcore is not None
        c.net.cut.add(leader.id)  # the driver's own heartbeats are lost from now on
        t = Time()
        s = stand_in(t)
        commits = core.heartbeat_commits()
        s.publish(LeaderView(leader.id, core.term, commits))
        for _ in range(40):  # 4 s, twice the longest election timeout
            await c.clock.advance(0.1)
            t.t += 0.1
            for m in s.due():
                if m.to == follower.id:
                    follower.step(m)
            await asyncio.sleep(0)
        assert fcore.leader == leader.id and fcore.term == core.term
        # A stand-in heartbeat of a stale term is refused as the driver's would be: the
        # follower answers with its term, which makes the old leader step down.
        stale = LeaderView(leader.id, core.term - 1, commits)
        s.publish(stale)
        t.t += 0.5
        (m,) = [m for m in s.due() if m.to == follower.id]
        fcore.step(m)
        assert fcore.leader == leader.id
        assert [(r.type, r.to, r.term) for r in fcore.msgs[-1:]] == [
            (MT.APP_RESP, leader.id, core.term)
        ]
    finally:
        await c.stop_all()

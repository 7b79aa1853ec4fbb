from shoal.manager.dispatcher.heartbeats import HeartbeatDeadlines


def test_node_expires_after_three_missed_periods_and_is_reported_once():
    d = HeartbeatDeadlines()
    d.beat("n1", now=0.0, period=5.0)
    d.beat("n2", now=0.0, period=5.0)
    assert d.expired(14.9) == []
    d.beat("n2", now=10.0, period=5.0)
    assert d.expired(15.0) == ["n1"]
    assert d.expired(20.0) == []
    assert d.expired(25.0) == ["n2"]
    assert "n2" not in d


def test_forget():
    d = HeartbeatDeadlines()
    d.beat("n1", 0.0, 1.0)
    d.forget("n1")
    assert d.expired(100.0) == []


def test_broken_session_is_down_after_the_grace_unless_a_new_session_comes():
    d = HeartbeatDeadlines()
    d.beat("lost", now=0.0, period=5.0)
    d.beat("back", now=0.0, period=5.0)
    d.session_broke("lost", now=1.0, grace=2.0)
    d.session_broke("back", now=1.0, grace=2.0)
    d.beat("back", now=1.5, period=5.0)  # its new session
    assert d.expired(2.9) == []
    assert d.expired(3.0) == ["lost"]
    assert d.expired(16.4) == []
    assert d.expired(16.5) == ["back"]


def test_a_broken_session_never_gives_more_time_than_the_heartbeats():
    d = HeartbeatDeadlines()
    d.beat("n1", now=0.0, period=1.0)  # due at 3
    d.session_broke("n1", now=2.5, grace=2.0)
    assert d.deadline("n1") == 3.0
    assert d.expired(3.0) == ["n1"]


def test_zero_grace_means_down_at_the_next_check():
    d = HeartbeatDeadlines()
    d.beat("n1", now=0.0, period=5.0)
    d.session_broke("n1", now=4.0, grace=0.0)
    assert d.expired(4.0) == ["n1"]


def test_a_node_that_said_it_restarts_keeps_its_heartbeat_timeout_until_heard_again():
    d = HeartbeatDeadlines()
    d.restarting("n1", now=0.0, period=5.0)  # its last heartbeat, due again by 15
    d.session_broke("n1", now=1.0, grace=2.0)
    assert d.expired(14.9) == []
    d.beat("n1", now=10.0, period=5.0)  # back, in a new session: an ordinary node again
    d.session_broke("n1", now=11.0, grace=2.0)
    assert d.expired(13.0) == ["n1"]


def test_a_restarting_node_that_never_returns_is_down_at_its_heartbeat_timeout():
    d = HeartbeatDeadlines()
    d.restarting("n1", now=0.0, period=5.0)
    d.session_broke("n1", now=0.5, grace=2.0)
    assert d.expired(15.0) == ["n1"]
    d.beat("n1", now=20.0, period=5.0)  # joined again later
    d.session_broke("n1", now=21.0, grace=2.0)
    assert d.expired(23.0) == ["n1"]


def test_postponing_moves_every_deadline_later_and_keeps_the_reasons():
    d = HeartbeatDeadlines()
    d.beat("quiet", now=0.0, period=5.0)  # due at 15
    d.session_broke("broken", now=0.0, grace=2.0)  # due at 2
    d.postpone(3.0)
    d.postpone(-1.0)  # an early wake-up moves nothing back
    assert d.expired_with_reasons(4.9) == []
    assert d.expired_with_reasons(5.0) == [("broken", "session")]
    assert d.expired_with_reasons(17.9) == []
    assert d.expired_with_reasons(18.0) == [("quiet", "heartbeat")]


def test_a_new_session_after_a_break_makes_a_later_lapse_a_heartbeat_one():
    d = HeartbeatDeadlines()
    d.session_broke("n1", now=0.0, grace=2.0)
    d.beat("n1", now=1.0, period=5.0)  # back within the grace
    assert d.expired_with_reasons(15.9) == []
    assert d.expired_with_reasons(16.0) == [("n1", "heartbeat")]

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

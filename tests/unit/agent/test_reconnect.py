from shoal.agent.reconnect import NO_LEADER_DELAY, ReconnectBackoff


def test_failed_tries_wait_longer_each_time_up_to_five_seconds():
    b = ReconnectBackoff()
    waits = [b.next_delay(session_was_up=False) for _ in range(8)]
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_a_session_that_was_up_is_retried_at_once_whatever_came_before():
    b = ReconnectBackoff()
    for _ in range(8):
        b.next_delay(session_was_up=False)
    assert b.next_delay(session_was_up=True) == 0.1
    assert b.next_delay(session_was_up=False) == 0.2
    # Many sessions over a node's life, each broken once: every first try comes 0.1 s after.
    assert [b.next_delay(session_was_up=True) for _ in range(10)] == [0.1] * 10


def test_a_named_leader_is_tried_at_once_and_the_doubling_starts_afresh():
    b = ReconnectBackoff()
    for _ in range(5):
        b.next_delay(session_was_up=False)
    assert b.next_delay(session_was_up=False, redirected=True) == 0.0
    assert b.next_delay(session_was_up=False) == 0.1


def test_no_leader_named_waits_an_election_timeout_and_leaves_the_doubling_as_it_was():
    b = ReconnectBackoff()
    b.next_delay(session_was_up=False)
    assert b.next_delay(session_was_up=False, no_leader=True) == NO_LEADER_DELAY
    assert b.next_delay(session_was_up=False, no_leader=True) == NO_LEADER_DELAY
    assert b.next_delay(session_was_up=False) == 0.2

from shoal.logs.model import STDOUT, LogContext, LogLine, LogMessage
from shoal.logs.render import details_text, render_line
from shoal.logs.timestamps import parse_rfc3339

TS = parse_rfc3339("2026-11-22T10:44:47.8284772Z")


def msg(data=b"line 5\n", attrs=()):
    return LogMessage(
        LogContext(node_id="n1", service_id="s1", task_id="t1"),
        LogLine(timestamp_ns=TS, stream=STDOUT, data=data, attrs=attrs),
    )


def test_plain_line_is_the_data():
    assert render_line(msg(), timestamps=False, details=False) == b"line 5\n"


def test_timestamps_come_first_with_nine_digits():
    assert render_line(msg(), timestamps=True, details=False) == (
        b"2026-11-22T10:44:47.828477200Z line 5\n"
    )


def test_details_are_the_swarm_context_sorted_by_key():
    assert render_line(msg(), timestamps=True, details=True) == (
        b"2026-11-22T10:44:47.828477200Z com.docker.swarm.node.id=n1,"
        b"com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 line 5\n"
    )


def test_source_attributes_join_and_context_wins():
    m = msg(attrs=(("zeta", "a b,c"), ("com.docker.swarm.task.id", "forged"), ("alpha", "x=y")))
    assert render_line(m, timestamps=False, details=True) == (
        b"alpha=x%3Dy,com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,"
        b"com.docker.swarm.task.id=t1,zeta=a+b%2Cc line 5\n"
    )


def test_details_escape_like_go_query_escape():
    assert details_text([("k", "a-b_c.d~e/f:g")]) == "k=a-b_c.d~e%2Ff%3Ag"
    assert details_text([]) == ""

import datetime as dt

from shoal.api.base import rfc3339nano
from shoal.api.objects import Task


def test_times_read_as_gos_rfc3339nano():
    assert (
        rfc3339nano(dt.datetime(2026, 11, 22, 14, 28, 57, 178220, tzinfo=dt.UTC))
        == "2026-11-22T14:28:57.17822Z"
    )
    assert (
        rfc3339nano(dt.datetime(2026, 11, 22, 14, 28, 57, tzinfo=dt.UTC)) == "2026-11-22T14:28:57Z"
    )
    assert rfc3339nano(dt.datetime(1, 1, 1, tzinfo=dt.UTC)) == "0001-01-01T00:00:00Z"
    task = Task(ID="x", CreatedAt=dt.datetime(2026, 1, 2, 3, 4, 5, 100000, tzinfo=dt.UTC))
    data = task.to_json()
    assert data["CreatedAt"] == "2026-01-02T03:04:05.1Z"
    assert Task.from_json(data).CreatedAt == task.CreatedAt

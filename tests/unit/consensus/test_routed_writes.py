"""Which control-API calls a follower sends to the leader: the writes, and only those."""

from shoal.manager.consensus.forwarding import _writes
from shoal.manager.controlapi.control import ControlAPI

# Every call that changes the cluster; a new one is added here on purpose. A read that is a
# coroutine (to let the loop run while it works) is marked @sliced_read and stays local: taken
# for a write it was sent to the leader with its arguments as JSON, which a Filters is not
# (`service ls --filter name=x` answered 500 "Object of type Filters is not JSON serializable").
WRITES = {
    "create_config",
    "create_network",
    "create_secret",
    "create_service",
    "prune_networks",
    "remove_config",
    "remove_network",
    "remove_node",
    "remove_secret",
    "remove_service",
    "update_cluster",
    "update_config",
    "update_node",
    "update_secret",
    "update_service",
}


def test_a_follower_forwards_the_writes_and_answers_sliced_reads_itself():
    writes = _writes(object.__new__(ControlAPI))  # (it reads the class's methods only)
    assert writes == WRITES
    assert "list_services_with_status" not in writes

"""Who a raft member is: its raft ID, the Swarm node it belongs to, and where it is reached.

The node ID and address travel in the ``context`` of the configuration change that adds the
member (as in swarmkit), so every manager learns them from the log itself, in log order, and
a snapshot carries them along with the configuration.
"""

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RaftMember:
    raft_id: int
    node_id: str
    addr: str  # host:port of the member's gRPC server

    def context(self) -> bytes:
        return encode_context(self.node_id, self.addr)

    def to_json(self) -> dict[str, object]:
        return {"RaftID": self.raft_id, "NodeID": self.node_id, "Addr": self.addr}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RaftMember":
        return cls(int(data["RaftID"]), str(data["NodeID"]), str(data["Addr"]))


def encode_context(node_id: str, addr: str) -> bytes:
    return json.dumps({"NodeID": node_id, "Addr": addr}, separators=(",", ":")).encode()


def decode_context(raft_id: int, context: bytes) -> RaftMember:
    """The member a configuration change names; an empty context (a change made by raft
    itself, such as ``force_new_cluster`` removing the others) names no node."""
    if not context:
        return RaftMember(raft_id, "", "")
    data = json.loads(context)
    return RaftMember(raft_id, str(data.get("NodeID", "")), str(data.get("Addr", "")))

"""The leader's role manager: keeps the raft membership and the Node objects in agreement.

As swarmkit's role manager does, and a little more, each pass:

- promotes a learner to voter once its log has caught up with the leader's (a manager joins
  as a learner so it cannot hurt the quorum while it is still far behind);
- promotion of a node (Spec.Role manager, Role worker): sets Role to manager; the node's
  daemon, told of it by the dispatcher, starts a manager that joins raft;
- demotion (Spec.Role worker, Role manager): removes the node's raft member when that leaves
  a reachable quorum (if the node is this leader, hands leadership over first: the next
  leader removes it), then sets Role to worker;
- a deleted node's raft member is removed;
- every manager node's ManagerStatus (Leader, Reachability, Addr) says what raft says, so
  ``node ls`` on any manager shows Leader / Reachable / Unreachable (and Unknown for a
  manager still catching up as a learner).

Anything that cannot be done now (no quorum to spare, a change in progress) is retried on
the next pass.
"""

import logging

from shoal.api.objects import ManagerStatus, Node
from shoal.api.types import NodeRole, Reachability
from shoal.clock import Clock
from shoal.errors import ShoalError
from shoal.manager.consensus.replica import Replica
from shoal.store import MemoryStore, Tx

log = logging.getLogger(__name__)

INTERVAL = 0.25


class RoleManager:
    def __init__(self, store: MemoryStore, replica: Replica, clock: Clock) -> None:
        self.store = store
        self.replica = replica
        self.clock = clock

    async def run(self) -> None:
        with self.store.watch(kinds={"node"}) as sub:
            while True:
                try:
                    await self.reconcile()
                except ShoalError as err:
                    log.info("role manager: %s; trying again", err)
                # Wake on a node change, or after an interval (reachability and learners'
                # progress change without any store event).
                await sub.settle(INTERVAL)

    async def reconcile(self) -> None:
        await self._promote_caught_up_learners()
        await self._reconcile_roles()
        await self._evict_deleted_nodes()
        await self._report_manager_status()

    async def _promote_caught_up_learners(self) -> None:
        node = self.replica.node
        if node is None:
            return
        for raft_id in sorted(node.conf.learners):
            if self.replica.caught_up(raft_id):
                log.info("raft member %x caught up: promoting it to voter", raft_id)
                await self.replica.promote_learner(raft_id)

    async def _reconcile_roles(self) -> None:
        # The nodes asked to change role (Spec.Role differs from Role), by the store's index:
        # a pass over every node was 2.2% of a leader's samples with 1,000 nodes (issue 15).
        view = self.store.view()
        asked = [
            *view.find(Node, "role_change", NodeRole.MANAGER),
            *view.find(Node, "role_change", NodeRole.WORKER),
        ]
        for node in asked:
            if node.Spec.Role == NodeRole.MANAGER:
                await self._set_role(node.ID, NodeRole.MANAGER)
                continue
            member = self.replica.log.member_by_node(node.ID)
            if member is None:
                await self._set_role(node.ID, NodeRole.WORKER)
            elif member.raft_id == self.replica.raft_id:
                # Demoting the leader: the next leader removes it from raft.
                assert self.replica.node is not None
                log.info("demoted: handing raft leadership over")
                await self.replica.node.transfer_leadership()
                return
            elif self.replica.can_remove(member.raft_id):
                log.info("removing demoted node %s (raft %x) from raft", node.ID, member.raft_id)
                await self.replica.remove_member(member.raft_id)
                await self._set_role(node.ID, NodeRole.WORKER)

    async def _set_role(self, node_id: str, role: NodeRole) -> None:
        def fn(tx: Tx) -> None:
            node = tx.get(Node, node_id)
            if node is None or node.Role == role or node.Spec.Role != role:
                return
            changed = node.clone()
            changed.Role = role
            if role == NodeRole.WORKER:
                changed.ManagerStatus = None
            tx.update(changed)

        await self.store.update(fn)

    async def _evict_deleted_nodes(self) -> None:
        view = self.store.view()
        for member in list(self.replica.log.members.values()):
            if not member.node_id or view.get(Node, member.node_id) is not None:
                continue
            if member.raft_id != self.replica.raft_id and self.replica.can_remove(member.raft_id):
                log.info("node %s was removed: removing raft %x", member.node_id, member.raft_id)
                await self.replica.remove_member(member.raft_id)

    def manager_status(self, node: Node) -> ManagerStatus | None:
        """What raft says of a manager node: None when it is no raft member (yet)."""
        member = self.replica.log.member_by_node(node.ID)
        if member is None or self.replica.node is None:
            return None
        leader = member.raft_id == self.replica.leader_id
        if member.raft_id in self.replica.node.conf.learners:
            reachability = Reachability.UNKNOWN  # still catching up; not yet a voter
        elif leader or self.replica.node.reachable(member.raft_id):
            reachability = Reachability.REACHABLE
        else:
            reachability = Reachability.UNREACHABLE
        return ManagerStatus(
            Leader=True if leader else None, Reachability=reachability, Addr=member.addr
        )

    async def _report_manager_status(self) -> None:
        changes = {}
        for node in self.store.view().find(Node, "role", NodeRole.MANAGER):
            status = self.manager_status(node)
            if status != node.ManagerStatus:
                changes[node.ID] = status
        if not changes:
            return

        def fn(tx: Tx) -> None:
            for node_id, status in changes.items():
                node = tx.get(Node, node_id)
                if node is None or node.Role != NodeRole.MANAGER:
                    continue
                changed = node.clone()
                changed.ManagerStatus = status
                tx.update(changed)

        await self.store.update(fn)

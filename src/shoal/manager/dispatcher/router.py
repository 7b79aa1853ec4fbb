"""One listener on the store for the whole dispatcher: each change is looked at once, as it is
applied, and queued only for the Assignments streams whose messages it can move. With a
subscription per stream every change was queued, woken on and looked at once per connected
node (hundreds of times over for a fleet), though most changes are one node's task.

Who is concerned (``recipients``, pure):
- a task: the session of its node, and of its previous node if it moved (its assignments and
  the secrets and configs they use); every session if it carries published ports (the
  routing mesh's table is the same everywhere); if it is attached to overlay networks, also
  the sessions whose network map holds one of them (they list it as a peer or a backend);
- a service, node, network, the cluster, a secret or a config: every session. They change
  rarely and may move any node's table, map or dependencies.
- commit events: none (a session acts on a batch of events, not on transactions).

As it sees every change, it also keeps the routing table all the sessions share
(``routes``, a ``SharedRoutes``) up to date: dropped at each change that may move it, worked
out again by the first session that asks.

Each stream's events arrive in commit order, and from the instant its COMPLETE snapshot is
read (``view_and_attach`` reads the store and attaches in one step, and the listener runs as
each proposal is applied): none is lost or seen twice."""

import logging
from collections import Counter
from collections.abc import Collection, Mapping

from shoal.api.objects import Task
from shoal.manager.dispatcher.fanout import SharedFlags
from shoal.manager.dispatcher.routes import SharedRoutes
from shoal.store import Event, Listening, MemoryStore, Subscription
from shoal.store.memory import ReadTx

log = logging.getLogger(__name__)

# The kinds an Assignments stream is sent something about.
KINDS = frozenset({"task", "service", "node", "network", "cluster", "secret", "config"})


def recipients(
    ev: Event, routes: bool, networks: bool, members: Mapping[str, Collection[str]]
) -> set[str] | None:
    """The nodes whose sessions must see ``ev``, or None for every session. ``routes`` and
    ``networks``: whether it may move the routing table and network maps
    (``fanout.cluster_flags``); ``members``: for each overlay network, the nodes whose
    network map holds it."""
    obj = ev.obj
    if ev.is_commit or obj is None or obj.KIND not in KINDS:
        return set()
    if not isinstance(obj, Task):
        return None
    if routes:
        return None
    nodes: set[str] = set()
    for task in (obj, ev.old):
        if not isinstance(task, Task):
            continue
        if task.NodeID:
            nodes.add(task.NodeID)
        if networks:
            for attachment in task.NetworksAttachments or ():
                nodes.update(members.get(attachment.Network.ID, ()))
    return nodes


class Inbox(Subscription):
    """The events routed to one Assignments stream, in commit order: a subscription the
    router feeds (``put``) with the changes that concern its node."""

    def __init__(self, router: "Router", node_id: str) -> None:
        super().__init__(None, None, None)
        self.node_id = node_id
        self._router = router
        self.networks: frozenset[str] = frozenset()  # those its node's map holds

    def _detach(self) -> None:
        self._router._detach(self)


class Router:
    def __init__(self, store: MemoryStore, flags: SharedFlags | None = None) -> None:
        self._store = store
        self._flags = flags or SharedFlags()
        # The routing table for every session (NodeAssignments), kept while nothing moves it.
        self.routes = SharedRoutes(store)
        self._listening: Listening | None = None
        self._inboxes: dict[Inbox, None] = {}  # in the order they came: deterministic
        self._by_node: dict[str, list[Inbox]] = {}
        self._members: dict[str, Counter[str]] = {}  # network: its nodes (one per inbox)

    def view_and_attach(self, node_id: str) -> tuple[ReadTx, Inbox]:
        """The store as it is now, and an inbox for every change after it that concerns the
        node. Give the inbox the networks its map holds (``follow_networks``) before
        awaiting anything."""
        if self._listening is None or self._listening.closed:  # first, or the store closed
            view, self._listening = self._store.view_and_listen(self._route)
            self.routes.invalidate()  # changes went by unseen
        else:
            view = self._store.view()
        inbox = Inbox(self, node_id)
        self._inboxes[inbox] = None
        self._by_node.setdefault(node_id, []).append(inbox)
        return view, inbox

    def follow_networks(self, inbox: Inbox, network_ids: frozenset[str]) -> None:
        """The overlay networks the inbox's node's map holds now (read from the store with
        every change routed so far applied: call it before awaiting anything)."""
        if not inbox.closed:
            self._set_networks(inbox, network_ids)

    def _set_networks(self, inbox: Inbox, network_ids: frozenset[str]) -> None:
        for network_id in inbox.networks - network_ids:
            nodes = self._members[network_id]
            nodes[inbox.node_id] -= 1
            if nodes[inbox.node_id] <= 0:
                del nodes[inbox.node_id]
            if not nodes:
                del self._members[network_id]
        for network_id in network_ids - inbox.networks:
            self._members.setdefault(network_id, Counter())[inbox.node_id] += 1
        inbox.networks = network_ids

    def members(self) -> Mapping[str, Collection[str]]:
        return self._members

    def _detach(self, inbox: Inbox) -> None:
        self._set_networks(inbox, frozenset())
        self._inboxes.pop(inbox, None)
        same_node = self._by_node.get(inbox.node_id, [])
        if inbox in same_node:
            same_node.remove(inbox)
        if not same_node:
            self._by_node.pop(inbox.node_id, None)

    def _route(self, events: list[Event]) -> None:
        if not self._inboxes:
            self.routes.invalidate()  # cheaper than looking: nobody asks for it meanwhile
            return
        try:
            for ev in events:
                if ev.is_commit:
                    continue
                routes, networks = self._flags.of(ev)
                if routes:
                    self.routes.invalidate()
                nodes = recipients(ev, routes, networks, self._members)
                if nodes is None:
                    for inbox in self._inboxes:
                        inbox.put(ev)
                    continue
                for node_id in nodes:
                    for inbox in self._by_node.get(node_id, ()):
                        inbox.put(ev)
        except Exception:
            # Runs as the store applies a proposal, which must not fail for it. A stream that
            # may have missed a change ends; its agent opens a new one and gets a COMPLETE set.
            log.exception("routing store changes to the agents' sessions failed: ending them")
            self.routes.invalidate()
            for inbox in list(self._inboxes):
                inbox.close()

    def close(self) -> None:
        for inbox in list(self._inboxes):
            inbox.close()
        self.routes.invalidate()
        if self._listening is not None:
            self._listening.close()
            self._listening = None

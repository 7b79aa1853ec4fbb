"""The cluster state: in-memory tables of nodes, services, tasks and clusters, with indexes,
transactions and watch events.

Every write goes through one path: ``MemoryStore.update`` runs a callback against a
transaction, turns what it changed into a ``Proposal`` and hands it to the ``Proposer``.
The proposer makes the proposal durable (the managers' Raft log:
``shoal.manager.consensus.replicated_log``) and then applies it to the tables, in log order, through ``MemoryStore.apply``.
A follower manager applies the leader's proposals through the same call.
"""

from shoal.store.memory import MemoryStore, ReadTx, Tx
from shoal.store.proposal import Action, Change, Proposal, Proposer
from shoal.store.shielded import shielded
from shoal.store.watch import Event, Listening, Subscription

__all__ = [
    "Action",
    "Change",
    "Event",
    "Listening",
    "MemoryStore",
    "Proposal",
    "Proposer",
    "ReadTx",
    "Subscription",
    "Tx",
    "shielded",
]

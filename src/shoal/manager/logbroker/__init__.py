"""The log broker: brings a client's log subscription to the agents of the nodes that run
matching tasks, and their lines back to the client (swarmkit's manager/logbroker)."""

from shoal.manager.logbroker.broker import LogBroker, LogsIncomplete

__all__ = ["LogBroker", "LogsIncomplete"]

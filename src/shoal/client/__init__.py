"""The Docker Engine API client every shoal command uses to talk to a daemon: the connection
(``Client``, with Docker's errors), which daemon to talk to, and reading log streams."""

from shoal.client.connection import APIError, Client, ConnectError, filters_param
from shoal.client.hosts import resolve_host

__all__ = ["APIError", "Client", "ConnectError", "filters_param", "resolve_host"]

"""The web dashboard a manager serves (``shoal daemon --dashboard-addr``): the cluster's nodes,
services, tasks, networks, stacks and events, kept up to date in the browser from the
manager's own store, read-only."""

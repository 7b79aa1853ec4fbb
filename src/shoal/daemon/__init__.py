"""The node daemon: one per host. Keeps the node's identity and state directory, serves the
Docker-compatible API on a unix socket, and runs the agent and, on managers, the manager."""

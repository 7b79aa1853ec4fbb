"""The agent: a node's side of the swarm. It keeps a session with a manager, runs the tasks
assigned to this node through an executor, and reports their status."""

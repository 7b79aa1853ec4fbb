"""The shoal command line: Docker's swarm verbs, output and errors."""

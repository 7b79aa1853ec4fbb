"""shoal: Docker Swarm mode, written in Python."""

__version__ = "0.1.0"

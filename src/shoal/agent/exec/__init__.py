"""Executors run tasks: the interface, the state machine that drives it, and the runtimes."""

"""``shoal local``: a cluster of several daemons on this machine, for trying shoal out and
for development. Each node is its own daemon process with its own state dir, socket and
loopback address (127.0.0.1, 127.0.0.2, ...), so each can publish the same port."""

"""The Docker Engine API's swarm subset, served by the node daemon on its unix socket, so
that the shoal CLI, the docker CLI and Docker's SDKs can all drive a shoal node."""

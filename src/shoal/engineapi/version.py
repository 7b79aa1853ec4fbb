"""Which Docker Engine API versions shoal speaks."""

# The newest API whose swarm endpoints shoal implements; clients negotiate down to it.
API_VERSION = "1.47"
MIN_API_VERSION = "1.24"

"""The cluster's root of trust: root CA, join tokens, node certificates."""

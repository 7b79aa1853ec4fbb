"""How a node names what its overlay data plane makes."""


def overlay_prefix(node_id: str) -> str:
    """Six characters that start every namespace, link and table the node's overlay data
    plane makes: several nodes may share a host, and each must find its own again after a
    restart. From the node's ID (base 36), so it is the same across restarts."""
    return "s" + node_id[:5].lower()

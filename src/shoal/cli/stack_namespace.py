"""The label that ties a service, network, secret or config to its stack (Docker's
``com.docker.stack.namespace``), kept apart from the compose package so that ``stack ls``,
``ps``, ``services`` and ``rm`` start without loading the compose loader and the API models.
It is the same label as ``shoal.compose.NAMESPACE_LABEL`` (a unit test keeps them equal)."""

NAMESPACE_LABEL = "com.docker.stack.namespace"


def stack_filter(namespace: str) -> dict[str, list[str]]:
    return {"label": [f"{NAMESPACE_LABEL}={namespace}"]}

"""Placement constraints (``node.role==manager``, ``node.labels.zone!=east``...).

Same grammar and matching as Swarm: one ``==`` or ``!=`` per expression, values compared
without regard to case, a missing label compared as the empty string.
"""

import ipaddress
import re
from dataclasses import dataclass

from shoal.api.objects import Node

NODE_LABEL_PREFIX = "node.labels."
ENGINE_LABEL_PREFIX = "engine.labels."

_KEY_RE = re.compile(r"^[a-z_][a-z0-9\-_.]+$", re.IGNORECASE)
_VALUE_RE = re.compile(r"^[a-z0-9:\-_\s.*()?+\[\]\\^$|/]+$", re.IGNORECASE)
_OPERATORS = ("==", "!=")


class ConstraintError(ValueError):
    pass


@dataclass(frozen=True)
class Constraint:
    key: str
    equal: bool  # True for ==, False for !=
    value: str

    def matches_value(self, *candidates: str) -> bool:
        hit = any(self.value.lower() == c.lower() for c in candidates)
        return hit if self.equal else not hit

    def __str__(self) -> str:
        return f"{self.key}{'==' if self.equal else '!='}{self.value}"


def parse(expressions: list[str] | None) -> list[Constraint]:
    """Parse constraint expressions; raises ConstraintError with Swarm's message."""
    result = []
    for expr in expressions or []:
        for op in _OPERATORS:
            if op not in expr:
                continue
            key, value = (part.strip() for part in expr.split(op, 1))
            if not _KEY_RE.match(key):
                raise ConstraintError(f"key '{key}' is invalid")
            if not _VALUE_RE.match(value):
                raise ConstraintError(f"value '{value}' is invalid")
            result.append(Constraint(key, op == "==", value))
            break
        else:
            raise ConstraintError("constraint expected one operator from ==, !=")
    return result


def _node_ip_matches(c: Constraint, node: Node) -> bool:
    try:
        node_ip = ipaddress.ip_address(node.Status.Addr)
    except ValueError:
        node_ip = None
    try:
        inside = node_ip is not None and node_ip in ipaddress.ip_network(c.value, strict=False)
    except ValueError:
        return False
    return inside if c.equal else not inside


def node_matches(constraints: list[Constraint], node: Node) -> bool:
    desc = node.Description
    for c in constraints:
        key = c.key.lower()
        if key == "node.id":
            ok = c.matches_value(node.ID)
        elif key == "node.hostname":
            ok = c.matches_value(desc.Hostname if desc else "")
        elif key == "node.ip":
            ok = _node_ip_matches(c, node)
        elif key == "node.role":
            ok = c.matches_value(node.Role.value)
        elif key == "node.platform.os":
            ok = c.matches_value(desc.Platform.OS if desc else "")
        elif key == "node.platform.arch":
            ok = c.matches_value(desc.Platform.Architecture if desc else "")
        elif key.startswith(NODE_LABEL_PREFIX) and len(key) > len(NODE_LABEL_PREFIX):
            ok = c.matches_value(node.Spec.Labels.get(c.key[len(NODE_LABEL_PREFIX) :], ""))
        elif key.startswith(ENGINE_LABEL_PREFIX) and len(key) > len(ENGINE_LABEL_PREFIX):
            labels = (desc.Engine.Labels if desc else None) or {}
            ok = c.matches_value(labels.get(c.key[len(ENGINE_LABEL_PREFIX) :], ""))
        else:
            # An unknown key never matches, so a typo leaves the task pending, as in Swarm.
            ok = False
        if not ok:
            return False
    return True

"""When a node renews its certificate, and the shortest certificate life a cluster accepts.

As Swarm does, a node renews at a random point between 50% and 80% of its certificate's
life, so that nodes that joined together do not all ask the CA at once, and each has a good
margin left if the CA is briefly unreachable.
"""

import datetime as dt
import os
import random

from shoal.errors import InvalidArgument, swarm_error
from shoal.golang import format_duration  # Go's duration text, as Swarm prints it

RENEW_FROM = 0.5
RENEW_UNTIL = 0.8
# What Swarm enforces (``swarm update --cert-expiry``).
MIN_NODE_CERT_EXPIRY = dt.timedelta(hours=1)
# Tests that watch renewals happen use lifetimes of seconds; a daemon started with this set
# (in seconds) accepts them. Never meant for a real cluster.
UNSAFE_MIN_EXPIRY_ENV = "SHOAL_UNSAFE_MIN_CERT_EXPIRY"


def renewal_time(
    issued: dt.datetime, expires: dt.datetime, rng: random.Random | None = None
) -> dt.datetime:
    """When to renew a certificate valid from ``issued`` until ``expires``."""
    life = expires - issued
    share = (rng or random).uniform(RENEW_FROM, RENEW_UNTIL)
    return issued + life * share


def min_node_cert_expiry() -> dt.timedelta:
    override = os.environ.get(UNSAFE_MIN_EXPIRY_ENV)
    if override:
        return dt.timedelta(seconds=float(override))
    return MIN_NODE_CERT_EXPIRY


def check_node_cert_expiry(expiry_ns: int) -> None:
    """Refuse a certificate life shorter than the minimum, in Swarm's words."""
    minimum = min_node_cert_expiry()
    if expiry_ns < minimum // dt.timedelta(microseconds=1) * 1000:
        raise swarm_error(
            InvalidArgument,
            "minimum certificate expiry time is: "
            + format_duration(minimum // dt.timedelta(microseconds=1) * 1000),
        )

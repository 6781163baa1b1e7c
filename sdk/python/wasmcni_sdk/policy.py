"""A policy (the `policy` world): runs before a plugin's ADD, sees the
invocation (its `config` is the policy's own entry of the plugin's
`policies`) and nothing privileged, and admits, denies or changes the ADD."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import List, Optional, Union

from . import log
from .errors import PLUGIN_FAILURE, CniError, guard
from .invocation import Invocation
from .ip import Address, Network, check_address, check_network, check_optional_address
from .result import Route, check_route


@dataclass(frozen=True)
class Allow:
    """Admits the ADD as it is."""


@dataclass(frozen=True)
class Deny:
    """Refuses the ADD (CNI error 103 with this reason); nothing is created."""
    reason: str


@dataclass
class IpRange:
    """A range to allocate from, as in host-local's `ranges`."""
    subnet: Network
    range_start: Optional[Address] = None
    range_end: Optional[Address] = None
    gateway: Optional[Address] = None


@dataclass
class AllowWith:
    """Admits the ADD with its config rewritten, so any IPAM that reads
    host-local's config honours it."""
    # Addresses to request from IPAM (`runtimeConfig.ips`).
    ips: List[Address] = field(default_factory=list)
    # When not empty, replaces the IPAM section's ranges: one range set each.
    ranges: List[IpRange] = field(default_factory=list)
    # Appended to the IPAM section's `routes`.
    routes: List[Route] = field(default_factory=list)


Decision = Union[Allow, Deny, AllowWith]


class Policy(ABC):
    @abstractmethod
    def admit(self, inv: Invocation) -> Decision: ...


def _check(d):
    """Raises ValueError naming what in decision `d` the WIT cannot carry."""
    if isinstance(d, Deny):
        if not isinstance(d.reason, str):
            raise ValueError("deny reason %r is not a string" % (d.reason,))
    elif isinstance(d, AllowWith):
        for ip in d.ips:
            check_address(ip, "requested IP")
        for r in d.ranges:
            if not isinstance(r, IpRange):
                raise ValueError("%r is not an IpRange" % (r,))
            check_network(r.subnet, "range subnet")
            for name in ("range_start", "range_end", "gateway"):
                check_optional_address(getattr(r, name), "range %s %s" % (r.subnet, name), r.subnet.version)
        for route in d.routes:
            check_route(route)
    elif not isinstance(d, Allow):
        raise ValueError("%r is not an Allow, Deny or AllowWith" % (d,))


def check_decision(d):
    """`d` if the host would take it; CniError 100 otherwise."""
    try:
        _check(d)
    except ValueError as e:
        raise CniError(PLUGIN_FAILURE, "policy returned an invalid decision: %s" % e) from None
    return d


def decide(policy, inv):
    """The decision as the host gets it. `admit` has no error channel, so
    this fails closed: a CniError, a bug or a decision the WIT cannot carry
    becomes a Deny saying so."""
    try:
        return check_decision(guard(policy.admit, inv))
    except CniError as e:
        log.warn("denying the ADD of %s: %s" % (inv.container_id, e.msg))
        return Deny(e.msg)

"""A CNI result in the SDK's model: `ipaddress` values, no strings holding
addresses. The host converts it to the runtime's cniVersion, so a plugin
never deals with spec versions.

`check_result` refuses what the host refuses of a returned result; the
component edge and the testing host both apply it."""

import enum
from dataclasses import dataclass, field
from typing import List, Optional

from .errors import PLUGIN_FAILURE, CniError
from .ip import (Address, Interface, Network, check_address, check_interface, check_network, check_optional_address,
                 check_uint)


class Scope(enum.Enum):
    """Kernel route scope, as the WIT's `route-scope`."""
    UNIVERSE = "universe"
    SITE = "site"
    LINK = "link"
    HOST = "host"


@dataclass
class Iface:
    name: str
    # Six bytes, most significant first; none for links without one.
    mac: Optional[bytes] = None
    mtu: Optional[int] = None
    # The container's netns path for container-side links; none on the host.
    sandbox: Optional[str] = None


@dataclass
class IpConfig:
    # The interface's address and prefix: ip_interface("10.22.0.5/16").
    address: Interface
    gateway: Optional[Address] = None
    # Index into the result's `interfaces`.
    iface: Optional[int] = None


@dataclass
class Route:
    dst: Network
    gw: Optional[Address] = None
    mtu: Optional[int] = None
    advmss: Optional[int] = None
    priority: Optional[int] = None
    table: Optional[int] = None
    scope: Optional[Scope] = None


@dataclass
class Dns:
    nameservers: List[Address] = field(default_factory=list)
    domain: Optional[str] = None
    search: List[str] = field(default_factory=list)
    options: List[str] = field(default_factory=list)


@dataclass
class CniResult:
    interfaces: List[Iface] = field(default_factory=list)
    ips: List[IpConfig] = field(default_factory=list)
    routes: List[Route] = field(default_factory=list)
    dns: Optional[Dns] = None


def _check_list(value, kind, what):
    if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
        raise ValueError("%s must be a list of %s" % (what, kind.__name__))


def _check_text(value, what, optional=True):
    if not (isinstance(value, str) or (optional and value is None)):
        raise ValueError("%s %r is not a string" % (what, value))


def check_route(r):
    """Raises ValueError naming what in route `r` the WIT cannot carry."""
    if not isinstance(r, Route):
        raise ValueError("%r is not a Route" % (r,))
    check_network(r.dst, "route dst")
    check_optional_address(r.gw, "route %s gw" % r.dst, r.dst.version)
    for name in ("mtu", "advmss", "priority", "table"):
        check_uint(getattr(r, name), "route %s %s" % (r.dst, name))
    if r.scope is not None and not isinstance(r.scope, Scope):
        raise ValueError("route %s scope %r is not a Scope" % (r.dst, r.scope))


def _check(r):
    if not isinstance(r, CniResult):
        raise ValueError("%r is not a CniResult" % (r,))
    _check_list(r.interfaces, Iface, "interfaces")
    for i in r.interfaces:
        _check_text(i.name, "interface name", optional=False)
        if i.mac is not None and not (isinstance(i.mac, bytes) and len(i.mac) == 6):
            raise ValueError("interface %s mac %r is not 6 bytes" % (i.name, i.mac))
        check_uint(i.mtu, "interface %s mtu" % i.name)
        _check_text(i.sandbox, "interface %s sandbox" % i.name)
    _check_list(r.ips, IpConfig, "ips")
    for c in r.ips:
        check_interface(c.address, "address")
        check_optional_address(c.gateway, "gateway of %s" % c.address, c.address.version)
        check_uint(c.iface, "iface of %s" % c.address)
    if not isinstance(r.routes, list):
        raise ValueError("routes must be a list")
    for route in r.routes:
        check_route(route)
    if r.dns is not None:
        if not isinstance(r.dns, Dns):
            raise ValueError("dns %r is not a Dns" % (r.dns,))
        for ns in r.dns.nameservers:
            check_address(ns, "nameserver")
        _check_text(r.dns.domain, "dns domain")
        for name in ("search", "options"):
            _check_list(getattr(r.dns, name), str, "dns " + name)


def check_result(r):
    """`r` if the host would take it; CniError 100 otherwise."""
    try:
        _check(r)
    except ValueError as e:
        raise CniError(PLUGIN_FAILURE, "plugin returned an invalid result: %s" % e) from None
    return r

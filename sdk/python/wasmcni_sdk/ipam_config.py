"""The host-local IPAM config (`ranges` or the legacy `subnet` form), made
canonical as the reference host-local does (and the Rust SDK's
`ipam_config`), so an IPAM written with this SDK reads the same configs and
hands out the same ranges."""

import json
from dataclasses import dataclass
from typing import List, Optional, Tuple

from .errors import config_error
from .invocation import parse_config
from .ip import Address, Network, check_uint, parse_address, parse_network
from .result import Dns, Route


def _invalid(msg):
    return config_error("invalid ipam config: " + msg)


def _ip(value, what):
    try:
        return parse_address(value)
    except ValueError:
        raise _invalid("%s %s is not an IP address" % (what, json.dumps(value))) from None


def _address(obj, key):
    """obj[key] as an address; None when absent."""
    value = obj.get(key)
    return None if value is None else _ip(value, key)


def _strings(obj, key):
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid('"%s" must be a list of strings' % key)
    return value


@dataclass(frozen=True)
class Range:
    """One range with every default filled in and checked."""
    subnet: Network
    start: Address
    end: Address
    gateway: Address

    @classmethod
    def canonical(cls, cfg):
        """A `ranges[i][j]` object (or the legacy fields) with the reference
        defaults: start after the network address, end before the IPv4
        broadcast (the last address for IPv6), gateway the first address."""
        if not isinstance(cfg, dict) or not isinstance(cfg.get("subnet"), str):
            raise _invalid('a range must be an object with a "subnet" string')
        try:
            subnet = parse_network(cfg["subnet"])
        except ValueError:
            raise config_error("invalid subnet %s" % json.dumps(cfg["subnet"])) from None
        if subnet.version == 4 and subnet.prefixlen >= subnet.max_prefixlen - 1:
            raise config_error("network %s too small to allocate from" % subnet)
        first = subnet.network_address + 1
        last = subnet.broadcast_address - 1 if subnet.version == 4 else subnet.broadcast_address

        def inside(key, default):
            a = _address(cfg, key)
            if a is None:
                return default
            if a not in subnet:
                raise config_error("%s %s not in network %s" % (key, a, subnet))
            return a

        start, end, gateway = inside("rangeStart", first), inside("rangeEnd", last), inside("gateway", first)
        if start > end:
            raise config_error("rangeStart %s is after rangeEnd %s" % (start, end))
        return cls(subnet, start, end, gateway)

    def contains(self, ip):
        return ip.version == self.subnet.version and ip in self.subnet and self.start <= ip <= self.end

    def first_free(self, start, taken):
        """The first address from `start` on, inside this range, that is
        neither the gateway nor in `taken`; None when there is none."""
        ip = start
        while self.contains(ip):
            if ip != self.gateway and ip not in taken:
                return ip
            if ip == self.end:
                break
            ip += 1
        return None

    def capacity(self):
        """Addresses this range can hand out (its span less the gateway if inside)."""
        return int(self.end) - int(self.start) + 1 - (1 if self.contains(self.gateway) else 0)

    def __str__(self):
        return "%s-%s" % (self.start, self.end)


@dataclass(frozen=True)
class RangeSet:
    """Ranges of one family: one address is allocated per set."""
    ranges: Tuple[Range, ...]

    def __iter__(self):
        return iter(self.ranges)

    def __len__(self):
        return len(self.ranges)

    def contains(self, ip):
        return any(r.contains(ip) for r in self.ranges)

    def range_of(self, ip):
        """The range holding `ip`, or None."""
        return next((r for r in self.ranges if r.contains(ip)), None)

    def is_gateway(self, ip):
        return any(r.gateway == ip for r in self.ranges)

    def capacity(self):
        return sum(r.capacity() for r in self.ranges)

    def __str__(self):
        return ",".join(str(r) for r in self.ranges)


def _range_set(entries):
    if not entries:
        raise config_error("empty range set")
    ranges = tuple(Range.canonical(e) for e in entries)
    if len({r.subnet.version for r in ranges}) > 1:
        raise config_error("a range set mixes IPv4 and IPv6")
    for i, a in enumerate(ranges):
        for b in ranges[i + 1:]:
            if a.contains(b.start) or a.contains(b.end) or b.contains(a.start):
                raise config_error("ranges %s and %s overlap" % (a, b))
    return RangeSet(ranges)


def _range_sets(ipam):
    sets = []
    if ipam.get("subnet") is not None:
        sets.append([{k: ipam.get(k) for k in ("subnet", "rangeStart", "rangeEnd", "gateway")}])
    ranges = ipam.get("ranges", [])
    if not isinstance(ranges, list) or not all(isinstance(s, list) for s in ranges):
        raise _invalid('"ranges" must be a list of lists of ranges')
    sets.extend(ranges)
    if not sets:
        raise config_error("no IP ranges specified")
    return tuple(_range_set(s) for s in sets)


def _route(r):
    if not isinstance(r, dict) or not isinstance(r.get("dst"), str):
        raise _invalid('a route must be an object with a "dst" string')
    try:
        dst = parse_network(r["dst"])
    except ValueError:
        raise _invalid("route dst %s is not a CIDR prefix" % json.dumps(r["dst"])) from None
    gw = _address(r, "gw")
    if gw is not None and gw.version != dst.version:
        raise _invalid("route to %s has a gateway of the other family, %s" % (dst, gw))
    try:
        check_uint(r.get("priority"), "route priority")
    except ValueError as e:
        raise _invalid(str(e)) from None
    return Route(dst=dst, gw=gw, priority=r.get("priority"))


def _routes(value):
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid('"routes" must be a list')
    return [_route(r) for r in value]


def _dns(value):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid('"dns" must be an object')
    domain = value.get("domain")
    if domain is not None and not isinstance(domain, str):
        raise _invalid('"domain" must be a string')
    nameservers = [_ip(n, "nameserver") for n in _strings(value, "nameservers")]
    return Dns(nameservers=nameservers, domain=domain, search=_strings(value, "search"),
               options=_strings(value, "options"))


@dataclass(frozen=True)
class IpamConfig:
    range_sets: Tuple[RangeSet, ...]
    routes: List[Route]
    dns: Optional[Dns]

    @classmethod
    def parse(cls, config):
        """The `ipam` section of a plugin's config JSON: every range set (the
        legacy form first), each range canonical and each set free of
        overlaps and mixed families; its routes and dns. Code 7 otherwise."""
        ipam = parse_config(config).get("ipam")
        if ipam is None:
            raise config_error('missing "ipam" section')
        if not isinstance(ipam, dict):
            raise _invalid('"ipam" must be an object')
        return cls(_range_sets(ipam), _routes(ipam.get("routes")), _dns(ipam.get("dns")))

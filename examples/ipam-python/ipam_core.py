"""Lowest-free IPAM policy, independent of the generated bindings.

Everything that touches the host goes through `store` (an object with
reserve/last_reserved/leases/release_owner, as in the `ipam-store` WIT
interface) and `log(level_name, msg)`, so this module runs under plain CPython
with a fake store as well as inside the component.

Errors are raised as `IpamError(code, msg)`; the component layer turns them
into `Err(CniError)`.
"""

import ipaddress
import json

INVALID_CONFIG = 7
PLUGIN_NOT_AVAILABLE = 50
PLUGIN = 100


class IpamError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


def config_error(msg):
    return IpamError(INVALID_CONFIG, msg)


class Range:
    """One canonical range: defaults as in the reference host-local."""

    def __init__(self, cfg):
        if not isinstance(cfg, dict):
            raise config_error("a range must be an object")
        subnet = cfg.get("subnet")
        if not isinstance(subnet, str):
            raise config_error("range has no \"subnet\"")
        try:
            net = ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            raise config_error("invalid subnet %r" % subnet)
        if net.version == 4 and net.prefixlen >= net.max_prefixlen - 1:
            raise config_error("network %s too small to allocate from" % net)
        self.net = net
        first = net.network_address + 1
        last = net.broadcast_address - 1 if net.version == 4 else net.broadcast_address
        self.start = self._inside(cfg, "rangeStart", first)
        self.end = self._inside(cfg, "rangeEnd", last)
        self.gateway = self._inside(cfg, "gateway", first)
        if self.start > self.end:
            raise config_error("rangeStart %s is after rangeEnd %s" % (self.start, self.end))

    def _inside(self, cfg, key, default):
        value = cfg.get(key)
        if value is None:
            return default
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            raise config_error("invalid %s %r" % (key, value))
        if addr not in self.net:
            raise config_error("%s %s not in network %s" % (key, addr, self.net))
        return addr

    def contains(self, addr):
        return addr.version == self.net.version and addr in self.net and self.start <= addr <= self.end

    def first_free(self, taken):
        addr = self.start
        while addr <= self.end:
            if addr != self.gateway and addr not in taken:
                return addr
            addr += 1
        return None

    def capacity(self):
        span = int(self.end) - int(self.start) + 1
        return span - (1 if self.contains(self.gateway) else 0)

    def describe(self):
        return "%s-%s" % (self.start, self.end)


class Config:
    def __init__(self, raw):
        try:
            conf = json.loads(raw)
        except ValueError as e:
            raise config_error("invalid config JSON: %s" % e)
        ipam = conf.get("ipam") if isinstance(conf, dict) else None
        if not isinstance(ipam, dict):
            raise config_error("missing \"ipam\" section")
        sets = []
        if isinstance(ipam.get("subnet"), str):
            sets.append([ipam])  # legacy form: subnet/rangeStart/rangeEnd/gateway at the top
        ranges = ipam.get("ranges", [])
        if not isinstance(ranges, list) or not all(isinstance(s, list) for s in ranges):
            raise config_error("\"ranges\" must be a list of lists")
        sets.extend(ranges)
        if not sets:
            raise config_error("no IP ranges specified")
        self.sets = []
        for s in sets:
            if not s:
                raise config_error("empty range set")
            rs = [Range(c) for c in s]
            if len({r.net.version for r in rs}) != 1:
                raise config_error("a range set mixes IPv4 and IPv6")
            self.sets.append(rs)
        self.routes = ipam.get("routes") or []
        if not isinstance(self.routes, list) or not all(
                isinstance(r, dict) and isinstance(r.get("dst"), str) for r in self.routes):
            raise config_error("\"routes\" must be a list of {\"dst\": ...} objects")
        self.dns = ipam.get("dns")
        if self.dns is not None and not (
                isinstance(self.dns, dict)
                and all(isinstance(self.dns.get(k, []), list) for k in ("nameservers", "search", "options"))):
            raise config_error("\"dns\" must be an object with list fields")


def _ip(s):
    try:
        return ipaddress.ip_address(s)
    except ValueError:
        return None


def _in_set(rs, addr):
    return any(r.contains(addr) for r in rs)


def _describe(rs):
    return ",".join(r.describe() for r in rs)


def add(store, log, container_id, ifname, raw_config):
    """Returns a list of (address "a.b.c.d/prefix", gateway) plus the config."""
    conf = Config(raw_config)
    leases = store.leases()
    for l in leases:
        a = _ip(l.ip)
        if l.container_id == container_id and l.ifname == ifname and a is not None \
                and any(_in_set(rs, a) for rs in conf.sets):
            raise IpamError(PLUGIN, "%s has been allocated to %s/%s, duplicate allocation is not allowed"
                            % (l.ip, container_id, ifname))
    taken = {a for a in (_ip(l.ip) for l in leases) if a is not None}
    out = []
    try:
        for index, rs in enumerate(conf.sets):
            skip = set(taken)
            while True:
                ip = next((a for a in (r.first_free(skip) for r in rs) if a is not None), None)
                if ip is None:
                    raise IpamError(PLUGIN_NOT_AVAILABLE,
                                    "no IP addresses available in range set: %s" % _describe(rs))
                if store.reserve(str(ip), container_id, ifname, index):
                    break
                skip.add(ip)  # lost a race: try the next one
            r = next(r for r in rs if r.contains(ip))
            out.append(("%s/%d" % (ip, r.net.prefixlen), str(r.gateway)))
    except Exception:
        # The attachment held nothing before (checked above): free what this call took.
        store.release_owner(container_id, ifname)
        raise
    log("info", "allocated %s to %s" % (",".join(a for a, _ in out), container_id))
    return out, conf


def delete(store, log, container_id, ifname, raw_config):
    try:
        Config(raw_config)
    except IpamError as e:
        log("warn", "DEL with invalid config: %s" % e.msg)
    freed = store.release_owner(container_id, ifname)
    if freed:
        log("info", "released %s of %s" % (",".join(freed), container_id))


def check(store, container_id, ifname, raw_config):
    Config(raw_config)
    if not any(l.container_id == container_id and l.ifname == ifname for l in store.leases()):
        raise IpamError(PLUGIN, "failed to find address added by container %s" % container_id)


def status(store, raw_config):
    conf = Config(raw_config)
    addrs = [a for a in (_ip(l.ip) for l in store.leases()) if a is not None]
    for rs in conf.sets:
        used = sum(1 for a in addrs if _in_set(rs, a))
        if sum(r.capacity() for r in rs) <= used:
            raise IpamError(PLUGIN_NOT_AVAILABLE, "range set %s is exhausted (%d leases)" % (_describe(rs), used))


def gc(store, log, valid):
    keep = {(a.container_id, a.ifname) for a in valid}
    owners = sorted({(l.container_id, l.ifname) for l in store.leases()} - keep)
    for cid, ifname in owners:
        freed = store.release_owner(cid, ifname)
        log("info", "gc released %s of %s/%s" % (",".join(freed), cid, ifname))

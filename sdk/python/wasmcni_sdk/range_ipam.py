"""A complete IPAM plugin over the host's lease store, reading the
host-local config (ranges, routes, dns, requested IPs), with the choice of
the next free address left to `pick`. host-local is this with a round-robin
`pick`; the lowest free address is:

    class LowestFree(RangeIpam):
        def pick(self, range_set, last_reserved, taken):
            return next(filter(None, (r.first_free(r.start, taken) for r in range_set)), None)
"""

import ipaddress
from abc import abstractmethod

from . import log
from .errors import NOT_AVAILABLE, CniError, plugin_error
from .ip import is_address
from .ipam import Ipam
from .ipam_config import IpamConfig
from .result import CniResult, IpConfig


def _owned_by(lease, inv):
    return lease.container_id == inv.container_id and lease.ifname == inv.ifname


def _joined(ips):
    return ",".join(str(ip) for ip in ips)


class RangeIpam(Ipam):
    @abstractmethod
    def pick(self, range_set, last_reserved, taken):
        """A free address of `range_set` (a `RangeSet`), given the last one
        reserved in it (or None) and the set of every address taken; never
        a range's gateway. None when the set is full."""

    def add(self, inv, store):
        conf = IpamConfig.parse(inv.config)
        ips = self._allocate(inv, conf, store)
        log.info("allocated %s to %s" % (_joined(c.address for c in ips), inv.container_id))
        return CniResult(ips=ips, routes=list(conf.routes), dns=conf.dns)

    def _allocate(self, inv, conf, store):
        leases = store.leases()
        # Checked before anything is reserved: a refused ADD must not touch
        # the attachment's existing leases.
        for lease in leases:
            if _owned_by(lease, inv) and any(s.contains(lease.ip) for s in conf.range_sets):
                raise plugin_error("%s has been allocated to %s/%s, duplicate allocation is not allowed"
                                   % (lease.ip, inv.container_id, inv.ifname))
        taken = {lease.ip for lease in leases}
        try:
            return self._reserve_all(inv, conf, taken, list(inv.requested_ips), store)
        except Exception:
            # The attachment held nothing before: free what this call took.
            store.release_owner(inv.container_id, inv.ifname)
            raise

    def _reserve_all(self, inv, conf, taken, requested, store):
        """One address per range set (the requested one where given)."""
        ips = []
        for index, range_set in enumerate(conf.range_sets):
            wanted = next((ip for ip in requested if range_set.contains(ip)), None)
            if wanted is not None:
                requested.remove(wanted)
                if range_set.is_gateway(wanted) or not store.reserve(wanted, inv.container_id, inv.ifname, index):
                    raise plugin_error("requested IP address %s is not available in range set %s"
                                       % (wanted, range_set))
                ip = wanted
            else:
                ip = self._reserve_next(inv, range_set, index, taken, store)
            r = range_set.range_of(ip)
            ips.append(IpConfig(address=ipaddress.ip_interface((ip, r.subnet.prefixlen)), gateway=r.gateway))
        if requested:
            raise plugin_error("requested IPs %s were not allocated" % ", ".join(str(ip) for ip in requested))
        return ips

    def _reserve_next(self, inv, range_set, index, taken, store):
        last = store.last_reserved(index)
        skip = set(taken)
        while True:
            ip = self.pick(range_set, last, skip)
            if ip is None:
                raise CniError(NOT_AVAILABLE, "no IP addresses available in range set: %s" % range_set)
            # A pick that ignores `taken` would loop here until the deadline.
            if not is_address(ip) or ip in skip or not range_set.contains(ip) or range_set.is_gateway(ip):
                raise plugin_error("pick chose %r, which is not a free address of range set %s" % (ip, range_set))
            if store.reserve(ip, inv.container_id, inv.ifname, index):
                return ip
            skip.add(ip)  # taken since the leases were read: try the next one

    def delete(self, inv, store):
        # A config error must not stop a DEL from freeing what it can.
        try:
            IpamConfig.parse(inv.config)
        except CniError as e:
            log.warn("DEL with invalid config: %s" % e.msg)
        freed = store.release_owner(inv.container_id, inv.ifname)
        if freed:
            log.info("released %s of %s" % (_joined(freed), inv.container_id))

    def check(self, inv, store):
        IpamConfig.parse(inv.config)
        if not any(_owned_by(lease, inv) for lease in store.leases()):
            raise plugin_error("host-local: failed to find address added by container %s" % inv.container_id)

    def status(self, inv, store):
        conf = IpamConfig.parse(inv.config)
        leases = store.leases()
        for range_set in conf.range_sets:
            used = sum(1 for lease in leases if range_set.contains(lease.ip))
            if range_set.capacity() <= used:
                raise CniError(NOT_AVAILABLE, "range set %s is exhausted (%d leases)" % (range_set, used))

    def gc(self, inv, valid, store):
        keep = {(a.container_id, a.ifname) for a in valid}
        owners = sorted({(lease.container_id, lease.ifname) for lease in store.leases()} - keep)
        for container_id, ifname in owners:
            freed = store.release_owner(container_id, ifname)
            log.info("gc released %s of %s/%s" % (_joined(freed), container_id, ifname))

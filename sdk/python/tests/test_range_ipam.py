"""RangeIpam's behaviour, as Rust's range_ipam: requested IPs, duplicate
allocations, exhaustion, DEL, CHECK, STATUS and GC, through the testing host."""

from ipaddress import ip_address, ip_interface, ip_network

import pytest
from wasmcni_sdk.errors import CniError
from wasmcni_sdk.range_ipam import RangeIpam
from wasmcni_sdk.testing import LeaseStore, TestHost, invocation


class FirstFree(RangeIpam):
    def pick(self, range_set, last_reserved, taken):
        free = (r.first_free(r.start, taken) for r in range_set)
        return next((ip for ip in free if ip is not None), None)


PLUGIN = FirstFree()
CONF = {"ipam": {"subnet": "10.9.0.0/29", "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["10.9.0.53"]}}}
DUAL = {"ipam": {"ranges": [[{"subnet": "10.9.0.0/24"}], [{"subnet": "fd00::/125"}]]}}


def failure(f, *args):
    with pytest.raises(CniError) as e:
        f(*args)
    return e.value


def owners(host):
    return sorted(c for c, _ in host.store.owners.values())


def test_add_allocates_skipping_the_gateway_and_reports_routes_and_dns():
    host = TestHost()
    r = host.add(PLUGIN, invocation("c1", CONF))
    assert r.ips[0].address == ip_interface("10.9.0.2/29") and r.ips[0].gateway == ip_address("10.9.0.1")
    assert r.routes[0].dst == ip_network("0.0.0.0/0")
    assert r.dns.nameservers == [ip_address("10.9.0.53")]
    assert host.store.owners == {ip_address("10.9.0.2"): ("c1", "eth0")}
    assert host.store.last == {0: ip_address("10.9.0.2")}
    assert host.logged("allocated 10.9.0.2/29 to c1")


def test_a_second_add_for_the_same_attachment_is_refused_and_leaves_one_lease():
    host = TestHost()
    host.add(PLUGIN, invocation("c1", CONF))
    err = failure(host.add, PLUGIN, invocation("c1", CONF))
    assert err.code == 100
    assert err.msg == "10.9.0.2 has been allocated to c1/eth0, duplicate allocation is not allowed"
    assert len(host.store.owners) == 1
    host.add(PLUGIN, invocation("c1", CONF, ifname="net1"))
    assert len(host.store.owners) == 2, "another ifname is another attachment"


def test_requested_ips_are_honoured_or_refused():
    host = TestHost()
    assert host.add(PLUGIN, invocation("c1", CONF, ips=["10.9.0.5"])).ips[0].address == ip_interface("10.9.0.5/29")
    err = failure(host.add, PLUGIN, invocation("c2", CONF, ips=["10.9.0.5"]))
    assert (err.code, err.msg) == (100, "requested IP address 10.9.0.5 is not available in range set 10.9.0.1-10.9.0.6")
    assert failure(host.add, PLUGIN, invocation("c2", CONF, ips=["10.9.0.1"])).code == 100, "the gateway was handed out"
    err = failure(host.add, PLUGIN, invocation("c2", CONF, ips=["10.9.0.3", "10.77.0.1"]))
    assert err.msg == "requested IPs 10.77.0.1 were not allocated"
    assert owners(host) == ["c1"], "a refused ADD kept an address"


def test_one_requested_ip_per_range_set_of_a_dual_stack_config():
    host = TestHost()
    ips = host.add(PLUGIN, invocation("c1", DUAL, ips=["fd00::5", "10.9.0.7"])).ips
    assert [c.address for c in ips] == [ip_interface("10.9.0.7/24"), ip_interface("fd00::5/125")]
    assert host.store.last == {0: ip_address("10.9.0.7"), 1: ip_address("fd00::5")}


def test_exhaustion_is_code_50_in_add_and_status():
    host = TestHost()
    for i in range(5):
        host.add(PLUGIN, invocation("c%d" % i, CONF))
    err = failure(host.add, PLUGIN, invocation("c9", CONF))
    assert (err.code, err.msg) == (50, "no IP addresses available in range set: 10.9.0.1-10.9.0.6")
    err = failure(host.status, PLUGIN, invocation("", CONF))
    assert (err.code, err.msg) == (50, "range set 10.9.0.1-10.9.0.6 is exhausted (5 leases)")
    host.delete(PLUGIN, invocation("c0", CONF))
    host.status(PLUGIN, invocation("", CONF))


def test_a_failed_add_frees_what_it_took_in_earlier_sets():
    host = TestHost()
    for i in range(7):
        host.store.reserve(ip_address("fd00::%d" % (i + 1)), "other%d" % i, "eth0", 1)
    assert failure(host.add, PLUGIN, invocation("c1", DUAL)).code == 50
    assert all(ip.version == 6 for ip in host.store.owners), "the IPv4 address stayed leased"


def test_an_address_taken_since_the_leases_were_read_is_skipped():
    class Racing(LeaseStore):
        """A store where another node takes .2 between leases() and reserve()."""
        def reserve(self, ip, container_id, ifname, range_set):
            if ip == ip_address("10.9.0.2") and ip not in self.owners:
                super().reserve(ip, "racer", "eth0", range_set)
            return super().reserve(ip, container_id, ifname, range_set)

    host = TestHost()
    host.store = Racing()
    assert host.add(PLUGIN, invocation("c1", CONF)).ips[0].address == ip_interface("10.9.0.3/29")


def test_del_is_idempotent_frees_with_a_bad_config_and_gc_keeps_only_valid_attachments():
    host = TestHost()
    for c in ("a", "b", "c", "d"):
        host.add(PLUGIN, invocation(c, CONF))
    host.delete(PLUGIN, invocation("a", CONF))
    host.delete(PLUGIN, invocation("a", CONF))
    assert host.logged("released 10.9.0.2 of a")
    host.delete(PLUGIN, invocation("d", {"ipam": {"subnet": "10.9.0.0/33"}}))
    assert ("warn", 'DEL with invalid config: invalid subnet "10.9.0.0/33"') in host.logs
    assert owners(host) == ["b", "c"]
    host.gc(PLUGIN, invocation("", CONF), [("b", "eth0"), ("c", "net1")])
    assert owners(host) == ["b"]
    assert host.logged("gc released 10.9.0.4 of c/eth0")
    host.check(PLUGIN, invocation("b", CONF))
    err = failure(host.check, PLUGIN, invocation("c", CONF))
    assert (err.code, err.msg) == (100, "host-local: failed to find address added by container c")


def test_a_bad_config_is_code_7_and_takes_nothing():
    host = TestHost()
    for call in (host.add, host.check, host.status):
        assert failure(call, PLUGIN, invocation("c1", {"ipam": {"subnet": "10.9.0.0/33"}})).code == 7
    assert host.store.owners == {}


def test_ipv6_allocation():
    host = TestHost()
    conf = {"ipam": {"ranges": [[{"subnet": "fd00:1::/64", "rangeStart": "fd00:1::ffff"}]]}}
    ips = [host.add(PLUGIN, invocation(c, conf)).ips[0] for c in ("a", "b")]
    assert [c.address for c in ips] == [ip_interface("fd00:1::ffff/64"), ip_interface("fd00:1::1:0/64")]
    assert ips[0].gateway == ip_address("fd00:1::1")


def test_a_pick_that_ignores_taken_is_a_plugin_failure_not_a_hang():
    class Stuck(RangeIpam):
        def pick(self, range_set, last_reserved, taken):
            return range_set.ranges[0].start + 1

    host = TestHost()
    host.add(Stuck(), invocation("a", CONF))
    err = failure(host.add, Stuck(), invocation("b", CONF))
    assert err.code == 100 and "pick chose" in err.msg
    assert owners(host) == ["a"]


def test_pick_sees_the_last_reservation_of_its_set():
    class RoundRobin(RangeIpam):
        def pick(self, range_set, last_reserved, taken):
            r = range_set.ranges[0]
            after = r.first_free(last_reserved + 1, taken) if last_reserved and last_reserved < r.end else None
            return after or r.first_free(r.start, taken)

    host = TestHost()
    for c in ("a", "b"):
        host.add(RoundRobin(), invocation(c, CONF))
    host.delete(RoundRobin(), invocation("a", CONF))
    assert host.add(RoundRobin(), invocation("c", CONF)).ips[0].address == ip_interface("10.9.0.4/29")

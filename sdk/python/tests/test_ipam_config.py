"""The host-local config: defaults as the reference, range arithmetic, and
every malformed config refused with code 7."""

import json
from ipaddress import ip_address, ip_network

import pytest
from wasmcni_sdk.errors import CniError
from wasmcni_sdk.ipam_config import IpamConfig
from wasmcni_sdk.result import Dns, Route


def parse(ipam):
    return IpamConfig.parse(json.dumps({"ipam": ipam}))


def test_defaults_match_the_reference():
    [r] = parse({"subnet": "10.1.2.0/24"}).range_sets[0]
    assert (r.subnet, r.start, r.end, r.gateway) == (
        ip_network("10.1.2.0/24"), ip_address("10.1.2.1"), ip_address("10.1.2.254"), ip_address("10.1.2.1"))
    assert r.capacity() == 253
    [v6] = parse({"ranges": [[{"subnet": "fd00::/120"}]]}).range_sets[0]
    assert (v6.start, v6.end, v6.capacity()) == (ip_address("fd00::1"), ip_address("fd00::ff"), 254)


def test_host_bits_of_a_subnet_are_cleared():
    assert parse({"subnet": "10.1.2.77/24"}).range_sets[0].ranges[0].subnet == ip_network("10.1.2.0/24")


def test_legacy_and_ranges_combine_into_dual_stack_legacy_first():
    sets = parse({"subnet": "10.1.0.0/16", "rangeStart": "10.1.0.10", "rangeEnd": "10.1.0.20",
                  "ranges": [[{"subnet": "fd00::/64"}]]}).range_sets
    assert [s.ranges[0].subnet.version for s in sets] == [4, 6]
    assert sets[0].capacity() == 11
    assert str(sets[0]) == "10.1.0.10-10.1.0.20"


def test_routes_and_dns_come_typed():
    conf = parse({"subnet": "10.1.0.0/24", "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.9.0.0/16", "gw": "10.1.0.254",
                                                                             "priority": 5}],
                  "dns": {"nameservers": ["10.1.0.53", "fd00::53"], "domain": "cluster.local", "search": ["a"]}})
    assert conf.routes == [Route(dst=ip_network("0.0.0.0/0")),
                           Route(dst=ip_network("10.9.0.0/16"), gw=ip_address("10.1.0.254"), priority=5)]
    assert conf.dns == Dns(nameservers=[ip_address("10.1.0.53"), ip_address("fd00::53")], domain="cluster.local",
                           search=["a"])
    assert parse({"subnet": "10.1.0.0/24"}).dns is None


def test_first_free_skips_the_gateway_and_taken_and_stops_at_the_end():
    r = parse({"subnet": "10.1.0.0/29", "gateway": "10.1.0.2"}).range_sets[0].ranges[0]
    taken = {ip_address("10.1.0.1"), ip_address("10.1.0.3")}
    assert r.first_free(r.start, taken) == ip_address("10.1.0.4")
    assert r.first_free(ip_address("10.1.0.6"), taken) == ip_address("10.1.0.6")
    assert r.first_free(ip_address("10.1.0.6"), taken | {ip_address("10.1.0.6")}) is None
    assert r.first_free(ip_address("10.1.0.7"), set()) is None, "the broadcast is not in the range"
    assert r.capacity() == 5


def test_ipv6_arithmetic_reaches_the_last_address_of_the_space():
    r = parse({"ranges": [[{"subnet": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124"}]]}).range_sets[0].ranges[0]
    last = ip_address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
    assert r.end == last and r.contains(last)
    before = ip_address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")
    assert r.first_free(before, {before}) == last
    assert r.first_free(last, {last}) is None
    assert r.capacity() == 14
    assert not r.contains(ip_address("10.0.0.1")), "an address of the other family"


@pytest.mark.parametrize("ipam, message", [
    ({}, "no IP ranges specified"),
    ({"subnet": "10.1.0.0/33"}, 'invalid subnet "10.1.0.0/33"'),
    ({"subnet": "nonsense"}, 'invalid subnet "nonsense"'),
    ({"subnet": "10.1.0.0"}, 'invalid subnet "10.1.0.0"'),
    ({"subnet": "10.1.0.0/255.255.0.0"}, 'invalid subnet "10.1.0.0/255.255.0.0"'),
    ({"subnet": "10.1.0.0/31"}, "network 10.1.0.0/31 too small to allocate from"),
    ({"subnet": "10.1.0.4/32"}, "network 10.1.0.4/32 too small to allocate from"),
    ({"subnet": "10.1.0.0/24", "gateway": "10.2.0.1"}, "gateway 10.2.0.1 not in network 10.1.0.0/24"),
    ({"subnet": "10.1.0.0/24", "rangeStart": "fd00::1"}, "rangeStart fd00::1 not in network 10.1.0.0/24"),
    ({"subnet": "10.1.0.0/24", "rangeEnd": "10.1.1.1"}, "rangeEnd 10.1.1.1 not in network 10.1.0.0/24"),
    ({"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.9", "rangeEnd": "10.1.0.2"},
     "rangeStart 10.1.0.9 is after rangeEnd 10.1.0.2"),
    ({"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.x"}, "rangeStart"),
    ({"ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "fd00::/64"}]]}, "a range set mixes IPv4 and IPv6"),
    ({"ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "10.1.0.0/25"}]]},
     "ranges 10.1.0.1-10.1.0.254 and 10.1.0.1-10.1.0.126 overlap"),
    ({"ranges": [[]]}, "empty range set"),
    ({"ranges": "10.1.0.0/24"}, '"ranges"'),
    ({"ranges": [[{"gateway": "10.1.0.1"}]]}, '"subnet"'),
    ({"subnet": "10.1.0.0/24", "routes": [{"gw": "10.1.0.1"}]}, '"dst"'),
    ({"subnet": "10.1.0.0/24", "routes": [{"dst": "fd00::/64", "gw": "10.1.0.1"}]}, "other family"),
    ({"subnet": "10.1.0.0/24", "routes": [{"dst": "0.0.0.0/0", "priority": -1}]}, "priority"),
    ({"subnet": "10.1.0.0/24", "dns": {"nameservers": ["ns1"]}}, 'nameserver "ns1"'),
    ({"subnet": "10.1.0.0/24", "dns": {"search": "a"}}, '"search"'),
])
def test_bad_configs_are_code_7(ipam, message):
    with pytest.raises(CniError) as e:
        parse(ipam)
    assert e.value.code == 7
    assert message in e.value.msg


@pytest.mark.parametrize("config, message", [
    ("{", "invalid plugin config"),
    ("[]", "expected a JSON object"),
    ("{}", 'missing "ipam" section'),
    ('{"ipam": 3}', '"ipam" must be an object'),
])
def test_a_config_that_is_not_a_plugin_config_is_code_7(config, message):
    with pytest.raises(CniError) as e:
        IpamConfig.parse(config)
    assert (e.value.code, message in e.value.msg) == (7, True)

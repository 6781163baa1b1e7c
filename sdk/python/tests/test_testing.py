"""The testing host refuses what the real host refuses, and its lease store
behaves as the host's."""

from ipaddress import ip_address, ip_interface, ip_network

import pytest
from wasmcni_sdk.errors import CniError
from wasmcni_sdk.ipam import Ipam
from wasmcni_sdk.result import CniResult, Dns, Iface, IpConfig, Route
from wasmcni_sdk.testing import LeaseStore, TestHost, invocation


def test_the_store_leases_an_address_once_and_remembers_the_last_per_set():
    s = LeaseStore()
    assert s.reserve(ip_address("10.0.0.2"), "a", "eth0", 0)
    assert not s.reserve(ip_address("10.0.0.2"), "b", "eth0", 0)
    assert s.reserve(ip_address("fd00::2"), "a", "eth0", 1)
    assert s.reserve(ip_address("10.0.0.1"), "b", "eth0", 0)
    assert (s.last_reserved(0), s.last_reserved(1), s.last_reserved(2)) == (
        ip_address("10.0.0.1"), ip_address("fd00::2"), None)
    assert [lease.ip for lease in s.leases()] == [ip_address(a) for a in ("10.0.0.1", "10.0.0.2", "fd00::2")]


def test_release_owner_frees_as_the_host_s_store_does():
    s = LeaseStore()
    for ip, ifname in (("10.0.0.2", "eth0"), ("10.0.0.3", ""), ("10.0.0.4", "net1")):
        s.reserve(ip_address(ip), "c1", ifname, 0)
    assert s.release_owner(" c1 ", "eth0") == [ip_address("10.0.0.2"), ip_address("10.0.0.3")]
    assert list(s.owners) == [ip_address("10.0.0.4")]
    assert s.release_owner("c1", "eth0") == []


def test_the_store_refuses_values_the_wit_cannot_carry():
    s = LeaseStore()
    for args in (("10.0.0.2", "a", "eth0", 0), (ip_interface("10.0.0.2/24"), "a", "eth0", 0),
                 (ip_address("10.0.0.2"), "a", "eth0", -1), (ip_address("10.0.0.2"), None, "eth0", 0)):
        with pytest.raises(ValueError):
            s.reserve(*args)
    assert s.owners == {}


class Returns(Ipam):
    """An IPAM whose ADD returns (or raises) what it is given."""

    def __init__(self, outcome):
        self.outcome = outcome

    def add(self, inv, store):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def delete(self, inv, store):
        store.reserve(inv.container_id, "x", "eth0", 0)

    check = status = delete

    def gc(self, inv, valid, store):
        pass


V4 = ip_interface("10.0.0.2/24")


@pytest.mark.parametrize("result, problem", [
    ({"ips": []}, "is not a CniResult"),
    (CniResult(ips=[IpConfig(address="10.0.0.2/24")]), "address '10.0.0.2/24' is not an IP interface"),
    (CniResult(ips=[IpConfig(address=ip_network("10.0.0.0/24"))]), "is not an IP interface"),
    (CniResult(ips=[IpConfig(address=V4, gateway=ip_address("fd00::1"))]), "is not an IPv4 address"),
    (CniResult(ips=[IpConfig(address=V4, gateway=V4)]), "is not an IP address"),
    (CniResult(ips=[IpConfig(address=V4, iface=-1)]), "iface"),
    (CniResult(ips=(IpConfig(address=V4),)), "ips must be a list"),
    (CniResult(routes=[Route(dst=ip_network("fd00::/64"), gw=ip_address("10.0.0.1"))]), "is not an IPv6 address"),
    (CniResult(routes=[Route(dst=V4)]), "is not an IP network"),
    (CniResult(routes=[Route(dst=ip_network("0.0.0.0/0"), mtu=1 << 32)]), "mtu"),
    (CniResult(routes=[Route(dst=ip_network("0.0.0.0/0"), scope="link")]), "scope"),
    (CniResult(interfaces=[Iface(name="eth0", mac="0a:58:00:00:00:01")]), "mac"),
    (CniResult(dns=Dns(nameservers=["10.0.0.53"])), "nameserver"),
    (CniResult(dns=Dns(search="cluster.local")), "search"),
])
def test_a_result_the_host_would_refuse_is_code_100(result, problem):
    with pytest.raises(CniError) as e:
        TestHost().add(Returns(result), invocation("a", "{}"))
    assert e.value.code == 100
    assert e.value.msg.startswith("plugin returned an invalid result: ") and problem in e.value.msg


def test_a_good_result_passes():
    result = CniResult(interfaces=[Iface(name="eth0", mac=bytes(6))],
                       ips=[IpConfig(address=V4, gateway=ip_address("10.0.0.1"), iface=0)],
                       routes=[Route(dst=ip_network("0.0.0.0/0"), gw=ip_address("10.0.0.1"), priority=10)],
                       dns=Dns(nameservers=[ip_address("fd00::53")]))
    assert TestHost().add(Returns(result), invocation("a", "{}")) is result


def test_an_unexpected_exception_is_an_internal_error_and_a_cni_error_passes():
    host = TestHost()
    with pytest.raises(CniError) as e:
        host.add(Returns(ZeroDivisionError("division by zero")), invocation("a", "{}"))
    assert (e.value.code, e.value.msg) == (100, "internal error: ZeroDivisionError: division by zero")
    with pytest.raises(CniError) as e:
        host.add(Returns(CniError(11, "busy", "later")), invocation("a", "{}"))
    assert (e.value.code, e.value.msg, e.value.details) == (11, "busy", "later")
    with pytest.raises(CniError) as e:
        host.delete(Returns(None), invocation("a", "{}"))
    assert "ValueError" in e.value.msg, "a string address reached the store"


@pytest.mark.parametrize("kwargs, code", [
    ({"ips": ["10.0.0.300"]}, 7),
    ({"ips": ["10.0.0.0/24"]}, 7),
    ({"ifname": "a/b"}, 4),
    ({"ifname": "x" * 16}, 4),
    ({"ifname": ""}, 4),
])
def test_the_invocation_refuses_what_the_host_refuses_before_a_plugin_runs(kwargs, code):
    with pytest.raises(CniError) as e:
        invocation("a", "{}", **kwargs)
    assert e.value.code == code


def test_the_invocation_takes_requested_ips_typed_without_duplicates():
    inv = invocation("a", {"k": 1}, ips=["10.0.0.2", ip_address("fd00::2"), "10.0.0.2"])
    assert inv.requested_ips == [ip_address("10.0.0.2"), ip_address("fd00::2")]
    assert (inv.config, inv.network_name, inv.netns) == ('{"k": 1}', "test", "/run/netns/test")
    with pytest.raises(CniError) as e:
        invocation("bad id!", "{}")
    assert e.value.code == 4
    assert invocation("", "{}").container_id == "", "STATUS and GC run without a container"

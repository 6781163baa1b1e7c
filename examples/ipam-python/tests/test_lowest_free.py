"""The lowest-free policy against the SDK's in-memory host (no root, no Wasm)."""

from ipaddress import ip_address, ip_interface

import pytest
from lowest_free import LowestFree
from wasmcni_sdk.errors import CniError
from wasmcni_sdk.testing import TestHost, invocation

CONF = {"ipam": {"subnet": "10.9.0.0/29"}}


def add(host, container, conf=CONF):
    return host.add(LowestFree(), invocation(container, conf)).ips


def test_a_released_low_address_is_handed_out_again():
    host = TestHost()
    assert [(c.address, c.gateway) for c in add(host, "a")] == [(ip_interface("10.9.0.2/29"), ip_address("10.9.0.1"))]
    assert add(host, "b")[0].address == ip_interface("10.9.0.3/29")
    host.delete(LowestFree(), invocation("a", CONF))
    # host-local's round-robin would give .4.
    assert add(host, "c")[0].address == ip_interface("10.9.0.2/29")


def test_exhaustion_is_code_50_in_add_and_status():
    host = TestHost()
    for c in "abcde":
        add(host, c)
    with pytest.raises(CniError) as e:
        add(host, "z")
    assert e.value.code == 50
    with pytest.raises(CniError) as e:
        host.status(LowestFree(), invocation("", CONF))
    assert e.value.code == 50


def test_each_family_of_a_dual_stack_config_gets_its_lowest_free_address():
    conf = {"ipam": {"ranges": [[{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.10"}], [{"subnet": "fd00::/120"}]]}}
    host = TestHost()
    host.store.reserve(ip_address("fd00::2"), "other", "eth0", 1)
    assert [c.address for c in add(host, "a", conf)] == [ip_interface("10.1.0.10/24"), ip_interface("fd00::3/120")]

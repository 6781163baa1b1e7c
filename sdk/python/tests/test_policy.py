"""Policies: decisions as the host gets them (failing closed), and the
invocation helpers a policy reads."""

from dataclasses import replace
from ipaddress import ip_address, ip_network

import pytest
from wasmcni_sdk.errors import CniError, config_error
from wasmcni_sdk.policy import Allow, AllowWith, Deny, IpRange, Policy
from wasmcni_sdk.result import Route
from wasmcni_sdk.testing import TestHost, invocation


class DenyNamespaces(Policy):
    def admit(self, inv):
        deny = inv.config_json().get("deny", [])
        if inv.pod_namespace() in deny:
            return Deny("namespace %s is denied on %s" % (inv.pod_namespace(), inv.network_name))
        if inv.pod_namespace() == "pinned":
            return AllowWith(ips=[ip_address("10.9.0.7")], ranges=[IpRange(subnet=ip_network("10.9.0.0/24"))],
                             routes=[Route(dst=ip_network("10.50.0.0/16"), gw=ip_address("10.9.0.1"))])
        return Allow()


CONF = {"plugin": "deny", "deny": ["blocked"]}


def test_decisions_pass_through_as_made():
    host = TestHost()
    assert host.admit(DenyNamespaces(), invocation("a", CONF, namespace="blocked")) == Deny(
        "namespace blocked is denied on test")
    assert host.admit(DenyNamespaces(), invocation("a", CONF, namespace="prod")) == Allow()
    assert host.admit(DenyNamespaces(), invocation("a", CONF)) == Allow()
    changed = host.admit(DenyNamespaces(), invocation("a", CONF, namespace="pinned"))
    assert isinstance(changed, AllowWith) and changed.ips == [ip_address("10.9.0.7")]
    assert host.logs == []


def test_a_policy_fails_closed():
    class Broken(Policy):
        def __init__(self, outcome):
            self.outcome = outcome

        def admit(self, inv):
            if isinstance(self.outcome, Exception):
                raise self.outcome
            return self.outcome

    host, inv = TestHost(), invocation("a", CONF)
    assert host.admit(Broken(config_error("no deny list")), inv) == Deny("no deny list")
    assert host.admit(Broken(KeyError("deny")), inv) == Deny("internal error: KeyError: 'deny'")
    bad_ip = host.admit(Broken(AllowWith(ips=["10.9.0.7"])), inv)
    assert bad_ip.reason.startswith("policy returned an invalid decision: requested IP '10.9.0.7'")
    bad_gw = host.admit(Broken(AllowWith(ranges=[IpRange(subnet=ip_network("10.9.0.0/24"),
                                                         gateway=ip_address("fd00::1"))])), inv)
    assert "is not an IPv4 address" in bad_gw.reason
    assert isinstance(host.admit(Broken("allow"), inv), Deny)
    assert host.logged("denying the ADD of a: no deny list")


def test_the_invocation_reads_config_and_cni_args():
    inv = invocation("a", CONF, namespace="prod")
    assert inv.config_json()["deny"] == ["blocked"]
    assert (inv.arg("K8S_POD_NAMESPACE"), inv.arg("IP"), inv.pod_namespace()) == ("prod", None, "prod")
    assert invocation("a", CONF).pod_namespace() is None
    with pytest.raises(CniError) as e:
        replace(inv, config="{not json").config_json()
    assert e.value.code == 7 and e.value.msg.startswith("invalid plugin config")

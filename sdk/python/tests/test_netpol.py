"""Network policy: the selector and prefix helpers, and rules as the host
takes them."""

from ipaddress import ip_address, ip_network

import pytest
from wasmcni_sdk.errors import CniError
from wasmcni_sdk.netpol import (Allow, NetworkPolicy, Pod, PodRules, Ports, Protocol, host_prefix,
                                selector_matches)
from wasmcni_sdk.testing import TestHost

LABELS = {"app": "web", "tier": "front"}


@pytest.mark.parametrize("selector, matches", [
    ({}, True),
    (None, True),
    ({"matchLabels": {"app": "web"}}, True),
    ({"matchLabels": {"app": "db"}}, False),
    ({"matchLabels": {"app": "web", "env": "prod"}}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}]}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}]}, False),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["back"]}]}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, False),
    ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, True),
    ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, True),
    ({"matchExpressions": [{"key": "env", "operator": "Exists"}]}, False),
    ({"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}, True),
    ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
    ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
])
def test_selector_matches(selector, matches):
    assert selector_matches(selector, LABELS) is matches


def test_an_unknown_operator_is_code_7():
    with pytest.raises(CniError) as e:
        selector_matches({"matchExpressions": [{"key": "app", "operator": "Equals"}]}, LABELS)
    assert (e.value.code, e.value.msg) == (7, 'unknown matchExpressions operator "Equals"')


def test_host_prefix():
    assert host_prefix(ip_address("10.0.0.5")) == ip_network("10.0.0.5/32")
    assert host_prefix(ip_address("fd00::5")) == ip_network("fd00::5/128")


def pod(namespace, name, last, **labels):
    return Pod(namespace=namespace, name=name, labels=labels, ips=[ip_address("10.0.0.%d" % last)])


class SameNamespace(NetworkPolicy):
    """Pods selected by any policy's podSelector take ingress only from their namespace."""

    def rules(self, policies, namespaces, local, remote):
        everyone = local + remote
        out = []
        for p in local:
            isolated = any(selector_matches(pol["spec"]["podSelector"], p.labels) for pol in policies)
            peers = [host_prefix(ip) for q in everyone if q.namespace == p.namespace for ip in q.ips]
            allow = Allow(peers=peers, ports=[Ports(Protocol.TCP, (80, 80))])
            out.append(PodRules(namespace=p.namespace, name=p.name, ingress_isolated=isolated,
                                ingress=[allow] if isolated else []))
        return out


POLICY = {"metadata": {"name": "web"}, "spec": {"podSelector": {"matchLabels": {"app": "web"}}}}


def test_rules_come_back_as_the_module_made_them():
    host = TestHost()
    rules = host.rules(SameNamespace(), [POLICY], [], [pod("x", "a", 1, app="web"), pod("x", "b", 2)],
                       [pod("x", "c", 3), pod("y", "d", 4)])
    assert [(r.name, r.ingress_isolated) for r in rules] == [("a", True), ("b", False)]
    assert rules[0].ingress[0].peers == [ip_network("10.0.0.%d/32" % i) for i in (1, 2, 3)]


def test_rules_the_host_would_refuse_are_code_100_and_bad_policy_json_code_7():
    class Returning(NetworkPolicy):
        def __init__(self, rules):
            self.out = rules

        def rules(self, policies, namespaces, local, remote):
            return self.out

    host, local = TestHost(), [pod("x", "a", 1)]
    for bad in (PodRules("x", "a", ingress=[Allow(peers=["10.0.0.0/24"])]),
                PodRules("x", "a", ingress=[Allow(ports=[Ports(Protocol.TCP, (80, 70000))])]),
                PodRules("x", "a", ingress=[Allow(ports=[Ports("tcp")])]),
                PodRules("x", "a", egress_isolated="yes")):
        with pytest.raises(CniError) as e:
            host.rules(Returning([bad]), [], [], local)
        assert e.value.code == 100 and e.value.msg.startswith("module returned invalid rules"), bad
    with pytest.raises(CniError) as e:
        host.rules(Returning([]), ["{"], [], local)
    assert e.value.code == 7


def test_rules_for_a_pod_that_is_not_local_are_dropped_as_the_host_does():
    class Everyone(NetworkPolicy):
        def rules(self, policies, namespaces, local, remote):
            return [PodRules(p.namespace, p.name, ingress_isolated=True) for p in local + remote]

    rules = TestHost().rules(Everyone(), [], [], [pod("x", "a", 1)], [pod("x", "b", 2)])
    assert [r.name for r in rules] == ["a"]

"""The `netpol` world's edge: a `NetworkPolicy` as the `network-policy`
export. In the app module:

    NetworkPolicy = netpol.network_policy(SameNamespace())
"""

from wit_world.exports import network_policy as wit

from ..netpol import Namespace, Pod, evaluate
from .convert import address, exported, to_prefix


def _labels(labels):
    return {label.key: label.value for label in labels}


def _pod(p):
    return Pod(namespace=p.namespace, name=p.name, labels=_labels(p.labels), ips=[address(ip) for ip in p.ips])


def _to_allow(a):
    return wit.Allow(
        peers=None if a.peers is None else [to_prefix(p) for p in a.peers],
        ports=[wit.Ports(protocol=wit.Protocol[p.protocol.name], range=p.range) for p in a.ports],
    )


def _to_rules(r):
    return wit.PodRules(namespace=r.namespace, name=r.name, ingress_isolated=r.ingress_isolated,
                        egress_isolated=r.egress_isolated, ingress=[_to_allow(a) for a in r.ingress],
                        egress=[_to_allow(a) for a in r.egress])


def network_policy(module):
    """The class componentize-py instantiates for the `network-policy`
    export (it looks it up as `NetworkPolicy` in the app module), serving
    `module`."""

    class NetworkPolicy:
        def rules(self, policies, namespaces, local, remote):
            def run():
                spaces = [Namespace(name=n.name, labels=_labels(n.labels)) for n in namespaces]
                rules = evaluate(module, list(policies), spaces, [_pod(p) for p in local], [_pod(p) for p in remote])
                return [_to_rules(r) for r in rules]
            return exported(run)

    return NetworkPolicy

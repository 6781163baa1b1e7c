"""Network policy (the `netpol` world, WIT 1.2): NetworkPolicy objects,
namespaces and pods in; out, for each pod this node serves, whether each
direction is isolated and what it allows. The host compiles the answer into
nftables; the module never touches the kernel."""

import enum
import ipaddress
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .errors import PLUGIN_FAILURE, CniError, config_error, guard
from .ip import Address, Network, check_network, check_uint


class Protocol(enum.Enum):
    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"


@dataclass
class Namespace:
    name: str
    labels: Dict[str, str] = field(default_factory=dict)


@dataclass
class Pod:
    namespace: str
    name: str
    labels: Dict[str, str] = field(default_factory=dict)
    ips: List[Address] = field(default_factory=list)


@dataclass
class Ports:
    """Ports of one protocol: all of them, or `range` (first, last), inclusive."""
    protocol: Protocol
    range: Optional[Tuple[int, int]] = None


@dataclass
class Allow:
    """What one direction allows: traffic with `peers` on `ports`."""
    # The peers' networks; None allows every address.
    peers: Optional[List[Network]] = None
    # Empty allows every port of every protocol.
    ports: List[Ports] = field(default_factory=list)


@dataclass
class PodRules:
    """What a local pod may receive and send. A direction that is not
    isolated is open, whatever its list holds."""
    namespace: str
    name: str
    ingress_isolated: bool = False
    egress_isolated: bool = False
    ingress: List[Allow] = field(default_factory=list)
    egress: List[Allow] = field(default_factory=list)


class NetworkPolicy(ABC):
    @abstractmethod
    def rules(self, policies: List[dict], namespaces: List[Namespace], local: List[Pod],
              remote: List[Pod]) -> List[PodRules]:
        """The rules of every pod in `local` (the pods this node serves).
        `policies` are NetworkPolicy objects as the API's JSON, parsed;
        `remote` are the other pods the policies may select as peers."""


def host_prefix(ip):
    """`ip` as a one-address network, a peer: `10.0.0.5/32`, `fd00::5/128`."""
    return ipaddress.ip_network((ip, ip.max_prefixlen))


def selector_matches(selector, labels):
    """Whether `labels` satisfy a label selector (`matchLabels` and
    `matchExpressions` with In, NotIn, Exists, DoesNotExist). An empty or
    absent selector matches everything; an unknown operator is code 7."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for r in selector.get("matchExpressions") or []:
        value, values, op = labels.get(r.get("key")), r.get("values") or [], r.get("operator")
        if op == "In":
            ok = value is not None and value in values
        elif op == "NotIn":
            ok = value not in values  # an absent label is in no list
        elif op == "Exists":
            ok = value is not None
        elif op == "DoesNotExist":
            ok = value is None
        else:
            raise config_error("unknown matchExpressions operator %s" % json.dumps(op))
        if not ok:
            return False
    return True


def parse_policies(texts):
    """The NetworkPolicy objects as the host sends them (JSON), parsed."""
    policies = []
    for i, text in enumerate(texts):
        try:
            policies.append(json.loads(text))
        except ValueError as e:
            raise config_error("NetworkPolicy %d: invalid JSON: %s" % (i, e)) from None
    return policies


def _check_allow(a, where):
    if not isinstance(a, Allow):
        raise ValueError("%s: %r is not an Allow" % (where, a))
    for peer in a.peers or []:
        check_network(peer, "%s peer" % where)
    for p in a.ports:
        if not isinstance(p, Ports) or not isinstance(p.protocol, Protocol):
            raise ValueError("%s: %r is not Ports of a Protocol" % (where, p))
        if p.range is not None:
            if not isinstance(p.range, tuple) or len(p.range) != 2:
                raise ValueError("%s: port range %r is not a (first, last) tuple" % (where, p.range))
            for port in p.range:
                check_uint(port, "%s port" % where, bits=16, optional=False)


def check_rules(rules):
    """`rules` if the host would take them; CniError 100 otherwise."""
    try:
        if not isinstance(rules, list):
            raise ValueError("%r is not a list" % (rules,))
        for r in rules:
            if not isinstance(r, PodRules) or not all(isinstance(v, str) for v in (r.namespace, r.name)):
                raise ValueError("%r is not PodRules" % (r,))
            for direction in ("ingress", "egress"):
                if not isinstance(getattr(r, direction + "_isolated"), bool):
                    raise ValueError("%s/%s: %s_isolated is not a bool" % (r.namespace, r.name, direction))
                for a in getattr(r, direction):
                    _check_allow(a, "%s/%s %s" % (r.namespace, r.name, direction))
    except ValueError as e:
        raise CniError(PLUGIN_FAILURE, "module returned invalid rules: %s" % e) from None
    return rules


def evaluate(module, policies, namespaces, local, remote):
    """The rules as the host gets them from `module`, for policies as JSON text."""
    return check_rules(guard(module.rules, parse_policies(policies), namespaces, local, remote))

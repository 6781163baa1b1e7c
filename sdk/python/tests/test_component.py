"""The component edge under CPython, against the bindings componentize-py
generates for each world, with the imports the host would serve replaced by
fakes: what crosses the WIT comes out typed both ways, and nothing but an
`Err` leaves an export."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from wasmcni_sdk import log
from wasmcni_sdk.errors import config_error
from wasmcni_sdk.ipam import Ipam
from wasmcni_sdk.netpol import Allow, NetworkPolicy, PodRules, Ports, Protocol, host_prefix
from wasmcni_sdk.policy import AllowWith, IpRange, Policy
from wasmcni_sdk.range_ipam import RangeIpam

pytest.importorskip("componentize_py")
COMPONENTIZE_PY = Path(sys.executable).parent / "componentize-py"
# This file is sdk/python/tests/, next to wit/ in the repository and in the unpacked SDK alike.
WIT = Path(__file__).resolve().parents[3] / "wit"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Generates a world's bindings once per test module."""
    out = {}

    def bindings(world):
        if world not in out:
            out[world] = tmp_path_factory.mktemp(world)
            subprocess.run([str(COMPONENTIZE_PY), "--wit-path", str(WIT), "--world", world, "bindings",
                            str(out[world])], check=True, capture_output=True)
        return out[world]

    return bindings


def _forget_bindings():
    for name in list(sys.modules):
        if name.split(".")[0] in ("wit_world", "componentize_py_types") or name.startswith("wasmcni_sdk.component"):
            del sys.modules[name]


@pytest.fixture
def world(generated, monkeypatch):
    """world(name): imports that world's bindings, fresh; returns a module importer."""
    monkeypatch.setattr(log, "_sink", log._sink)  # the edge points the log at the WIT import

    def load(name):
        _forget_bindings()
        monkeypatch.syspath_prepend(str(generated(name)))
        return importlib.import_module

    yield load
    _forget_bindings()


class FirstFree(RangeIpam):
    def pick(self, range_set, last_reserved, taken):
        return next(ip for r in range_set for ip in [r.first_free(r.start, taken)] if ip is not None)


def test_the_ipam_edge_converts_both_ways_and_only_raises_err(world):
    imp = world("ipam")
    types, store = imp("wit_world.imports.types"), imp("wit_world.imports.ipam_store")
    wit_log = imp("wit_world.imports.log")
    Err = imp("componentize_py_types").Err
    leases, logs = {}, []
    key = lambda a: (type(a).__name__, a.value)  # noqa: E731  (the generated records are not hashable)

    def reserve(ip, container_id, ifname, range_set):
        if key(ip) in leases:
            return False
        leases[key(ip)] = store.Lease(ip, container_id, ifname)
        return True

    def release_owner(container_id, ifname):
        freed = [k for k, lease in leases.items() if (lease.container_id, lease.ifname) == (container_id, ifname)]
        return [leases.pop(k).ip for k in freed]

    store.reserve, store.last_reserved, store.release_owner = reserve, lambda s: None, release_owner
    store.leases = lambda: list(leases.values())
    wit_log.emit = lambda level, msg: logs.append((level, msg))

    Handler = imp("wasmcni_sdk.component.ipam").handler(FirstFree())
    conf = json.dumps({"ipam": {"ranges": [[{"subnet": "10.9.0.0/24"}], [{"subnet": "fd00::/64"}]],
                                "routes": [{"dst": "0.0.0.0/0", "gw": "10.9.0.254"}],
                                "dns": {"nameservers": ["fd00::53"]}}})
    fd00_5 = types.IpAddress_V6((0xfd00, 0, 0, 0, 0, 0, 0, 5))

    def inv(container_id):
        return types.Invocation(container_id=container_id, ifname="eth0", netns="/run/netns/x", args=[],
                                network_name="n", config=conf, requested=types.Requested(ips=[fd00_5], mac=None),
                                prev_result=None)

    r = Handler().add(inv("c1"))
    assert r == types.CniResult(
        interfaces=[],
        ips=[types.IpConfig(address=types.IpPrefix(types.IpAddress_V4((10, 9, 0, 2)), 24),
                            gateway=types.IpAddress_V4((10, 9, 0, 1)), iface=None),
             types.IpConfig(address=types.IpPrefix(fd00_5, 64),
                            gateway=types.IpAddress_V6((0xfd00, 0, 0, 0, 0, 0, 0, 1)), iface=None)],
        routes=[types.Route(dst=types.IpPrefix(types.IpAddress_V4((0, 0, 0, 0)), 0),
                            gw=types.IpAddress_V4((10, 9, 0, 254)), mtu=None, advmss=None, priority=None, table=None,
                            scope=None)],
        dns=types.Dns(nameservers=[types.IpAddress_V6((0xfd00, 0, 0, 0, 0, 0, 0, 0x53))], domain=None, search=[],
                      options=[]))
    assert (wit_log.Level.INFO, "allocated 10.9.0.2/24,fd00::5/64 to c1") in logs

    with pytest.raises(Err) as e:
        Handler().add(inv("c1"))
    assert (e.value.value.code, "duplicate" in e.value.value.msg) == (100, True)
    Handler().check(inv("c1"))
    Handler().status(inv(""))
    Handler().gc(inv(""), [types.Attachment(container_id="c1", ifname="eth0")])
    assert len(leases) == 2
    Handler().del_(inv("c1"))
    assert leases == {}

    def broken():
        raise Err(types.CniError(code=5, msg="lease directory unreadable", details="EIO"))
    store.leases = broken
    with pytest.raises(Err) as e:
        Handler().add(inv("c2"))
    assert (e.value.value.code, e.value.value.msg, e.value.value.details) == (5, "lease directory unreadable", "EIO")


class Echo(Ipam):
    """Returns the previous result it was given, to see it both ways."""

    def add(self, inv, store):
        assert inv.requested_mac == bytes.fromhex("0a5800000001") and inv.args == [("K8S_POD_NAMESPACE", "x")]
        return inv.prev_result

    def delete(self, inv, store):
        raise KeyError("oops")

    check = status = gc = delete


def test_a_previous_result_round_trips_and_a_bug_is_an_internal_error(world):
    imp = world("ipam")
    types = imp("wit_world.imports.types")
    Err = imp("componentize_py_types").Err
    Handler = imp("wasmcni_sdk.component.ipam").handler(Echo())
    mac = (0x0a, 0x58, 0, 0, 0, 1)
    prev = types.CniResult(
        interfaces=[types.Iface(name="eth0", mac=mac, mtu=1450, sandbox="/run/netns/x")],
        ips=[types.IpConfig(address=types.IpPrefix(types.IpAddress_V4((10, 9, 0, 5)), 16),
                            gateway=types.IpAddress_V4((10, 9, 0, 1)), iface=0)],
        routes=[types.Route(dst=types.IpPrefix(types.IpAddress_V6((0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)), 32),
                            gw=None, mtu=1400, advmss=1360, priority=7, table=100, scope=types.RouteScope.LINK)],
        dns=types.Dns(nameservers=[types.IpAddress_V4((1, 1, 1, 1))], domain="x", search=["a"], options=["b"]))
    inv = types.Invocation(container_id="c1", ifname="eth0", netns=None,
                           args=[types.Arg(key="K8S_POD_NAMESPACE", value="x")], network_name="n", config="{}",
                           requested=types.Requested(ips=[], mac=mac), prev_result=prev)
    assert Handler().add(inv) == prev
    with pytest.raises(Err) as e:
        Handler().del_(inv)
    assert (e.value.value.code, e.value.value.msg) == (100, "internal error: KeyError: 'oops'")


class Pinning(Policy):
    def admit(self, inv):
        ns = inv.pod_namespace()
        if ns == "pinned":
            return AllowWith(ips=[host_prefix(inv.requested_ips[0]).network_address],
                             ranges=[IpRange(subnet=host_prefix(inv.requested_ips[0]).supernet(new_prefix=24))])
        if ns == "broken":
            return AllowWith(ips=["10.0.0.1"])
        raise config_error("no namespace")


def test_the_policy_edge_turns_decisions_and_failures_into_the_wit_s(world):
    imp = world("policy")
    types, wit = imp("wit_world.imports.types"), imp("wit_world.exports.admission")
    logs = []
    imp("wit_world.imports.log").emit = lambda level, msg: logs.append(msg)
    Admission = imp("wasmcni_sdk.component.policy").admission(Pinning())

    def admit(namespace):
        inv = types.Invocation(container_id="c1", ifname="eth0", netns=None,
                               args=[types.Arg(key="K8S_POD_NAMESPACE", value=namespace)], network_name="n",
                               config="{}", prev_result=None,
                               requested=types.Requested(ips=[types.IpAddress_V4((10, 7, 0, 9))], mac=None))
        return Admission().admit(inv)

    assert admit("pinned") == wit.Decision_AllowWith(wit.Changes(
        ips=[types.IpAddress_V4((10, 7, 0, 9))],
        ranges=[wit.IpRange(subnet=types.IpPrefix(types.IpAddress_V4((10, 7, 0, 0)), 24), range_start=None,
                            range_end=None, gateway=None)],
        routes=[]))
    assert admit("other") == wit.Decision_Deny("no namespace")
    assert logs == ["denying the ADD of c1: no namespace"]
    assert admit("broken").value.startswith("policy returned an invalid decision")


class Isolating(NetworkPolicy):
    def rules(self, policies, namespaces, local, remote):
        assert policies == [{"kind": "NetworkPolicy"}] and namespaces[0].labels == {"team": "a"}
        return [PodRules(p.namespace, p.name, ingress_isolated=True,
                         ingress=[Allow(peers=[host_prefix(ip) for q in remote for ip in q.ips],
                                        ports=[Ports(Protocol.UDP, (53, 53)), Ports(Protocol.SCTP)])],
                         egress=[Allow()])
                for p in local if p.labels.get("isolated") == "true"]


def test_the_netpol_edge_types_pods_and_rules(world):
    imp = world("netpol")
    types, wit = imp("wit_world.imports.types"), imp("wit_world.exports.network_policy")
    Err = imp("componentize_py_types").Err
    NetworkPolicyExport = imp("wasmcni_sdk.component.netpol").network_policy(Isolating())
    local = [wit.Pod(namespace="a", name="p", labels=[wit.Label("isolated", "true")],
                     ips=[types.IpAddress_V4((10, 0, 0, 1))])]
    remote = [wit.Pod(namespace="a", name="q", labels=[], ips=[types.IpAddress_V6((0xfd00, 0, 0, 0, 0, 0, 0, 2))])]
    spaces = [wit.Namespace(name="a", labels=[wit.Label("team", "a")])]
    rules = NetworkPolicyExport().rules(['{"kind": "NetworkPolicy"}'], spaces, local, remote)
    assert rules == [wit.PodRules(
        namespace="a", name="p", ingress_isolated=True, egress_isolated=False,
        ingress=[wit.Allow(peers=[types.IpPrefix(types.IpAddress_V6((0xfd00, 0, 0, 0, 0, 0, 0, 2)), 128)],
                           ports=[wit.Ports(wit.Protocol.UDP, (53, 53)), wit.Ports(wit.Protocol.SCTP, None)])],
        egress=[wit.Allow(peers=None, ports=[])])]
    with pytest.raises(Err) as e:
        NetworkPolicyExport().rules(["{"], spaces, local, remote)
    assert e.value.value.code == 7

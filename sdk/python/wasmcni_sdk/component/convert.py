"""The WIT's typed values and the SDK's, both ways, for every world (all of
them import `types` and `log`), and the rule that nothing but an `Err`
leaves an export.

componentize-py's conventions: an import returns a `result`'s ok value and
raises `Err(E)` for its error; an export fails by raising `Err(E)`; a
variant case is a class (`types.IpAddress_V4((10, 0, 0, 2))`)."""

import ipaddress

from componentize_py_types import Err
from wit_world.imports import log as wit_log
from wit_world.imports import types

from .. import log
from ..errors import CniError, internal_error
from ..invocation import Invocation
from ..ip import INTERFACE, check_address
from ..result import CniResult, Dns, Iface, IpConfig, Route, Scope

_LEVELS = {name: wit_log.Level[name.upper()] for name in log.LEVELS}
log.set_sink(lambda level, msg: wit_log.emit(_LEVELS[level], msg))


def address(a):
    if isinstance(a, types.IpAddress_V4):
        return ipaddress.IPv4Address(bytes(a.value))
    return ipaddress.IPv6Address(b"".join(g.to_bytes(2, "big") for g in a.value))


def to_address(ip):
    check_address(ip, "address")
    if ip.version == 4:
        return types.IpAddress_V4(tuple(ip.packed))
    return types.IpAddress_V6(tuple(int.from_bytes(ip.packed[i:i + 2], "big") for i in range(0, 16, 2)))


def to_prefix(p):
    """An IPv4/IPv6 Interface (address/prefix) or Network as an `ip-prefix`."""
    if isinstance(p, INTERFACE):
        return types.IpPrefix(address=to_address(p.ip), prefix_len=p.network.prefixlen)
    return types.IpPrefix(address=to_address(p.network_address), prefix_len=p.prefixlen)


def _interface(p):
    return ipaddress.ip_interface((address(p.address), p.prefix_len))


def _network(p):
    return ipaddress.ip_network((address(p.address), p.prefix_len), strict=False)


def optional(f, value):
    return None if value is None else f(value)


def _route(r):
    return Route(dst=_network(r.dst), gw=optional(address, r.gw), mtu=r.mtu, advmss=r.advmss, priority=r.priority,
                 table=r.table, scope=optional(lambda s: Scope[s.name], r.scope))


def to_route(r):
    return types.Route(dst=to_prefix(r.dst), gw=optional(to_address, r.gw), mtu=r.mtu, advmss=r.advmss,
                       priority=r.priority, table=r.table,
                       scope=optional(lambda s: types.RouteScope[s.name], r.scope))


def _result(r):
    return CniResult(
        interfaces=[Iface(name=i.name, mac=optional(bytes, i.mac), mtu=i.mtu, sandbox=i.sandbox) for i in r.interfaces],
        ips=[IpConfig(address=_interface(c.address), gateway=optional(address, c.gateway), iface=c.iface)
             for c in r.ips],
        routes=[_route(x) for x in r.routes],
        dns=optional(lambda d: Dns(nameservers=[address(n) for n in d.nameservers], domain=d.domain,
                                    search=list(d.search), options=list(d.options)), r.dns),
    )


def to_result(r):
    """The WIT's form of a result `check_result` passed."""
    return types.CniResult(
        interfaces=[types.Iface(name=i.name, mac=optional(tuple, i.mac), mtu=i.mtu, sandbox=i.sandbox)
                    for i in r.interfaces],
        ips=[types.IpConfig(address=to_prefix(c.address), gateway=optional(to_address, c.gateway), iface=c.iface)
             for c in r.ips],
        routes=[to_route(x) for x in r.routes],
        dns=optional(lambda d: types.Dns(nameservers=[to_address(n) for n in d.nameservers], domain=d.domain,
                                          search=list(d.search), options=list(d.options)), r.dns),
    )


def invocation(inv):
    return Invocation(
        container_id=inv.container_id,
        ifname=inv.ifname,
        network_name=inv.network_name,
        config=inv.config,
        netns=inv.netns,
        args=[(a.key, a.value) for a in inv.args],
        requested_ips=[address(ip) for ip in inv.requested.ips],
        requested_mac=optional(bytes, inv.requested.mac),
        prev_result=optional(_result, inv.prev_result),
    )


def imported(f, *args):
    """Calls an import; its `Err` becomes the SDK's CniError."""
    try:
        return f(*args)
    except Err as e:
        raise CniError(e.value.code, e.value.msg, e.value.details) from None


def exported(f):
    """Runs an export's body: a CniError, or any exception (a bug in the
    plugin or a value the WIT cannot carry), leaves as `Err(cni-error)`.
    An uncaught exception would trap with no message: componentize-py
    formats a traceback, which lazily imports modules from the stubbed
    filesystem."""
    try:
        return f()
    except CniError as e:
        error = e
    except Exception as e:
        error = internal_error(e)
    raise Err(types.CniError(code=error.code, msg=error.msg, details=error.details))

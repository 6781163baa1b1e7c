"""IP values as the SDK keeps them: `ipaddress` objects. Text is parsed here,
as the Rust SDK's `IpAddr`/`IpNet` parse it (no zone IDs, no netmasks, a
prefix length always written), and the checks the WIT edge applies to what a
plugin returns live here too."""

import ipaddress
from typing import Union

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
# An address with its prefix length, as on an interface (`10.22.0.5/16`).
Interface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]

ADDRESS = (ipaddress.IPv4Address, ipaddress.IPv6Address)
NETWORK = (ipaddress.IPv4Network, ipaddress.IPv6Network)
INTERFACE = (ipaddress.IPv4Interface, ipaddress.IPv6Interface)


def parse_address(text):
    """An address from text such as `10.0.0.1` or `fd00::1`; ValueError otherwise."""
    if not isinstance(text, str) or "%" in text:
        raise ValueError("%r is not an IP address" % (text,))
    return ipaddress.ip_address(text)


def parse_network(text):
    """A network from CIDR text (`10.1.0.0/16`), host bits cleared; ValueError otherwise."""
    addr, slash, length = text.partition("/") if isinstance(text, str) else ("", "", "")
    if not slash or not (length.isascii() and length.isdigit()):
        raise ValueError("%r is not a CIDR prefix" % (text,))
    ip = parse_address(addr)
    if int(length) > ip.max_prefixlen:
        raise ValueError("prefix length %s is too long for %s" % (length, ip))
    return ipaddress.ip_network((ip, int(length)), strict=False)


def key(ip):
    """A sort key over both families (IPv4 first), as the host orders leases."""
    return ip.version, int(ip)


def is_address(value):
    """Whether `value` is a bare address (an IPv4Interface is an IPv4Address too, with a prefix)."""
    return isinstance(value, ADDRESS) and not isinstance(value, INTERFACE)


def check_address(value, what):
    if not is_address(value):
        raise ValueError("%s %r is not an IP address" % (what, value))


def check_optional_address(value, what, version):
    """None, or an address of the IP `version` given."""
    if value is not None:
        check_address(value, what)
        if value.version != version:
            raise ValueError("%s %s is not an IPv%d address" % (what, value, version))


def check_network(value, what):
    if not isinstance(value, NETWORK):
        raise ValueError("%s %r is not an IP network" % (what, value))


def check_interface(value, what):
    if not isinstance(value, INTERFACE):
        raise ValueError("%s %r is not an IP interface (address/prefix)" % (what, value))


def check_uint(value, what, bits=32, optional=True):
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise ValueError("%s %r is not a %d-bit unsigned integer" % (what, value, bits))

"""The `ipam` world's edge: an `Ipam` (such as a `RangeIpam`) as the
`handler` export, over the host's lease store. In the app module:

    Handler = ipam.handler(LowestFree())
"""

from wit_world.imports import ipam_store

from ..errors import guard
from ..ipam import Attachment, Lease, serve_add
from .convert import address, exported, imported, invocation, to_address, to_result


class _Store:
    """The host's lease store (`ipam-store`) in the SDK's model."""

    def reserve(self, ip, container_id, ifname, range_set):
        return imported(ipam_store.reserve, to_address(ip), container_id, ifname, range_set)

    def last_reserved(self, range_set):
        ip = imported(ipam_store.last_reserved, range_set)
        return None if ip is None else address(ip)

    def leases(self):
        return [Lease(address(x.ip), x.container_id, x.ifname) for x in imported(ipam_store.leases)]

    def release_owner(self, container_id, ifname):
        return [address(ip) for ip in imported(ipam_store.release_owner, container_id, ifname)]


_STORE = _Store()


def handler(plugin):
    """The class componentize-py instantiates for the `handler` export
    (it looks it up as `Handler` in the app module), serving `plugin`."""

    class Handler:
        def add(self, inv):
            return exported(lambda: to_result(serve_add(plugin, invocation(inv), _STORE)))

        # `del` is a Python keyword: the binding appends an underscore.
        def del_(self, inv):
            exported(lambda: guard(plugin.delete, invocation(inv), _STORE))

        def check(self, inv):
            exported(lambda: guard(plugin.check, invocation(inv), _STORE))

        def status(self, inv):
            exported(lambda: guard(plugin.status, invocation(inv), _STORE))

        def gc(self, inv, valid):
            attachments = [Attachment(a.container_id, a.ifname) for a in valid]
            exported(lambda: guard(plugin.gc, invocation(inv), attachments, _STORE))

    return Handler

"""An in-memory host for testing a plugin under plain CPython: no root, no
Wasm. It calls the plugin as the component edge does (a bug is code 100,
what the plugin returns is checked as the host checks it), keeps leases as
the host's store does, and captures the log.

    host = TestHost()
    result = host.add(MyIpam(), invocation("c1", {"ipam": {"subnet": "10.9.0.0/24"}}))
    assert result.ips[0].address == ip_interface("10.9.0.2/24")
    assert host.store.owners == {ip_address("10.9.0.2"): ("c1", "eth0")}
"""

import json
import re

from . import log
from .errors import INVALID_ENV, CniError, config_error, guard
from .invocation import Invocation
from .ip import check_address, check_uint, is_address, key, parse_address
from .ipam import Attachment, Lease, serve_add
from .netpol import evaluate
from .policy import decide

# The spec's identifier rule, as the host checks CNI_CONTAINERID.
_IDENTIFIER = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]*\Z")


def _check_ifname(name):
    """As the host checks CNI_IFNAME: 1-15 bytes, not . or .., no '/', ':' or whitespace."""
    ok = 0 < len(name.encode()) <= 15 and name not in (".", "..") and not any(
        c in "/:" or c.isspace() for c in name)
    if not ok:
        raise CniError(INVALID_ENV, "invalid CNI_IFNAME %s" % json.dumps(name))


def invocation(container_id, config, namespace=None, ips=(), ifname="eth0"):
    """An invocation as the host builds it: container `container_id` on
    `ifname`, netns /run/netns/test, network "test". `config` is JSON text
    or a dict; `namespace` goes in CNI_ARGS as K8S_POD_NAMESPACE; `ips` are
    the requested addresses (text or addresses), without duplicates. What
    the host refuses before a plugin runs raises CniError here: a malformed
    requested IP (code 7), a bad container ID or ifname (code 4)."""
    if container_id and not _IDENTIFIER.match(container_id):
        raise CniError(INVALID_ENV, "invalid characters in CNI_CONTAINERID %s" % json.dumps(container_id))
    _check_ifname(ifname)
    requested = []
    for ip in ips:
        if not is_address(ip):
            try:
                ip = parse_address(ip)
            except ValueError:
                raise config_error("invalid requested IP %s" % json.dumps(str(ip))) from None
        if ip not in requested:
            requested.append(ip)
    return Invocation(
        container_id=container_id,
        ifname=ifname,
        network_name="test",
        config=config if isinstance(config, str) else json.dumps(config),
        netns="/run/netns/test",
        args=[("K8S_POD_NAMESPACE", namespace)] if namespace is not None else [],
        requested_ips=requested,
    )


def _check_owner(container_id, ifname):
    if not (isinstance(container_id, str) and isinstance(ifname, str)):
        raise ValueError("container ID %r and ifname %r must be strings" % (container_id, ifname))


class LeaseStore:
    """The host's lease store, in memory. Values the WIT cannot carry fail
    as they do at the component edge (and the plugin's call with them)."""

    def __init__(self):
        # address -> (container ID, ifname)
        self.owners = {}
        # range set -> the last address reserved in it
        self.last = {}

    def reserve(self, ip, container_id, ifname, range_set):
        check_address(ip, "address")
        _check_owner(container_id, ifname)
        check_uint(range_set, "range set", optional=False)
        if ip in self.owners:
            return False
        self.owners[ip] = (container_id, ifname)
        self.last[range_set] = ip
        return True

    def last_reserved(self, range_set):
        check_uint(range_set, "range set", optional=False)
        return self.last.get(range_set)

    def leases(self):
        return [Lease(ip, *self.owners[ip]) for ip in sorted(self.owners, key=key)]

    def release_owner(self, container_id, ifname):
        _check_owner(container_id, ifname)
        # As the host's store: the ID as trimmed, and a lease written without
        # an ifname (an older host-local's) on any ifname.
        freed = [lease.ip for lease in self.leases()
                 if lease.container_id == container_id.strip() and lease.ifname in (ifname, "")]
        for ip in freed:
            del self.owners[ip]
        return freed


class TestHost:
    """Runs a plugin's calls as the host would, against `store`, with what
    it logs in `logs` as (level, msg)."""

    __test__ = False  # a helper, not a pytest test class

    def __init__(self):
        self.store = LeaseStore()
        self.logs = []

    def _run(self, f, *args):
        previous = log.set_sink(lambda level, msg: self.logs.append((level, msg)))
        try:
            return f(*args)
        finally:
            log.set_sink(previous)

    def logged(self, text):
        """Whether any message logged holds `text`."""
        return any(text in msg for _, msg in self.logs)

    # IPAM (the `ipam` world): each raises CniError as the runtime would get it.

    def add(self, plugin, inv):
        return self._run(serve_add, plugin, inv, self.store)

    def delete(self, plugin, inv):
        self._run(guard, plugin.delete, inv, self.store)

    def check(self, plugin, inv):
        self._run(guard, plugin.check, inv, self.store)

    def status(self, plugin, inv):
        self._run(guard, plugin.status, inv, self.store)

    def gc(self, plugin, inv, valid):
        """`valid`: Attachments or (container ID, ifname) pairs."""
        valid = [a if isinstance(a, Attachment) else Attachment(*a) for a in valid]
        self._run(guard, plugin.gc, inv, valid, self.store)

    # Policies (the `policy` world).

    def admit(self, policy, inv):
        """The decision the host gets: Allow, Deny(reason) or AllowWith(...)."""
        return self._run(decide, policy, inv)

    # Network policy (the `netpol` world).

    def rules(self, module, policies, namespaces, local, remote=()):
        """The rules the host enforces. `policies` are NetworkPolicy objects
        as dicts or JSON text; as in the host, rules for a pod that is not
        in `local` are dropped."""
        texts = [p if isinstance(p, str) else json.dumps(p) for p in policies]
        rules = self._run(evaluate, module, texts, list(namespaces), list(local), list(remote))
        here = {(p.namespace, p.name) for p in local}
        return [r for r in rules if (r.namespace, r.name) in here]

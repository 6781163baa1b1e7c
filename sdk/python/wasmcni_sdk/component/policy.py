"""The `policy` world's edge: a `Policy` as the `admission` export. In the
app module:

    Admission = policy.admission(DenyNamespaces())
"""

from wit_world.exports import admission as wit

from ..errors import internal_error
from ..policy import Allow, Deny, decide
from .convert import invocation, optional, to_address, to_prefix, to_route


def _to_decision(d):
    if isinstance(d, Allow):
        return wit.Decision_Allow()
    if isinstance(d, Deny):
        return wit.Decision_Deny(d.reason)
    return wit.Decision_AllowWith(wit.Changes(
        ips=[to_address(ip) for ip in d.ips],
        ranges=[wit.IpRange(subnet=to_prefix(r.subnet), range_start=optional(to_address, r.range_start),
                            range_end=optional(to_address, r.range_end), gateway=optional(to_address, r.gateway))
                for r in d.ranges],
        routes=[to_route(r) for r in d.routes],
    ))


def admission(policy):
    """The class componentize-py instantiates for the `admission` export
    (it looks it up as `Admission` in the app module), serving `policy`."""

    class Admission:
        def admit(self, inv):
            # `admit` cannot fail: whatever goes wrong denies the ADD.
            try:
                return _to_decision(decide(policy, invocation(inv)))
            except Exception as e:
                return wit.Decision_Deny(internal_error(e).msg)

    return Admission

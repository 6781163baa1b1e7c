"""An IPAM policy that always hands out the lowest free address, instead of
host-local's round-robin. It reads the same config and the same leases, so
it can replace host-local on a live node."""

from wasmcni_sdk.range_ipam import RangeIpam


class LowestFree(RangeIpam):
    def pick(self, range_set, last_reserved, taken):
        # The lowest address of the set that is neither leased nor a gateway.
        free = (r.first_free(r.start, taken) for r in range_set)
        return next((ip for ip in free if ip is not None), None)

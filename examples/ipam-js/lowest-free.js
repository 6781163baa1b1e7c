// Lowest-free IPAM: each range set's lowest address that is neither leased
// nor a gateway. The rest (the host-local config, requested IPs, duplicate
// checks, STATUS, GC) is the SDK's RangeIpam.
import { RangeIpam } from '@wasmcni/sdk';

export class LowestFree extends RangeIpam {
  pick(set, _lastReserved, taken) {
    for (const range of set) {
      const ip = range.firstFree(range.start, taken);
      if (ip) return ip;
    }
    return undefined;
  }
}

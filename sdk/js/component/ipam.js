// The `ipam` world's export, `handler`, for an IPAM plugin (a RangeIpam, or
// any object with add, del, check, status and gc):
//
//   import { ipamHandler } from '@wasmcni/sdk/component/ipam.js';
//   export const handler = ipamHandler(new LowestFree());
//
// It converts the WIT's values to the SDK's and back, and returns every
// failure as a cni-error: an exception that is not a CniError (a bug) is
// code 100 "internal error: ...", never a trap.

import { emit } from 'wasmcni:plugin/log@1.2.0';
import * as ipamStore from 'wasmcni:plugin/ipam-store@1.2.0';
import { asCniError } from '../src/errors.js';
import { checkedLog, checkedStore } from '../src/host-calls.js';
import { serveIpam } from '../src/ipam.js';
import {
  fromWitAddress,
  fromWitAttachment,
  fromWitInvocation,
  fromWitLease,
  toWitAddress,
  toWitError,
  toWitResult,
} from './wit.js';

/** The lease store import, typed. */
const store = {
  reserve: (ip, containerId, ifname, rangeSet) => ipamStore.reserve(toWitAddress(ip), containerId, ifname, rangeSet),
  lastReserved: (rangeSet) => {
    const ip = ipamStore.lastReserved(rangeSet);
    return ip === undefined || ip === null ? undefined : fromWitAddress(ip);
  },
  leases: () => ipamStore.leases().map(fromWitLease),
  releaseOwner: (containerId, ifname) => ipamStore.releaseOwner(containerId, ifname).map(fromWitAddress),
};

const host = { store: checkedStore(store), log: checkedLog(emit) };

function wire(f) {
  try {
    return f();
  } catch (e) {
    throw toWitError(asCniError(e));
  }
}

/** The `handler` export serving `ipam`. */
export function ipamHandler(ipam) {
  const calls = serveIpam(ipam, host);
  return {
    add: (inv) => wire(() => toWitResult(calls.add(fromWitInvocation(inv)))),
    del: (inv) => wire(() => calls.del(fromWitInvocation(inv))),
    check: (inv) => wire(() => calls.check(fromWitInvocation(inv))),
    status: (inv) => wire(() => calls.status(fromWitInvocation(inv))),
    gc: (inv, valid) => wire(() => calls.gc(fromWitInvocation(inv), valid.map(fromWitAttachment))),
  };
}

// The `ipam-store` import over an in-memory store, with WIT values, and
// failing as an import fails (an Error whose payload is the cni-error) when
// `state.failure` is set.
import { fromWitAddress, toWitAddress } from '../../component/wit.js';
import { MemoryStore } from '../../src/testing.js';

export const state = { store: new MemoryStore(), failure: undefined };

function call(f) {
  if (state.failure) throw Object.assign(new Error(state.failure.msg), { payload: state.failure });
  return f(state.store);
}

export const reserve = (ip, containerId, ifname, rangeSet) =>
  call((s) => s.reserve(fromWitAddress(ip), containerId, ifname, rangeSet));

export const lastReserved = (rangeSet) =>
  call((s) => {
    const ip = s.lastReserved(rangeSet);
    return ip && toWitAddress(ip);
  });

export const leases = () => call((s) => s.leases().map((l) => ({ ...l, ip: toWitAddress(l.ip) })));

export const releaseOwner = (containerId, ifname) => call((s) => s.releaseOwner(containerId, ifname).map(toWitAddress));

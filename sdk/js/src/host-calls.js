// A plugin's calls to the host (the lease store, the log), checked as the
// WIT's types check them: in a module a wrong argument traps with no
// message, here it is code 100 naming the call. The component adapters wrap
// the real imports with these, and the testing host its in-memory ones.

import { Code, CniError } from './errors.js';
import { IpAddress } from './ip.js';

export const LOG_LEVELS = Object.freeze(['error', 'warn', 'info', 'debug']);

function ensure(ok, msg) {
  if (!ok) throw new CniError(Code.PluginFailure, `invalid call to the host: ${msg}`);
}

const isU32 = (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32;
const strings = (...xs) => xs.every((x) => typeof x === 'string');

/**
 * @param {import('./range-ipam.js').Store} store
 * @returns {import('./range-ipam.js').Store}
 */
export function checkedStore(store) {
  return {
    reserve(ip, containerId, ifname, rangeSet) {
      ensure(ip instanceof IpAddress, `reserve: ${String(ip)} is not an IpAddress`);
      ensure(strings(containerId, ifname), 'reserve: the container ID and ifname must be strings');
      ensure(isU32(rangeSet), `reserve: range set ${String(rangeSet)} is not a u32`);
      return store.reserve(ip, containerId, ifname, rangeSet);
    },
    lastReserved(rangeSet) {
      ensure(isU32(rangeSet), `lastReserved: range set ${String(rangeSet)} is not a u32`);
      return store.lastReserved(rangeSet);
    },
    leases: () => store.leases(),
    releaseOwner(containerId, ifname) {
      ensure(strings(containerId, ifname), 'releaseOwner: the container ID and ifname must be strings');
      return store.releaseOwner(containerId, ifname);
    },
  };
}

/**
 * @param {(level: string, msg: string) => void} emit
 * @returns {import('./range-ipam.js').Log}
 */
export function checkedLog(emit) {
  return (level, msg) => {
    ensure(LOG_LEVELS.includes(level), `log: level ${String(level)} is not one of ${LOG_LEVELS.join(', ')}`);
    ensure(typeof msg === 'string', 'log: the message must be a string');
    emit(level, msg);
  };
}

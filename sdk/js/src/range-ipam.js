// A complete IPAM plugin over the host's lease store, reading the host-local
// config (ranges, routes, dns, requested IPs), with the choice of the next
// free address left to a subclass's `pick`. host-local is this with a
// round-robin pick; the Rust SDK's range_ipam is the same plugin.
//
//   class LowestFree extends RangeIpam {
//     pick(set, _lastReserved, taken) {
//       for (const r of set) { const ip = r.firstFree(r.start, taken); if (ip) return ip; }
//     }
//   }

import { asCniError, notAvailable, pluginError } from './errors.js';
import { IpAddress, IpPrefix, IpSet } from './ip.js';
import { parseIpamConfig } from './ipam-config.js';

/**
 * @typedef {import('./ipam-config.js').Range} Range
 * @typedef {import('./invocation.js').Invocation} Invocation
 * @typedef {{ip: IpAddress, containerId: string, ifname: string}} Lease
 * @typedef {object} Store The host's lease store (the WIT's `ipam-store`), typed.
 * @property {(ip: IpAddress, containerId: string, ifname: string, rangeSet: number) => boolean} reserve
 *   false when `ip` is taken
 * @property {(rangeSet: number) => IpAddress | undefined} lastReserved
 * @property {() => Lease[]} leases every lease of the network
 * @property {(containerId: string, ifname: string) => IpAddress[]} releaseOwner frees the attachment's leases
 * @typedef {(level: 'error' | 'warn' | 'info' | 'debug', msg: string) => void} Log
 * @typedef {{store: Store, log: Log}} IpamHost
 * @typedef {{containerId: string, ifname: string}} Attachment
 */

export class RangeIpam {
  /**
   * A free address of `set`, given the last one reserved in it (if any) and
   * every address taken; never a range's gateway. Undefined when full.
   * @param {Range[]} set
   * @param {IpAddress | undefined} lastReserved
   * @param {IpSet} taken
   * @returns {IpAddress | undefined}
   */
  pick(set, lastReserved, taken) {
    throw new Error(`${this.constructor.name} does not implement pick`);
  }

  /**
   * One address per range set (the requested one where given).
   * @param {Invocation} inv
   * @param {IpamHost} host
   * @returns {import('./result.js').CniResult}
   */
  add(inv, { store, log }) {
    const conf = parse(inv);
    const leases = store.leases();
    // Checked before anything is reserved: a refused ADD must not touch the
    // attachment's existing leases.
    const dup = leases.find((l) => ownedBy(l, inv) && conf.sets.some((set) => inSet(set, l.ip)));
    if (dup) {
      throw pluginError(
        `${dup.ip} has been allocated to ${inv.containerId}/${inv.ifname}, duplicate allocation is not allowed`,
      );
    }
    const taken = new IpSet(leases.map((l) => l.ip));
    let ips;
    try {
      ips = this.#reserveAll(inv, conf.sets, taken, store);
    } catch (e) {
      // The attachment held nothing before: free what this call took.
      store.releaseOwner(inv.containerId, inv.ifname);
      throw e;
    }
    log('info', `allocated ${ips.map((i) => i.address).join(',')} to ${inv.containerId}`);
    return { interfaces: [], ips, routes: conf.routes, dns: conf.dns };
  }

  #reserveAll(inv, sets, taken, store) {
    const requested = [...inv.requestedIps];
    const reserve = (ip, index) => store.reserve(ip, inv.containerId, inv.ifname, index);
    const ips = sets.map((set, index) => {
      const at = requested.findIndex((ip) => inSet(set, ip));
      let ip;
      if (at >= 0) {
        [ip] = requested.splice(at, 1);
        if (set.some((r) => r.gateway.equals(ip)) || !reserve(ip, index)) {
          throw pluginError(`requested IP address ${ip} is not available in range set ${describe(set)}`);
        }
      } else {
        const last = store.lastReserved(index);
        const skip = new IpSet(taken);
        for (;;) {
          ip = this.pick(set, last, skip);
          if (!ip) throw notAvailable(`no IP addresses available in range set: ${describe(set)}`);
          this.#checkPick(ip, set, skip);
          if (reserve(ip, index)) break;
          skip.add(ip); // Taken since the leases were read: try another.
        }
      }
      const range = set.find((r) => r.contains(ip));
      return { address: new IpPrefix(ip, range.subnet.prefixLen), gateway: range.gateway };
    });
    if (requested.length > 0) throw pluginError(`requested IPs ${requested.join(', ')} were not allocated`);
    return ips;
  }

  /** A pick that breaks the contract would hand out a wrong address, or loop. */
  #checkPick(ip, set, taken) {
    let wrong;
    if (!(ip instanceof IpAddress)) wrong = 'not an IpAddress';
    else if (!inSet(set, ip)) wrong = `outside range set ${describe(set)}`;
    else if (set.some((r) => r.gateway.equals(ip))) wrong = 'a gateway';
    else if (taken.has(ip)) wrong = 'taken';
    if (wrong) throw pluginError(`${this.constructor.name}.pick returned ${String(ip)}, which is ${wrong}`);
  }

  /**
   * Frees whatever the attachment holds, even with a config it cannot read.
   * @param {Invocation} inv
   * @param {IpamHost} host
   */
  del(inv, { store, log }) {
    try {
      parse(inv);
    } catch (e) {
      log('warn', `DEL with invalid config: ${asCniError(e).msg}`);
    }
    const freed = store.releaseOwner(inv.containerId, inv.ifname);
    if (freed.length > 0) log('info', `released ${freed.join(',')} of ${inv.containerId}`);
  }

  /**
   * @param {Invocation} inv
   * @param {IpamHost} host
   */
  check(inv, { store }) {
    parse(inv);
    if (!store.leases().some((l) => ownedBy(l, inv))) {
      throw pluginError(`host-local: failed to find address added by container ${inv.containerId}`);
    }
  }

  /**
   * Code 50 when a range set has nothing left.
   * @param {Invocation} inv
   * @param {IpamHost} host
   */
  status(inv, { store }) {
    const conf = parse(inv);
    const leases = store.leases();
    for (const set of conf.sets) {
      const used = leases.filter((l) => inSet(set, l.ip)).length;
      const capacity = set.reduce((n, r) => n + r.capacity(), 0n);
      if (capacity <= BigInt(used)) throw notAvailable(`range set ${describe(set)} is exhausted (${used} leases)`);
    }
  }

  /**
   * Frees the leases of every attachment not in `valid`.
   * @param {Invocation} _inv
   * @param {Attachment[]} valid
   * @param {IpamHost} host
   */
  gc(_inv, valid, { store, log }) {
    const key = (id, ifname) => JSON.stringify([id, ifname]);
    const keep = new Set(valid.map((a) => key(a.containerId, a.ifname)));
    const owners = new Map();
    for (const l of store.leases()) {
      const k = key(l.containerId, l.ifname);
      if (!keep.has(k)) owners.set(k, [l.containerId, l.ifname]);
    }
    const byOwner = ([a, b], [c, d]) => (a < c ? -1 : a > c ? 1 : b < d ? -1 : b > d ? 1 : 0);
    for (const [id, ifname] of [...owners.values()].sort(byOwner)) {
      const freed = store.releaseOwner(id, ifname);
      log('info', `gc released ${freed.join(',')} of ${id}/${ifname}`);
    }
  }
}

const parse = (inv) => parseIpamConfig(inv.configJson());
const ownedBy = (lease, inv) => lease.containerId === inv.containerId && lease.ifname === inv.ifname;
const inSet = (set, ip) => set.some((r) => r.contains(ip));
const describe = (set) => set.join(',');

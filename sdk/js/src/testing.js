// An in-memory host for tests of plugin logic in node, without Wasm or root:
// a lease store that behaves like the host's, captured logs, and
// invocations built as the host builds them. Plugins are called through the
// same steps as in a module (serveIpam, decide, computeRules), so a result,
// decision or rule set the host would refuse is refused here too.
//
//   const host = new TestHost();
//   const ipam = host.ipam(new LowestFree());
//   const r = ipam.add(invocation('c1', { ipam: { subnet: '10.9.0.0/24' } }));
//   assert.equal(String(r.ips[0].address), '10.9.0.2/24');

import { configError } from './errors.js';
import { checkedLog, checkedStore } from './host-calls.js';
import { Invocation } from './invocation.js';
import { IpAddress, IpPrefix } from './ip.js';
import { serveIpam } from './ipam.js';
import { Mac } from './mac.js';
import { computeRules, parsePolicies } from './netpol.js';
import { decide } from './policy.js';

/** The host's lease store, in memory, with its rules (host/kernel/src/ipam_store.rs). */
export class MemoryStore {
  /** @type {Map<string, {ip: IpAddress, containerId: string, ifname: string}>} */
  #leases = new Map();
  /** @type {Map<number, IpAddress>} */
  #last = new Map();

  /** False when `ip` is taken. The host writes the container ID trimmed. */
  reserve(ip, containerId, ifname, rangeSet) {
    if (this.#leases.has(ip.key)) return false;
    this.#leases.set(ip.key, { ip, containerId: containerId.trim(), ifname: ifname.trim() });
    this.#last.set(rangeSet, ip);
    return true;
  }

  /** The last address reserved in range set `rangeSet`, if any. */
  lastReserved(rangeSet) {
    return this.#last.get(rangeSet);
  }

  /** Every lease, by address (IPv4 first), as the host lists them. */
  leases() {
    return [...this.#leases.values()].map((l) => ({ ...l })).sort((a, b) => a.ip.compare(b.ip));
  }

  /**
   * Frees the leases of (containerId, ifname) and returns their addresses:
   * as the host's store, the ID is matched trimmed, and a lease written
   * without an ifname (an older host-local's) goes with any ifname.
   */
  releaseOwner(containerId, ifname) {
    const ours = (l) => l.containerId === containerId.trim() && (l.ifname === ifname || l.ifname === '');
    const freed = this.leases().filter(ours);
    for (const l of freed) this.#leases.delete(l.ip.key);
    return freed.map((l) => l.ip);
  }
}

export class TestHost {
  store = new MemoryStore();
  /** @type {{level: string, msg: string}[]} */
  logs = [];
  /** The `log` import, refusing what the WIT refuses. */
  log = checkedLog((level, msg) => this.logs.push({ level, msg }));

  /** An IPAM plugin's five commands against this host. */
  ipam(plugin) {
    return serveIpam(plugin, { store: checkedStore(this.store), log: this.log });
  }

  /** A policy's decision on `inv`, as the host gets it. */
  admit(policy, inv) {
    return decide(policy, inv, { log: this.log });
  }

  /**
   * A netpol module's rules, as the host takes them: the policies reach the
   * module as JSON (as the API prints them), and a rule for a pod that is
   * not local is dropped.
   */
  rules(netpol, { policies = [], namespaces = [], local = [], remote = [] } = {}) {
    const parsed = parsePolicies(policies.map((p) => JSON.stringify(p)));
    const rules = computeRules(netpol, parsed, namespaces, local, remote, { log: this.log });
    return rules.filter((r) => local.some((p) => p.namespace === r.namespace && p.name === r.name));
  }
}

/**
 * An invocation as the host builds it, for container `containerId` with
 * `config` (an object or its JSON). The requested addresses and MAC are
 * gathered as the host does: CNI_ARGS `IP`/`MAC` (from `args`), the config's
 * `args.cni` and `runtimeConfig`, then `ips`/`mac` here (in that order,
 * without duplicates; the last MAC wins). A malformed one is code 7.
 * @param {string} containerId
 * @param {string | object} config
 * @param {{namespace?: string, ips?: string[], mac?: string, ifname?: string, netns?: string,
 *   networkName?: string, args?: {key: string, value: string}[],
 *   prevResult?: import('./result.js').CniResult}} [options]
 */
export function invocation(containerId, config, options = {}) {
  const { namespace, ips = [], mac, ifname = 'eth0', netns = '/run/netns/test', networkName = 'test' } = options;
  const args = [...(options.args ?? [])];
  if (namespace !== undefined) args.push({ key: 'K8S_POD_NAMESPACE', value: namespace });
  const text = typeof config === 'string' ? config : JSON.stringify(config);
  const requested = gather(args, text, ips, mac);
  return new Invocation({
    containerId,
    ifname,
    netns,
    args,
    networkName,
    config: text,
    requestedIps: requested.ips,
    requestedMac: requested.mac,
    prevResult: options.prevResult,
  });
}

/**
 * A namespace with `labels` (an object).
 * @returns {import('./netpol.js').Namespace}
 */
export const namespace = (name, labels = {}) => ({ name, labels: new Map(Object.entries(labels)) });

/**
 * A pod with `labels` (an object) and `ips` (text).
 * @returns {import('./netpol.js').Pod}
 */
export const pod = (namespace, name, { labels = {}, ips = [] } = {}) => ({
  namespace,
  name,
  labels: new Map(Object.entries(labels)),
  ips: ips.map(
    (s) => IpAddress.parse(s) ?? fail(`pod ${namespace}/${name}: ${JSON.stringify(s)} is not an IP address`),
  ),
});

function fail(msg) {
  throw configError(msg);
}

/** Runtimes write bare addresses or CIDRs; the address is what is asked for. */
function requestedAddress(s, from) {
  const t = typeof s === 'string' ? s.trim() : s;
  const ip = IpAddress.parse(t) ?? IpPrefix.parse(t)?.address;
  return ip ?? fail(`${from}: ${JSON.stringify(s)} is not an IP address`);
}

function requestedMac(s, from) {
  return Mac.parse(s.trim()) ?? fail(`${from}: invalid MAC address ${JSON.stringify(s)}`);
}

function gather(args, text, ips, mac) {
  let config;
  try {
    config = JSON.parse(text);
  } catch {
    config = {}; // The plugin's configJson() reports it.
  }
  const out = { ips: [], mac: undefined };
  const add = (ip) => {
    if (!out.ips.some((a) => a.equals(ip))) out.ips.push(ip);
  };
  for (const { key, value } of args) {
    if (key === 'IP') {
      value
        .split(',')
        .filter((s) => s.trim())
        .forEach((s) => add(requestedAddress(s, 'CNI_ARGS IP')));
    }
    if (key === 'MAC' && value.trim()) out.mac = requestedMac(value, 'CNI_ARGS MAC');
  }
  const sections = [
    ['args.cni', config?.args?.cni],
    ['runtimeConfig', config?.runtimeConfig],
    ['options', { ips, mac }],
  ];
  for (const [section, at] of sections) {
    const list = at?.ips;
    if (list !== undefined && list !== null) {
      if (!Array.isArray(list)) fail(`${section}.ips must be a list`);
      for (const s of list) {
        if (typeof s !== 'string') fail(`${section}.ips must hold strings`);
        add(requestedAddress(s, `${section}.ips`));
      }
    }
    const m = at?.mac;
    if (m !== undefined && m !== null) {
      if (typeof m !== 'string') fail(`${section}.mac must be a string`);
      if (m.trim()) out.mac = requestedMac(m, `${section}.mac`);
    }
  }
  return out;
}

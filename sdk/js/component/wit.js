// The WIT's values (as componentize-js passes them) and the SDK's, both
// ways; the one place that knows the binding conventions:
// - record fields are camelCase (containerId, prefixLen, ingressIsolated);
// - a variant is {tag, val} with the case's WIT name (`v4`, `allow-with`);
//   an enum is its case's name (`info`, `tcp`); a tuple is an array;
// - an option is the value or undefined (null is read as none too);
// - a result's error is thrown: by an import as an Error whose `payload` is
//   the cni-error; by an export as any value whose `payload` is.
// Values going out have been checked (checkResult, decide, computeRules), so
// converting them cannot fail; values coming in are the host's.

import { Code, CniError } from '../src/errors.js';
import { Invocation } from '../src/invocation.js';
import { IpAddress, IpPrefix } from '../src/ip.js';
import { Mac } from '../src/mac.js';

const none = (v) => v === undefined || v === null;
const opt = (f) => (v) => (none(v) ? undefined : f(v));
/** A scalar option, null read as none. */
const maybe = (v) => (none(v) ? undefined : v);

// ---- in ----

/** @returns {IpAddress} */
export function fromWitAddress(a) {
  return a.tag === 'v4' ? IpAddress.fromOctets(a.val) : IpAddress.fromGroups(a.val);
}

/** @returns {IpPrefix} code 7 for a prefix length beyond the family's, as the host */
export function fromWitPrefix(p) {
  const address = fromWitAddress(p.address);
  if (p.prefixLen > address.bits) {
    throw new CniError(Code.InvalidConfig, `prefix length ${p.prefixLen} is too long for ${address}`);
  }
  return new IpPrefix(address, p.prefixLen);
}

const fromWitMac = (m) => new Mac(m);

const fromWitRoute = (r) => ({
  dst: fromWitPrefix(r.dst),
  gw: opt(fromWitAddress)(r.gw),
  mtu: maybe(r.mtu),
  advmss: maybe(r.advmss),
  priority: maybe(r.priority),
  table: maybe(r.table),
  scope: maybe(r.scope),
});

/** @returns {import('../src/result.js').CniResult} */
export function fromWitResult(r) {
  return {
    interfaces: r.interfaces.map((i) => ({
      name: i.name,
      mac: opt(fromWitMac)(i.mac),
      mtu: maybe(i.mtu),
      sandbox: maybe(i.sandbox),
    })),
    ips: r.ips.map((i) => ({
      address: fromWitPrefix(i.address),
      gateway: opt(fromWitAddress)(i.gateway),
      iface: maybe(i.iface),
    })),
    routes: r.routes.map(fromWitRoute),
    dns: opt((d) => ({
      nameservers: d.nameservers.map(fromWitAddress),
      domain: maybe(d.domain),
      search: [...d.search],
      options: [...d.options],
    }))(r.dns),
  };
}

/** @returns {Invocation} */
export function fromWitInvocation(w) {
  return new Invocation({
    containerId: w.containerId,
    ifname: w.ifname,
    netns: maybe(w.netns),
    args: w.args.map(({ key, value }) => ({ key, value })),
    networkName: w.networkName,
    config: w.config,
    requestedIps: w.requested.ips.map(fromWitAddress),
    requestedMac: opt(fromWitMac)(w.requested.mac),
    prevResult: opt(fromWitResult)(w.prevResult),
  });
}

/** @returns {import('../src/range-ipam.js').Lease} */
export const fromWitLease = (l) => ({ ip: fromWitAddress(l.ip), containerId: l.containerId, ifname: l.ifname });

/** @returns {import('../src/range-ipam.js').Attachment} */
export const fromWitAttachment = (a) => ({ containerId: a.containerId, ifname: a.ifname });

const labels = (list) => new Map(list.map(({ key, value }) => [key, value]));

/** @returns {import('../src/netpol.js').Namespace} */
export const fromWitNamespace = (n) => ({ name: n.name, labels: labels(n.labels) });

/** @returns {import('../src/netpol.js').Pod} */
export const fromWitPod = (p) => ({
  namespace: p.namespace,
  name: p.name,
  labels: labels(p.labels),
  ips: p.ips.map(fromWitAddress),
});

// ---- out ----

/** @param {IpAddress} ip */
export const toWitAddress = (ip) => (ip.isV4 ? { tag: 'v4', val: ip.octets() } : { tag: 'v6', val: ip.groups() });

const toWitPrefix = (p) => ({ address: toWitAddress(p.address), prefixLen: p.prefixLen });
const toWitMac = (m) => [...m.bytes];

const toWitRoute = (r) => ({
  dst: toWitPrefix(r.dst),
  gw: opt(toWitAddress)(r.gw),
  mtu: r.mtu,
  advmss: r.advmss,
  priority: r.priority,
  table: r.table,
  scope: r.scope,
});

/** @param {ReturnType<typeof import('../src/result.js').checkResult>} r a checked result */
export function toWitResult(r) {
  return {
    interfaces: r.interfaces.map((i) => ({ name: i.name, mac: opt(toWitMac)(i.mac), mtu: i.mtu, sandbox: i.sandbox })),
    ips: r.ips.map((i) => ({ address: toWitPrefix(i.address), gateway: opt(toWitAddress)(i.gateway), iface: i.iface })),
    routes: r.routes.map(toWitRoute),
    dns: opt((d) => ({
      nameservers: d.nameservers.map(toWitAddress),
      domain: d.domain,
      search: d.search,
      options: d.options,
    }))(r.dns),
  };
}

/** @param {import('../src/policy.js').Decision} d a checked decision */
export function toWitDecision(d) {
  if (d.kind === 'allow') return { tag: 'allow' };
  if (d.kind === 'deny') return { tag: 'deny', val: d.reason };
  const { ips, ranges, routes } = d.changes;
  return {
    tag: 'allow-with',
    val: {
      ips: ips.map(toWitAddress),
      ranges: ranges.map((r) => ({
        subnet: toWitPrefix(r.subnet),
        rangeStart: opt(toWitAddress)(r.rangeStart),
        rangeEnd: opt(toWitAddress)(r.rangeEnd),
        gateway: opt(toWitAddress)(r.gateway),
      })),
      routes: routes.map(toWitRoute),
    },
  };
}

const toWitAllow = (a) => ({
  peers: opt((ps) => ps.map(toWitPrefix))(a.peers),
  ports: a.ports.map((p) => ({ protocol: p.protocol, range: opt((r) => [r[0], r[1]])(p.range) })),
});

/** @param {ReturnType<typeof import('../src/netpol.js').computeRules>} rules checked rules */
export function toWitPodRules(rules) {
  return rules.map((r) => ({
    namespace: r.namespace,
    name: r.name,
    ingressIsolated: r.ingressIsolated,
    egressIsolated: r.egressIsolated,
    ingress: r.ingress.map(toWitAllow),
    egress: r.egress.map(toWitAllow),
  }));
}

/**
 * What an export throws for a result's error: a value whose `payload` is the cni-error.
 * @param {CniError} e
 */
export function toWitError(e) {
  return Object.assign(new Error(e.msg), { payload: { code: e.code, msg: e.msg, details: e.details } });
}

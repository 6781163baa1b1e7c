// The host-local IPAM config (`ranges`, or the legacy top-level `subnet`),
// made canonical exactly as the reference host-local does (and the Rust
// SDK's ipam_config), so a policy written with this SDK reads the same
// configs and hands out the same ranges. Every failure is code 7.

import { configError } from './errors.js';
import { IpAddress, IpPrefix } from './ip.js';

/** @typedef {import('./ip.js').IpSet} IpSet */

/** A range with every default filled in and checked. Immutable. */
export class Range {
  /**
   * @param {IpPrefix} subnet host bits zero
   * @param {IpAddress} start
   * @param {IpAddress} end
   * @param {IpAddress} gateway
   */
  constructor(subnet, start, end, gateway) {
    this.subnet = subnet;
    this.start = start;
    this.end = end;
    this.gateway = gateway;
    Object.freeze(this);
  }

  /**
   * Applies the reference defaults: start after the network address, end
   * before the IPv4 broadcast (the last address for IPv6), gateway = first.
   * @param {{subnet: string, rangeStart?: IpAddress, rangeEnd?: IpAddress, gateway?: IpAddress}} cfg
   */
  static canonical({ subnet, rangeStart, rangeEnd, gateway }) {
    const parsed = IpPrefix.parse(subnet);
    if (!parsed) throw configError(`invalid subnet ${JSON.stringify(subnet)}`);
    const net = parsed.network();
    const first = net.first.next();
    if ((net.family === 4 && net.prefixLen >= 31) || !first) {
      throw configError(`network ${net} too small to allocate from`);
    }
    const last = net.family === 4 ? net.last.prev() : net.last;
    const inside = (name, a) => {
      if (!net.contains(a)) throw configError(`${name} ${a} not in network ${net}`);
      return a;
    };
    const start = rangeStart ? inside('rangeStart', rangeStart) : first;
    const end = rangeEnd ? inside('rangeEnd', rangeEnd) : last;
    const gw = gateway ? inside('gateway', gateway) : first;
    if (start.compare(end) > 0) throw configError(`rangeStart ${start} is after rangeEnd ${end}`);
    return new Range(net, start, end, gw);
  }

  /** @param {IpAddress} ip */
  contains(ip) {
    return this.subnet.contains(ip) && ip.compare(this.start) >= 0 && ip.compare(this.end) <= 0;
  }

  /**
   * The first address from `from` on, inside this range, that is neither the
   * gateway nor in `taken`.
   * @param {IpAddress} from
   * @param {IpSet} taken
   * @returns {IpAddress | undefined}
   */
  firstFree(from, taken) {
    for (let a = from; a && this.contains(a); a = a.next()) {
      if (!a.equals(this.gateway) && !taken.has(a)) return a;
    }
    return undefined;
  }

  /** Addresses this range can hand out: its span less the gateway if inside. */
  capacity() {
    return this.end.value - this.start.value + 1n - (this.contains(this.gateway) ? 1n : 0n);
  }

  toString() {
    return `${this.start}-${this.end}`;
  }
}

/**
 * The `ipam` section of a plugin config (parsed JSON): every range set,
 * legacy form first, each range canonical and each set free of overlaps and
 * mixed families; the routes and DNS to return.
 * @param {unknown} config
 * @returns {{sets: Range[][], routes: import('./result.js').Route[], dns: import('./result.js').Dns | undefined}}
 */
export function parseIpamConfig(config) {
  const ipam = config !== null && typeof config === 'object' && !Array.isArray(config) ? config.ipam : undefined;
  if (ipam === undefined) throw configError('missing "ipam" section');
  const section = object(ipam, 'ipam');
  const legacy = {
    subnet: optional(section.subnet, 'subnet', string),
    rangeStart: optional(section.rangeStart, 'rangeStart', address),
    rangeEnd: optional(section.rangeEnd, 'rangeEnd', address),
    gateway: optional(section.gateway, 'gateway', address),
  };
  const ranges = list(section.ranges, 'ranges', (set, path) => list(set, path, rangeConfig));
  const routes = list(section.routes, 'routes', route);
  const dns = optional(section.dns, 'dns', dnsConfig);

  const configs = legacy.subnet === undefined ? [] : [[legacy]];
  configs.push(...ranges);
  if (configs.length === 0) throw configError('no IP ranges specified');
  const sets = configs.map((set) => {
    if (set.length === 0) throw configError('empty range set');
    const rs = set.map((c) => Range.canonical(c));
    if (rs.some((r) => r.subnet.family !== rs[0].subnet.family)) throw configError('a range set mixes IPv4 and IPv6');
    rs.forEach((a, i) => {
      for (const b of rs.slice(i + 1)) {
        if (a.contains(b.start) || a.contains(b.end) || b.contains(a.start)) {
          throw configError(`ranges ${a} and ${b} overlap`);
        }
      }
    });
    return rs;
  });
  return { sets, routes, dns };
}

// Typing the JSON, field by field, as the Rust SDK's serde model does:
// unknown fields are ignored; an option may be null, a list may not.

const invalid = (path, msg) => configError(`invalid ipam config: ${path}: ${msg}`);
const shown = (v) => (v === undefined ? 'nothing' : JSON.stringify(v));

function object(v, path) {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw invalid(path, `expected an object, got ${shown(v)}`);
  }
  return v;
}

function string(v, path) {
  if (typeof v !== 'string') throw invalid(path, `expected a string, got ${shown(v)}`);
  return v;
}

function address(v, path) {
  const a = IpAddress.parse(v);
  if (!a) throw invalid(path, `invalid IP address ${shown(v)}`);
  return a;
}

function u32(v, path) {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw invalid(path, `expected a u32, got ${shown(v)}`);
  return v;
}

const optional = (v, path, f) => (v === undefined || v === null ? undefined : f(v, path));

/** Each item typed by `f`; an absent list is empty. */
function list(v, path, f) {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw invalid(path, `expected a list, got ${shown(v)}`);
  return v.map((x, i) => f(x, `${path}[${i}]`));
}

function rangeConfig(v, path) {
  const r = object(v, path);
  return {
    subnet: string(r.subnet, `${path}.subnet`),
    rangeStart: optional(r.rangeStart, `${path}.rangeStart`, address),
    rangeEnd: optional(r.rangeEnd, `${path}.rangeEnd`, address),
    gateway: optional(r.gateway, `${path}.gateway`, address),
  };
}

function route(v, path) {
  const r = object(v, path);
  const dst = IpPrefix.parse(r.dst);
  if (!dst) throw invalid(`${path}.dst`, `invalid prefix ${shown(r.dst)}`);
  return { dst, gw: optional(r.gw, `${path}.gw`, address), priority: optional(r.priority, `${path}.priority`, u32) };
}

function dnsConfig(v, path) {
  const d = object(v, path);
  return {
    nameservers: list(d.nameservers, `${path}.nameservers`, address),
    domain: optional(d.domain, `${path}.domain`, string),
    search: list(d.search, `${path}.search`, string),
    options: list(d.options, `${path}.options`, string),
  };
}

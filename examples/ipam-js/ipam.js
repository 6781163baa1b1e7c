// Lowest-free IPAM for the wasmcni `ipam` world, in JavaScript (IPv4 only),
// built with componentize-js: see build.sh.
//
// Binding conventions (componentize-js / jco):
// - imports are ES imports from 'wasmcni:plugin/<iface>@<version>';
// - the exported interface `handler` is an exported object named `handler`
//   (camelCase of the interface name) with one method per function;
// - record fields are camelCase (containerId, networkName, prevResult);
// - option<T> is `T | undefined` (null is accepted too when lowering);
// - enums are strings ('error', 'warn', ...); u32 is a JS number;
// - a variant is {tag, val}: an ip-address is {tag: 'v4', val: [10, 0, 0, 2]},
//   an ip-prefix {address, prefixLen}; tuples are arrays;
// - result<T, E> from an import: the ok value is returned, an err is thrown as
//   an Error whose `.payload` is E; from an export: return T for ok, throw
//   for err (the thrown value's `.payload` if it has one, else the value itself).
import { emit } from 'wasmcni:plugin/log@1.2.0';
import { reserve, leases, releaseOwner } from 'wasmcni:plugin/ipam-store@1.2.0';

const INVALID_CONFIG = 7;
const PLUGIN_NOT_AVAILABLE = 50;
const PLUGIN = 100;

class CniErr extends Error {
  constructor(code, msg) {
    super(msg);
    this.payload = { code, msg, details: '' };
  }
}
const configError = (msg) => new CniErr(INVALID_CONFIG, msg);

// ---- IPv4 as unsigned 32-bit numbers ----
function parseIp(s) {
  if (typeof s !== 'string') return undefined;
  const p = s.split('.');
  if (p.length !== 4) return undefined;
  let n = 0;
  for (const x of p) {
    if (!/^\d{1,3}$/.test(x) || Number(x) > 255) return undefined;
    n = n * 256 + Number(x);
  }
  return n;
}
const octets = (n) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const fmtIp = (n) => octets(n).join('.');

// ---- The WIT's typed addresses, converted here and nowhere else ----
const toAddr = (n) => ({ tag: 'v4', val: octets(n) });
// An IPv6 lease (another module's) is not ours to count: undefined.
const fromAddr = (a) => (a && a.tag === 'v4' ? a.val.reduce((n, b) => n * 256 + b, 0) : undefined);
const toPrefix = (n, prefixLen) => ({ address: toAddr(n), prefixLen });
function ipv4(s, what) {
  const a = parseIp(s);
  if (a === undefined) throw configError(`invalid ${what} ${JSON.stringify(s)} (IPv4 only)`);
  return a;
}
const shown = (addrs) => addrs.map((a) => fmtIp(fromAddr(a))).join(',');

function parseCidr(s) {
  if (typeof s !== 'string') throw configError(`invalid subnet ${JSON.stringify(s)}`);
  const [a, pl, extra] = s.split('/');
  const ip = parseIp(a);
  const prefix = /^\d{1,2}$/.test(pl ?? '') ? Number(pl) : -1;
  if (ip === undefined || extra !== undefined || prefix < 0 || prefix > 32) {
    throw configError(`invalid subnet ${JSON.stringify(s)} (IPv4 only)`);
  }
  const size = 2 ** (32 - prefix);
  const network = ip - (ip % size);
  return { network, broadcast: network + size - 1, prefix };
}

class Range {
  constructor(cfg) {
    if (!cfg || typeof cfg !== 'object') throw configError('a range must be an object');
    const net = parseCidr(cfg.subnet);
    if (net.prefix >= 31) throw configError(`network ${cfg.subnet} too small to allocate from`);
    this.net = net;
    const inside = (key, dflt) => {
      const v = cfg[key];
      if (v === undefined || v === null) return dflt;
      const a = parseIp(v);
      if (a === undefined) throw configError(`invalid ${key} ${JSON.stringify(v)}`);
      if (a < net.network || a > net.broadcast) throw configError(`${key} ${v} not in network ${cfg.subnet}`);
      return a;
    };
    this.start = inside('rangeStart', net.network + 1);
    this.end = inside('rangeEnd', net.broadcast - 1);
    this.gateway = inside('gateway', net.network + 1);
    if (this.start > this.end) {
      throw configError(`rangeStart ${fmtIp(this.start)} is after rangeEnd ${fmtIp(this.end)}`);
    }
  }
  contains(a) {
    return a >= this.start && a <= this.end;
  }
  firstFree(taken) {
    for (let a = this.start; a <= this.end; a++) {
      if (a !== this.gateway && !taken.has(a)) return a;
    }
    return undefined;
  }
  capacity() {
    return this.end - this.start + 1 - (this.contains(this.gateway) ? 1 : 0);
  }
  describe() {
    return `${fmtIp(this.start)}-${fmtIp(this.end)}`;
  }
}

function parseConfig(raw) {
  let conf;
  try {
    conf = JSON.parse(raw);
  } catch (e) {
    throw configError(`invalid config JSON: ${e.message}`);
  }
  const ipam = conf && conf.ipam;
  if (!ipam || typeof ipam !== 'object') throw configError('missing "ipam" section');
  const sets = [];
  if (typeof ipam.subnet === 'string') sets.push([ipam]);
  const ranges = ipam.ranges ?? [];
  if (!Array.isArray(ranges) || !ranges.every(Array.isArray)) throw configError('"ranges" must be a list of lists');
  sets.push(...ranges);
  if (sets.length === 0) throw configError('no IP ranges specified');
  const routes = ipam.routes ?? [];
  if (!Array.isArray(routes) || !routes.every((r) => r && typeof r.dst === 'string')) {
    throw configError('"routes" must be a list of {"dst": ...} objects');
  }
  const dns = ipam.dns;
  if (dns !== undefined && dns !== null &&
      !(typeof dns === 'object' && ['nameservers', 'search', 'options'].every((k) => Array.isArray(dns[k] ?? [])))) {
    throw configError('"dns" must be an object with list fields');
  }
  return {
    sets: sets.map((s) => {
      if (s.length === 0) throw configError('empty range set');
      return s.map((c) => new Range(c));
    }),
    routes,
    dns,
  };
}

const inSet = (rs, a) => rs.some((r) => r.contains(a));
const describe = (rs) => rs.map((r) => r.describe()).join(',');

// Maps anything thrown to a CniError payload: store errors (already carrying
// a CniError payload) and our own CniErr pass through; a bug becomes code 100.
function guard(f) {
  try {
    return f();
  } catch (e) {
    if (e && e.payload && typeof e.payload.code === 'number') throw e;
    throw new CniErr(PLUGIN, `internal error: ${e}${e && e.stack ? `\n${e.stack}` : ''}`);
  }
}

export const handler = {
  add(inv) {
    return guard(() => {
      const conf = parseConfig(inv.config);
      const all = leases();
      for (const l of all) {
        const a = fromAddr(l.ip);
        if (l.containerId === inv.containerId && l.ifname === inv.ifname && a !== undefined &&
            conf.sets.some((rs) => inSet(rs, a))) {
          throw new CniErr(PLUGIN,
            `${fmtIp(a)} has been allocated to ${inv.containerId}/${inv.ifname}, duplicate allocation is not allowed`);
        }
      }
      const taken = new Set(all.map((l) => fromAddr(l.ip)).filter((a) => a !== undefined));
      const ips = [];
      try {
        conf.sets.forEach((rs, index) => {
          const skip = new Set(taken);
          for (;;) {
            let ip;
            for (const r of rs) {
              ip = r.firstFree(skip);
              if (ip !== undefined) break;
            }
            if (ip === undefined) {
              throw new CniErr(PLUGIN_NOT_AVAILABLE, `no IP addresses available in range set: ${describe(rs)}`);
            }
            if (reserve(toAddr(ip), inv.containerId, inv.ifname, index)) {
              const r = rs.find((r) => r.contains(ip));
              ips.push({ address: toPrefix(ip, r.net.prefix), gateway: toAddr(r.gateway), iface: undefined });
              break;
            }
            skip.add(ip); // lost a race: try the next one
          }
        });
      } catch (e) {
        releaseOwner(inv.containerId, inv.ifname); // free what this call took
        throw e;
      }
      emit('info', `allocated ${shown(ips.map((i) => i.address.address))} to ${inv.containerId}`);
      return {
        interfaces: [],
        ips,
        routes: conf.routes.map((r) => {
          const dst = parseCidr(r.dst);
          return {
            dst: toPrefix(dst.network, dst.prefix), gw: r.gw == null ? undefined : toAddr(ipv4(r.gw, 'route gw')),
            mtu: undefined, advmss: undefined, priority: r.priority ?? undefined, table: undefined, scope: undefined,
          };
        }),
        dns: conf.dns ? {
          nameservers: (conf.dns.nameservers ?? []).map((s) => toAddr(ipv4(s, 'nameserver'))),
          domain: conf.dns.domain ?? undefined,
          search: conf.dns.search ?? [], options: conf.dns.options ?? [],
        } : undefined,
      };
    });
  },

  del(inv) {
    guard(() => {
      try {
        parseConfig(inv.config);
      } catch (e) {
        emit('warn', `DEL with invalid config: ${e.message}`);
      }
      const freed = releaseOwner(inv.containerId, inv.ifname);
      if (freed.length) emit('info', `released ${shown(freed)} of ${inv.containerId}`);
    });
  },

  check(inv) {
    guard(() => {
      parseConfig(inv.config);
      if (!leases().some((l) => l.containerId === inv.containerId && l.ifname === inv.ifname)) {
        throw new CniErr(PLUGIN, `failed to find address added by container ${inv.containerId}`);
      }
    });
  },

  status(inv) {
    guard(() => {
      const conf = parseConfig(inv.config);
      const addrs = leases().map((l) => fromAddr(l.ip)).filter((a) => a !== undefined);
      for (const rs of conf.sets) {
        const used = addrs.filter((a) => inSet(rs, a)).length;
        const capacity = rs.reduce((n, r) => n + r.capacity(), 0);
        if (capacity <= used) {
          throw new CniErr(PLUGIN_NOT_AVAILABLE, `range set ${describe(rs)} is exhausted (${used} leases)`);
        }
      }
    });
  },

  gc(inv, valid) {
    guard(() => {
      const keep = new Set(valid.map((a) => `${a.containerId}\u0000${a.ifname}`));
      const owners = new Set(leases().map((l) => `${l.containerId}\u0000${l.ifname}`));
      for (const o of [...owners].sort()) {
        if (keep.has(o)) continue;
        const [id, ifname] = o.split('\u0000');
        const freed = releaseOwner(id, ifname);
        emit('info', `gc released ${shown(freed)} of ${id}/${ifname}`);
      }
    });
  },
};

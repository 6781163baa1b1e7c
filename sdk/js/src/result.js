// The CNI result a plugin returns (and the previous plugin's it gets), in the
// WIT's model: typed addresses, no spec versions (the host converts them).

/**
 * @typedef {import('./ip.js').IpAddress} IpAddress
 * @typedef {import('./ip.js').IpPrefix} IpPrefix
 * @typedef {{name: string, mac?: import('./mac.js').Mac, mtu?: number, sandbox?: string}} Iface
 * @typedef {{address: IpPrefix, gateway?: IpAddress, iface?: number}} IpConfig
 *   `address` is the interface's address with its prefix (`10.22.0.5/16`);
 *   `iface` an index into `interfaces`.
 * @typedef {{dst: IpPrefix, gw?: IpAddress, mtu?: number, advmss?: number, priority?: number,
 *   table?: number, scope?: 'universe' | 'site' | 'link' | 'host'}} Route
 * @typedef {{nameservers?: IpAddress[], domain?: string, search?: string[], options?: string[]}} Dns
 * @typedef {{interfaces?: Iface[], ips?: IpConfig[], routes?: Route[], dns?: Dns}} CniResult
 */

import * as t from './check.js';
import { Code, CniError } from './errors.js';

export const ROUTE_SCOPES = ['universe', 'site', 'link', 'host'];

const u32 = t.optional(t.uint(32));

const route = (v, path) => {
  const r = t.record({
    dst: t.prefix,
    gw: t.optional(t.address),
    mtu: u32,
    advmss: u32,
    priority: u32,
    table: u32,
    scope: t.optional(t.oneOf(ROUTE_SCOPES)),
  })(v, path);
  t.ensure(!r.gw || r.gw.family === r.dst.family, `${path}.gw`, `${r.gw} is not of the family of ${r.dst}`);
  return r;
};

const ipConfig = (v, path) => {
  const c = t.record({ address: t.prefix, gateway: t.optional(t.address), iface: u32 })(v, path);
  t.ensure(
    !c.gateway || c.gateway.family === c.address.family,
    `${path}.gateway`,
    `${c.gateway} is not of the family of ${c.address}`,
  );
  return c;
};

const dns = t.record({
  nameservers: t.list(t.address),
  domain: t.optional(t.string),
  search: t.list(t.string),
  options: t.list(t.string),
});

const iface = t.record({ name: t.string, mac: t.optional(t.mac), mtu: u32, sandbox: t.optional(t.string) });

/** Checks a route record; throws check.Invalid. */
export const checkRoute = route;

const result = t.record({
  interfaces: t.list(iface),
  ips: t.list(ipConfig),
  routes: t.list(route),
  dns: t.optional(dns),
});

/**
 * The result normalized (absent lists empty), or CniError 100 "plugin
 * returned an invalid result: ..." for a value the WIT cannot carry or a
 * gateway of the other family: what an IPAM or network plugin must not hand
 * the host.
 * @param {CniResult} r
 * @returns {Required<CniResult>}
 */
export function checkResult(r) {
  try {
    return result(r, '');
  } catch (e) {
    if (!(e instanceof t.Invalid)) throw e;
    throw new CniError(Code.PluginFailure, `plugin returned an invalid result: ${e.message}`);
  }
}

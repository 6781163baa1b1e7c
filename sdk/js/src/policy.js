// Admission of an ADD (the `policy` world): a policy sees the invocation and
// its own config entry, nothing privileged, and allows, denies or changes
// the ADD. The host rewrites the plugin's config for `allowWith`, so any IPAM
// that reads host-local's config honours the changes.

import * as t from './check.js';
import { asCniError } from './errors.js';
import { checkRoute } from './result.js';

/**
 * @typedef {import('./ip.js').IpAddress} IpAddress
 * @typedef {import('./ip.js').IpPrefix} IpPrefix
 * @typedef {{subnet: IpPrefix, rangeStart?: IpAddress, rangeEnd?: IpAddress, gateway?: IpAddress}} IpRange
 *   a range to allocate from, as in host-local's `ranges`
 * @typedef {{ips?: IpAddress[], ranges?: IpRange[], routes?: import('./result.js').Route[]}} Changes
 *   `ips` are requested from IPAM; non-empty `ranges` replace the IPAM
 *   section's (one range set each); `routes` are appended to its routes
 * @typedef {{kind: 'allow'} | {kind: 'deny', reason: string} | {kind: 'allow-with', changes: Changes}} Decision
 * @typedef {{log: import('./range-ipam.js').Log}} PolicyHost
 */

/** @returns {Decision} */
export const allow = () => Object.freeze({ kind: 'allow' });

/**
 * Refuses the ADD; the runtime gets code 103 with `reason`, and nothing is created.
 * @param {string} reason
 * @returns {Decision}
 */
export const deny = (reason) => Object.freeze({ kind: 'deny', reason });

/**
 * @param {Changes} changes
 * @returns {Decision}
 */
export const allowWith = ({ ips = [], ranges = [], routes = [] } = {}) =>
  Object.freeze({ kind: 'allow-with', changes: { ips, ranges, routes } });

export class Policy {
  /**
   * The decision on an ADD. `inv.config` is this policy's entry of the
   * plugin's `policies`. A throw denies the ADD with the error's message.
   * @param {import('./invocation.js').Invocation} inv
   * @param {PolicyHost} host
   * @returns {Decision}
   */
  admit(inv, host) {
    throw new Error(`${this.constructor.name} does not implement admit`);
  }
}

const range = (v, path) => {
  const r = t.record({
    subnet: t.prefix,
    rangeStart: t.optional(t.address),
    rangeEnd: t.optional(t.address),
    gateway: t.optional(t.address),
  })(v, path);
  for (const key of ['rangeStart', 'rangeEnd', 'gateway']) {
    t.ensure(
      !r[key] || r[key].family === r.subnet.family,
      `${path}.${key}`,
      `${r[key]} is not of the family of ${r.subnet}`,
    );
  }
  return r;
};

const changes = t.record({ ips: t.list(t.address), ranges: t.list(range), routes: t.list(checkRoute) });

/**
 * The decision normalized, or a t.Invalid for one the WIT cannot carry.
 * @param {Decision} d
 * @returns {Decision}
 */
function checkDecision(d) {
  const kind = t.oneOf(['allow', 'deny', 'allow-with'])(d?.kind, 'kind');
  if (kind === 'allow') return allow();
  if (kind === 'deny') return deny(t.string(d.reason, 'reason'));
  return allowWith(changes(d.changes, 'changes'));
}

/**
 * What the host gets from `policy` for `inv`: its decision, checked. Admission
 * has no error channel, so a policy fails closed: a throw, or a decision the
 * WIT cannot carry, is a denial with the reason (a bug's stack goes to the log).
 * @param {Policy} policy
 * @param {import('./invocation.js').Invocation} inv
 * @param {PolicyHost} host
 * @returns {Decision}
 */
export function decide(policy, inv, host) {
  let d;
  try {
    d = policy.admit(inv, host);
  } catch (e) {
    const err = asCniError(e);
    if (err.details) host.log('error', `${err.msg}\n${err.details}`);
    return deny(err.msg);
  }
  try {
    return checkDecision(d);
  } catch (e) {
    if (!(e instanceof t.Invalid)) throw e;
    return deny(`policy returned an invalid decision: ${e.message}`);
  }
}

// An IPAM plugin as the host calls it, shared by the component adapter and
// the testing host so both behave alike: every throw becomes a CniError (a
// bug is code 100 "internal error: ..."), and an ADD's result is checked
// against what the WIT can carry.
//
// An IPAM plugin is an object with add, del, check, status and gc, each
// taking the invocation (gc also the valid attachments) and the host
// ({store, log}); RangeIpam is one.

import { asCniError } from './errors.js';
import { checkResult } from './result.js';

/**
 * @typedef {import('./invocation.js').Invocation} Invocation
 * @typedef {import('./range-ipam.js').IpamHost} IpamHost
 * @typedef {import('./range-ipam.js').Attachment} Attachment
 */

/**
 * @param {{add: Function, del: Function, check: Function, status: Function, gc: Function}} ipam
 * @param {IpamHost} host
 */
export function serveIpam(ipam, host) {
  const run = (f) => {
    try {
      return f();
    } catch (e) {
      throw asCniError(e);
    }
  };
  return {
    /** @param {Invocation} inv */
    add: (inv) => run(() => checkResult(ipam.add(inv, host))),
    /** @param {Invocation} inv */
    del: (inv) => run(() => void ipam.del(inv, host)),
    /** @param {Invocation} inv */
    check: (inv) => run(() => void ipam.check(inv, host)),
    /** @param {Invocation} inv */
    status: (inv) => run(() => void ipam.status(inv, host)),
    /**
     * @param {Invocation} inv
     * @param {Attachment[]} valid
     */
    gc: (inv, valid) => run(() => void ipam.gc(inv, valid, host)),
  };
}

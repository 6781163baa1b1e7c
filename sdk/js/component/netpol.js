// The `netpol` world's export, `networkPolicy`, for a NetworkPolicy:
//
//   import { netpolRules } from '@wasmcni/sdk/component/netpol.js';
//   export const networkPolicy = netpolRules(new SameNamespace());
//
// The policies arrive as JSON and reach the module parsed; every failure is
// returned as a cni-error (a bug is code 100 "internal error: ..."), never a trap.

import { emit } from 'wasmcni:plugin/log@1.2.0';
import { asCniError } from '../src/errors.js';
import { checkedLog } from '../src/host-calls.js';
import { computeRules, parsePolicies } from '../src/netpol.js';
import { fromWitNamespace, fromWitPod, toWitError, toWitPodRules } from './wit.js';

const host = { log: checkedLog(emit) };

/** The `networkPolicy` export serving `netpol`. */
export function netpolRules(netpol) {
  return {
    rules(policies, namespaces, local, remote) {
      try {
        const rules = computeRules(
          netpol,
          parsePolicies(policies),
          namespaces.map(fromWitNamespace),
          local.map(fromWitPod),
          remote.map(fromWitPod),
          host,
        );
        return toWitPodRules(rules);
      } catch (e) {
        throw toWitError(asCniError(e));
      }
    },
  };
}

// The `policy` world's export, `admission`, for a Policy:
//
//   import { policyAdmission } from '@wasmcni/sdk/component/policy.js';
//   export const admission = policyAdmission(new DenyNamespaces());
//
// Admission has no error channel: whatever goes wrong (a throw, a decision
// the WIT cannot carry) denies the ADD with the reason, never a trap.

import { emit } from 'wasmcni:plugin/log@1.2.0';
import { asCniError } from '../src/errors.js';
import { checkedLog } from '../src/host-calls.js';
import { decide } from '../src/policy.js';
import { fromWitInvocation, toWitDecision } from './wit.js';

const host = { log: checkedLog(emit) };

/** The `admission` export serving `policy`. */
export function policyAdmission(policy) {
  return {
    admit(inv) {
      try {
        return toWitDecision(decide(policy, fromWitInvocation(inv), host));
      } catch (e) {
        return { tag: 'deny', val: asCniError(e).msg };
      }
    },
  };
}

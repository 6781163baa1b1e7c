// Kubernetes NetworkPolicy (the `netpol` world): NetworkPolicy objects,
// namespaces and pods in; for each pod this node serves, whether each
// direction is isolated and what it allows. The host compiles the answer
// into nftables; the module never touches the kernel.

import * as t from './check.js';
import { Code, CniError, asCniError, configError } from './errors.js';

/**
 * @typedef {import('./ip.js').IpAddress} IpAddress
 * @typedef {import('./ip.js').IpPrefix} IpPrefix
 * @typedef {Map<string, string>} Labels
 * @typedef {{name: string, labels: Labels}} Namespace
 * @typedef {{namespace: string, name: string, labels: Labels, ips: IpAddress[]}} Pod
 * @typedef {'tcp' | 'udp' | 'sctp'} Protocol
 * @typedef {{protocol: Protocol, range?: [number, number]}} Ports
 *   one protocol's ports: all of them, or `range[0]` to `range[1]` inclusive
 * @typedef {{peers?: IpPrefix[], ports?: Ports[]}} Allow
 *   traffic with `peers` (absent: every address) on `ports` (empty: every port)
 * @typedef {{namespace: string, name: string, ingressIsolated?: boolean, egressIsolated?: boolean,
 *   ingress?: Allow[], egress?: Allow[]}} PodRules
 *   a direction no policy isolates is open, whatever its list holds
 * @typedef {{matchLabels?: Record<string, string>,
 *   matchExpressions?: {key: string, operator: string, values?: string[]}[]}} LabelSelector
 * @typedef {{log: import('./range-ipam.js').Log}} NetpolHost
 */

export const PROTOCOLS = ['tcp', 'udp', 'sctp'];

export class NetworkPolicy {
  /**
   * The rules of every pod in `local` (the pods this node serves).
   * @param {object[]} policies NetworkPolicy objects, parsed, in the API's own form
   * @param {Namespace[]} namespaces
   * @param {Pod[]} local
   * @param {Pod[]} remote the other pods the policies may select as peers
   * @param {NetpolHost} host
   * @returns {PodRules[]}
   */
  rules(policies, namespaces, local, remote, host) {
    throw new Error(`${this.constructor.name} does not implement rules`);
  }
}

/**
 * Whether `labels` satisfy every label and expression of `selector` (In,
 * NotIn, Exists, DoesNotExist). An empty or absent selector matches
 * everything; what an absent one means in a policy is the caller's to say.
 * An unknown operator is code 7.
 * @param {LabelSelector | undefined | null} selector
 * @param {Labels} labels
 */
export function selectorMatches(selector, labels) {
  const { matchLabels = {}, matchExpressions = [] } = selector ?? {};
  if (!Object.entries(matchLabels ?? {}).every(([k, v]) => labels.get(k) === v)) return false;
  return (matchExpressions ?? []).every(({ key, operator, values }) => {
    const value = labels.get(key);
    const listed = value !== undefined && (values ?? []).includes(value);
    switch (operator) {
      case 'In':
        return listed;
      case 'NotIn':
        return !listed;
      case 'Exists':
        return value !== undefined;
      case 'DoesNotExist':
        return value === undefined;
      default:
        throw configError(`unknown matchExpressions operator ${JSON.stringify(operator)}`);
    }
  });
}

/**
 * NetworkPolicy objects from their JSON (as the host passes them); code 7
 * for one that is not a JSON object.
 * @param {string[]} texts
 * @returns {object[]}
 */
export function parsePolicies(texts) {
  return texts.map((text, i) => {
    let p;
    try {
      p = JSON.parse(text);
    } catch (e) {
      throw configError(`policies[${i}] is not JSON: ${e.message}`);
    }
    if (p === null || typeof p !== 'object' || Array.isArray(p)) throw configError(`policies[${i}] is not an object`);
    return p;
  });
}

const u16 = t.uint(16);

const ports = (v, path) => {
  const p = t.record({ protocol: t.oneOf(PROTOCOLS), range: t.optional(t.list(u16)) })(v, path);
  if (p.range) {
    t.ensure(
      p.range.length === 2 && p.range[0] <= p.range[1],
      `${path}.range`,
      `expected [first, last], got ${JSON.stringify(p.range)}`,
    );
  }
  return p;
};

const allow = t.record({ peers: t.optional(t.list(t.prefix)), ports: t.list(ports) });

const flag = (v, path) => (v === undefined ? false : t.bool(v, path));

const podRules = t.record({
  namespace: t.string,
  name: t.string,
  ingressIsolated: flag,
  egressIsolated: flag,
  ingress: t.list(allow),
  egress: t.list(allow),
});

/**
 * What the host gets from `netpol`: its rules, checked and normalized (absent
 * lists empty, absent flags false). A throw is its CniError; rules the WIT
 * cannot carry are code 100 "module returned invalid rules: ...".
 * @param {NetworkPolicy} netpol
 * @param {object[]} policies
 * @param {Namespace[]} namespaces
 * @param {Pod[]} local
 * @param {Pod[]} remote
 * @param {NetpolHost} host
 * @returns {Required<PodRules>[]}
 */
export function computeRules(netpol, policies, namespaces, local, remote, host) {
  let rules;
  try {
    rules = netpol.rules(policies, namespaces, local, remote, host);
  } catch (e) {
    throw asCniError(e);
  }
  try {
    t.ensure(Array.isArray(rules), 'rules', 'expected a list');
    return t.list(podRules)(rules, 'rules');
  } catch (e) {
    if (!(e instanceof t.Invalid)) throw e;
    throw new CniError(Code.PluginFailure, `module returned invalid rules: ${e.message}`);
  }
}

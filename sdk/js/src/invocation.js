// What the runtime asked for, as a plugin gets it: the host has already
// checked the CNI_* variables and typed the requested addresses.

import { configError } from './errors.js';

/** @typedef {import('./ip.js').IpAddress} IpAddress */

export class Invocation {
  /**
   * @param {object} fields
   * @param {string} fields.containerId
   * @param {string} fields.ifname
   * @param {string} [fields.netns] CNI_NETNS, for a result's `sandbox` only; absent on DEL when gone
   * @param {{key: string, value: string}[]} [fields.args] CNI_ARGS, in order
   * @param {string} fields.networkName
   * @param {string} fields.config the plugin's own config entry, as JSON
   * @param {IpAddress[]} [fields.requestedIps] from CNI_ARGS `IP`, `args.cni.ips` and `runtimeConfig.ips`
   * @param {import('./mac.js').Mac} [fields.requestedMac]
   * @param {import('./result.js').CniResult} [fields.prevResult] the previous plugin's result
   */
  constructor({
    containerId,
    ifname,
    netns,
    args = [],
    networkName,
    config,
    requestedIps = [],
    requestedMac,
    prevResult,
  }) {
    this.containerId = containerId;
    this.ifname = ifname;
    this.netns = netns;
    this.args = Object.freeze([...args]);
    this.networkName = networkName;
    this.config = config;
    this.requestedIps = Object.freeze([...requestedIps]);
    this.requestedMac = requestedMac;
    this.prevResult = prevResult;
    Object.freeze(this);
  }

  /** The plugin's config parsed; code 7 when it is not JSON. */
  configJson() {
    try {
      return JSON.parse(this.config);
    } catch (e) {
      throw configError(`invalid plugin config: ${e.message}`);
    }
  }

  /**
   * The value of `key` in CNI_ARGS (the first, if given twice).
   * @param {string} key
   * @returns {string | undefined}
   */
  arg(key) {
    return this.args.find((a) => a.key === key)?.value;
  }

  /** The pod's Kubernetes namespace (CNI_ARGS `K8S_POD_NAMESPACE`), if the runtime passed one. */
  podNamespace() {
    return this.arg('K8S_POD_NAMESPACE');
  }
}

// CNI errors with the spec's codes (1-99) and wasmcni's own (100 up), as the
// host uses them. A plugin may return any code, so a code stays a number.

export const Code = Object.freeze({
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  LimitedConnectivity: 51,
  /** A plugin failed: its own error, or a broken contract. */
  PluginFailure: 100,
  /** Something outside the plugin's capabilities. */
  CapabilityDenied: 101,
  /** The kernel refused a request. */
  Kernel: 102,
  /** A policy denied the ADD. */
  PolicyDenied: 103,
});

/** A CNI error as a plugin throws it; the component adapters return it to the host. */
export class CniError extends Error {
  /**
   * @param {number} code
   * @param {string} msg
   * @param {string} [details]
   */
  constructor(code, msg, details = '') {
    super(`${msg} (code ${code})`);
    this.name = 'CniError';
    this.code = code;
    this.msg = msg;
    this.details = details;
  }
}

/** Code 7: the network configuration is invalid. */
export const configError = (msg) => new CniError(Code.InvalidConfig, msg);

/** Code 100: a plugin-specific failure. */
export const pluginError = (msg) => new CniError(Code.PluginFailure, msg);

/** Code 50: nothing left to hand out (an exhausted range). */
export const notAvailable = (msg) => new CniError(Code.PluginNotAvailable, msg);

/**
 * Anything thrown, as a CniError: a CniError as it is; an error of a host
 * import (a WIT `cni-error` in its `payload`) with its code; anything else is
 * a bug, code 100 "internal error: ...", with its stack in the details.
 * @param {unknown} e
 * @returns {CniError}
 */
export function asCniError(e) {
  if (e instanceof CniError) return e;
  const p = e !== null && typeof e === 'object' ? e.payload : undefined;
  if (p && Number.isInteger(p.code) && typeof p.msg === 'string') {
    return new CniError(p.code, p.msg, typeof p.details === 'string' ? p.details : '');
  }
  const stack = e instanceof Error && e.stack ? e.stack : '';
  return new CniError(Code.PluginFailure, `internal error: ${String(e)}`, stack);
}

// @wasmcni/sdk: wasmcni plugins in JavaScript. This is the pure core (no
// WIT imports, runs in node); the component adapters in ../component bind
// it to a world, and ./testing.js is an in-memory host for tests.

export { Code, CniError, asCniError, configError, notAvailable, pluginError } from './errors.js';
export { IpAddress, IpPrefix, IpSet, hostPrefix } from './ip.js';
export { Mac } from './mac.js';
export { Invocation } from './invocation.js';
export { Range, parseIpamConfig } from './ipam-config.js';
export { RangeIpam } from './range-ipam.js';
export { Policy, allow, allowWith, deny } from './policy.js';
export { NetworkPolicy, PROTOCOLS, selectorMatches } from './netpol.js';

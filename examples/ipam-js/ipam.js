// The module's entry: the `ipam` world exports `handler`. build.sh bundles
// this with the SDK and builds it with componentize-js.
import { ipamHandler } from '@wasmcni/sdk/component/ipam.js';
import { LowestFree } from './lowest-free.js';

export const handler = ipamHandler(new LowestFree());

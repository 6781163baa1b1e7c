// The lifecycle the end-to-end test runs through the host
// (tests/tests/languages.rs), on the SDK's in-memory host.
import assert from 'node:assert/strict';
import test from 'node:test';
import { TestHost, invocation } from '@wasmcni/sdk/testing.js';
import { LowestFree } from '../lowest-free.js';

const CONF = { cniVersion: '1.1.0', name: 'test', ipam: { type: 'wasmcni', subnet: '10.96.0.0/24' } };
const setup = () => {
  const host = new TestHost();
  return { host, ipam: host.ipam(new LowestFree()) };
};
const address = (r) => r.ips.map((i) => String(i.address));

test('a released address is handed out again, lowest first', () => {
  const { host, ipam } = setup();
  assert.deepEqual(address(ipam.add(invocation('a', CONF))), ['10.96.0.2/24']);
  assert.deepEqual(address(ipam.add(invocation('b', CONF))), ['10.96.0.3/24']);
  ipam.del(invocation('a', CONF));
  assert.deepEqual(address(ipam.add(invocation('c', CONF))), ['10.96.0.2/24'], 'round robin would give .4');
  ipam.check(invocation('c', CONF));
  ipam.status(invocation('', CONF));
  ipam.gc(invocation('', CONF), [{ containerId: 'c', ifname: 'eth0' }]);
  assert.deepEqual(
    host.store.leases().map((l) => `${l.ip} ${l.containerId}`),
    ['10.96.0.2 c'],
  );
  ipam.del(invocation('c', CONF));
  assert.equal(host.store.leases().length, 0);
});

test('dual stack: the lowest free address of each range set', () => {
  const { ipam } = setup();
  const conf = {
    ipam: { ranges: [[{ subnet: '10.96.0.0/30' }, { subnet: '10.96.1.0/30' }], [{ subnet: 'fd00::/120' }]] },
  };
  assert.deepEqual(address(ipam.add(invocation('a', conf))), ['10.96.0.2/30', 'fd00::2/120']);
  assert.deepEqual(
    address(ipam.add(invocation('b', conf))),
    ['10.96.1.2/30', 'fd00::3/120'],
    'the next range of the set',
  );
  assert.throws(() => ipam.add(invocation('c', conf)), { code: 50 });
});

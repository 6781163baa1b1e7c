import assert from 'node:assert/strict';
import test from 'node:test';
import { IpAddress, IpPrefix, Policy, allow, allowWith, deny } from '../src/index.js';
import { TestHost, invocation } from '../src/testing.js';

class DenyNamespaces extends Policy {
  admit(inv, host) {
    const { deny: denied = [] } = inv.configJson();
    const ns = inv.podNamespace();
    if (ns !== undefined && denied.includes(ns)) {
      host.log('info', `${inv.containerId}: namespace ${ns} denied`);
      return deny(`namespace ${ns} is denied on ${inv.networkName}`);
    }
    return allow();
  }
}

const CONF = { plugin: 'deny-namespaces', deny: ['blocked'] };

test('a policy allows, denies with a reason, and logs', () => {
  const host = new TestHost();
  const policy = new DenyNamespaces();
  assert.deepEqual(host.admit(policy, invocation('a', CONF, { namespace: 'blocked' })), {
    kind: 'deny',
    reason: 'namespace blocked is denied on test',
  });
  assert.deepEqual(host.logs, [{ level: 'info', msg: 'a: namespace blocked denied' }]);
  assert.deepEqual(host.admit(policy, invocation('a', CONF, { namespace: 'prod' })), { kind: 'allow' });
  assert.deepEqual(host.admit(policy, invocation('a', CONF)), { kind: 'allow' });
});

test('allowWith carries typed changes, normalized', () => {
  const subnet = IpPrefix.parse('10.23.0.0/24');
  const d = new TestHost().admit(
    { admit: () => allowWith({ ranges: [{ subnet, gateway: IpAddress.parse('10.23.0.254') }] }) },
    invocation('a', {}),
  );
  assert.equal(d.kind, 'allow-with');
  assert.deepEqual(d.changes.ips, []);
  assert.deepEqual(d.changes.routes, []);
  assert.equal(String(d.changes.ranges[0].subnet), '10.23.0.0/24');
  assert.equal(d.changes.ranges[0].rangeStart, undefined);
});

test('a policy fails closed: a throw or an invalid decision is a denial', () => {
  const host = new TestHost();
  const decided = (admit) => host.admit({ admit }, invocation('a', 'not json'));
  assert.match(decided((inv) => inv.configJson()).reason, /^invalid plugin config: /);
  assert.equal(host.logs.length, 0, 'a CniError is a reason, not a bug');
  assert.match(decided(() => null.x).reason, /^internal error: TypeError/);
  assert.equal(host.logs.at(-1).level, 'error', 'a bug logs its stack');
  assert.match(host.logs.at(-1).msg, /\n\s+at /);
  const invalid = [
    [() => undefined, 'kind: expected one of allow, deny, allow-with, got nothing'],
    [() => 'allow', 'kind: expected one of allow, deny, allow-with, got nothing'],
    [() => deny(42), 'reason: expected a string, got 42'],
    [() => allowWith({ ips: ['10.0.0.2'] }), 'changes.ips[0]: expected an IpAddress, got "10.0.0.2"'],
    [
      () => allowWith({ ranges: [{ subnet: IpPrefix.parse('10.0.0.0/24'), gateway: IpAddress.parse('fd00::1') }] }),
      'changes.ranges[0].gateway: fd00::1 is not of the family of 10.0.0.0/24',
    ],
    [
      () => allowWith({ routes: [{ dst: { address: IpAddress.parse('10.0.0.0'), prefixLen: 40 } }] }),
      'changes.routes[0].dst: expected an IpPrefix, got {"address":"10.0.0.0","prefixLen":40}',
    ],
  ];
  for (const [admit, why] of invalid) {
    assert.deepEqual(decided(admit), { kind: 'deny', reason: `policy returned an invalid decision: ${why}` });
  }
});

test('the base Policy must be extended', () => {
  assert.match(new TestHost().admit(new Policy(), invocation('a', {})).reason, /Policy does not implement admit/);
});

// The component adapters, run in node against fake WIT imports (test/wit):
// WIT values in and out as componentize-js passes them, errors as payloads.
import assert from 'node:assert/strict';
import { register } from 'node:module';
import test from 'node:test';
import { CniError, IpAddress, IpPrefix, RangeIpam, allow, allowWith, deny } from '../src/index.js';
import { MemoryStore } from '../src/testing.js';
import { emitted } from './wit/log.js';
import { state } from './wit/ipam-store.js';

register('./wit/hooks.js', import.meta.url);
const { ipamHandler } = await import('../component/ipam.js');
const { policyAdmission } = await import('../component/policy.js');
const { netpolRules } = await import('../component/netpol.js');

const v4 = (...val) => ({ tag: 'v4', val });
const v6 = (...val) => ({ tag: 'v6', val });
const witInv = (containerId, config, { ips = [], prevResult, args = [] } = {}) => ({
  containerId,
  ifname: 'eth0',
  netns: '/run/netns/x',
  args,
  networkName: 'test',
  config: JSON.stringify(config),
  requested: { ips, mac: [2, 0, 0, 0, 0, 1] },
  prevResult,
});
/** The payload an export threw. */
const payload = (f) => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof Error, 'thrown as an Error');
    return e.payload;
  }
  assert.fail('nothing was thrown');
};
const reset = () => {
  state.store = new MemoryStore();
  state.failure = undefined;
  emitted.length = 0;
};

class RoundRobin extends RangeIpam {
  pick(set, last, taken) {
    const r = set[0];
    return r.firstFree(last?.next() ?? r.start, taken) ?? r.firstFree(r.start, taken);
  }
}

const CONF = {
  ipam: {
    subnet: '10.9.0.0/29',
    ranges: [[{ subnet: 'fd00::/125' }]],
    routes: [{ dst: '0.0.0.0/0', gw: '10.9.0.1', priority: 7 }],
    dns: { nameservers: ['fd00::53'], search: ['svc'] },
  },
};

test('ipam: an ADD comes back in the WIT model', () => {
  reset();
  const handler = ipamHandler(new RoundRobin());
  const r = handler.add(witInv('c1', CONF, { ips: [v6(0xfd00, 0, 0, 0, 0, 0, 0, 5)] }));
  assert.deepEqual(r, {
    interfaces: [],
    ips: [
      { address: { address: v4(10, 9, 0, 2), prefixLen: 29 }, gateway: v4(10, 9, 0, 1), iface: undefined },
      {
        address: { address: v6(0xfd00, 0, 0, 0, 0, 0, 0, 5), prefixLen: 125 },
        gateway: v6(0xfd00, 0, 0, 0, 0, 0, 0, 1),
        iface: undefined,
      },
    ],
    routes: [
      {
        dst: { address: v4(0, 0, 0, 0), prefixLen: 0 },
        gw: v4(10, 9, 0, 1),
        mtu: undefined,
        advmss: undefined,
        priority: 7,
        table: undefined,
        scope: undefined,
      },
    ],
    dns: { nameservers: [v6(0xfd00, 0, 0, 0, 0, 0, 0, 0x53)], domain: undefined, search: ['svc'], options: [] },
  });
  assert.deepEqual(emitted, [{ level: 'info', msg: 'allocated 10.9.0.2/29,fd00::5/125 to c1' }]);
  // last-reserved comes back typed: round robin goes on after .2 and fd00::5.
  const next = handler.add(witInv('c2', CONF)).ips.map((i) => i.address.address.val.at(-1));
  assert.deepEqual(next, [3, 6]);
});

test('ipam: errors are thrown as cni-error payloads; DEL, CHECK, STATUS, GC', () => {
  reset();
  const handler = ipamHandler(new RoundRobin());
  handler.add(witInv('a', CONF));
  assert.deepEqual(
    payload(() => handler.add(witInv('a', CONF))),
    {
      code: 100,
      msg: '10.9.0.2 has been allocated to a/eth0, duplicate allocation is not allowed',
      details: '',
    },
  );
  assert.equal(payload(() => handler.add(witInv('b', { ipam: {} }))).code, 7);
  assert.equal(handler.check(witInv('a', CONF)), undefined);
  assert.equal(payload(() => handler.check(witInv('b', CONF))).code, 100);
  assert.equal(handler.status(witInv('', CONF)), undefined);
  handler.add(witInv('b', CONF));
  assert.equal(handler.gc(witInv('', CONF), [{ containerId: 'b', ifname: 'eth0' }]), undefined);
  assert.deepEqual(
    state.store.leases().map((l) => `${l.ip} ${l.containerId}`),
    ['10.9.0.3 b', 'fd00::3 b'],
  );
  assert.equal(handler.del(witInv('b', CONF)), undefined);
  assert.equal(handler.del(witInv('b', CONF)), undefined);
  assert.equal(state.store.leases().length, 0);
});

test('ipam: a store failure keeps its code; a bug is code 100 with its stack, never a raw exception', () => {
  reset();
  const handler = ipamHandler(new RoundRobin());
  state.failure = { code: 5, msg: 'reading the lease directory: EIO', details: '' };
  assert.deepEqual(
    payload(() => handler.add(witInv('a', CONF))),
    state.failure,
  );
  state.failure = undefined;
  const buggy = ipamHandler({ add: () => undefined.x, del() {}, check() {}, status() {}, gc() {} });
  const p = payload(() => buggy.add(witInv('a', CONF)));
  assert.equal(p.code, 100);
  assert.match(p.msg, /^internal error: TypeError/);
  assert.match(p.details, /at /);
  const bad = ipamHandler({ add: () => ({ ips: [{ address: '10.9.0.2/29' }] }) });
  assert.deepEqual(
    payload(() => bad.add(witInv('a', CONF))),
    {
      code: 100,
      msg: 'plugin returned an invalid result: ips[0].address: expected an IpPrefix, got "10.9.0.2/29"',
      details: '',
    },
  );
  const thrower = ipamHandler({
    add: () => {
      throw new CniError(11, 'try later', 'busy');
    },
  });
  assert.deepEqual(
    payload(() => thrower.add(witInv('a', CONF))),
    { code: 11, msg: 'try later', details: 'busy' },
  );
});

test('policy: decisions go out as WIT variants; the invocation comes in typed', () => {
  reset();
  let seen;
  const admission = policyAdmission({
    admit(inv, host) {
      seen = inv;
      host.log('debug', `admitting ${inv.containerId}`);
      if (inv.podNamespace() === 'blocked') return deny('no');
      if (inv.podNamespace() === 'pool') {
        return allowWith({
          ips: [IpAddress.parse('10.23.0.5')],
          ranges: [{ subnet: IpPrefix.parse('10.23.0.0/24'), rangeStart: IpAddress.parse('10.23.0.2') }],
          routes: [{ dst: IpPrefix.parse('fd00::/8') }],
        });
      }
      return allow();
    },
  });
  const ns = (value) => ({ args: [{ key: 'K8S_POD_NAMESPACE', value }] });
  const prevResult = {
    interfaces: [{ name: 'eth0', mac: [10, 88, 0, 0, 0, 1], mtu: 1500, sandbox: '/run/netns/x' }],
    ips: [{ address: { address: v4(10, 9, 0, 2), prefixLen: 24 }, gateway: undefined, iface: 0 }],
    routes: [],
    dns: undefined,
  };
  assert.deepEqual(admission.admit(witInv('a', {}, { ...ns('prod'), prevResult })), { tag: 'allow' });
  assert.deepEqual(
    [
      String(seen.requestedMac),
      seen.netns,
      String(seen.prevResult.ips[0].address),
      String(seen.prevResult.interfaces[0].mac),
    ],
    ['02:00:00:00:00:01', '/run/netns/x', '10.9.0.2/24', '0a:58:00:00:00:01'],
  );
  assert.deepEqual(admission.admit(witInv('a', {}, ns('blocked'))), { tag: 'deny', val: 'no' });
  assert.deepEqual(admission.admit(witInv('a', {}, ns('pool'))), {
    tag: 'allow-with',
    val: {
      ips: [v4(10, 23, 0, 5)],
      ranges: [
        {
          subnet: { address: v4(10, 23, 0, 0), prefixLen: 24 },
          rangeStart: v4(10, 23, 0, 2),
          rangeEnd: undefined,
          gateway: undefined,
        },
      ],
      routes: [
        {
          dst: { address: v6(0xfd00, 0, 0, 0, 0, 0, 0, 0), prefixLen: 8 },
          gw: undefined,
          mtu: undefined,
          advmss: undefined,
          priority: undefined,
          table: undefined,
          scope: undefined,
        },
      ],
    },
  });
  assert.equal(emitted.length, 3);
});

test('policy: a throw or an invalid decision denies, never traps', () => {
  reset();
  const throws = policyAdmission({
    admit: () => {
      throw new Error('boom');
    },
  });
  assert.deepEqual(throws.admit(witInv('a', {})), { tag: 'deny', val: 'internal error: Error: boom' });
  assert.equal(emitted[0].level, 'error');
  const invalid = policyAdmission({ admit: () => allowWith({ ips: ['10.0.0.1'] }) });
  assert.deepEqual(invalid.admit(witInv('a', {})), {
    tag: 'deny',
    val: 'policy returned an invalid decision: changes.ips[0]: expected an IpAddress, got "10.0.0.1"',
  });
});

test('netpol: pods come in typed, rules go out in the WIT model, errors as payloads', () => {
  reset();
  let seen;
  const networkPolicy = netpolRules({
    rules(policies, namespaces, local, remote) {
      seen = { policies, namespaces, local, remote };
      return [
        {
          namespace: 'x',
          name: 'a',
          egressIsolated: true,
          egress: [{ peers: [IpPrefix.parse('10.0.0.0/8')], ports: [{ protocol: 'udp', range: [53, 53] }] }, {}],
        },
      ];
    },
  });
  const pod = (name, ...ips) => ({ namespace: 'x', name, labels: [{ key: 'app', value: name }], ips });
  const rules = networkPolicy.rules(
    ['{"kind":"NetworkPolicy"}'],
    [{ name: 'x', labels: [{ key: 'team', value: 't' }] }],
    [pod('a', v4(10, 0, 0, 1))],
    [pod('b', v6(0xfd00, 0, 0, 0, 0, 0, 0, 2))],
  );
  assert.deepEqual(rules, [
    {
      namespace: 'x',
      name: 'a',
      ingressIsolated: false,
      egressIsolated: true,
      ingress: [],
      egress: [
        { peers: [{ address: v4(10, 0, 0, 0), prefixLen: 8 }], ports: [{ protocol: 'udp', range: [53, 53] }] },
        { peers: undefined, ports: [] },
      ],
    },
  ]);
  assert.deepEqual(seen.policies, [{ kind: 'NetworkPolicy' }]);
  assert.equal(seen.namespaces[0].labels.get('team'), 't');
  assert.deepEqual(
    [seen.local[0].labels.get('app'), String(seen.local[0].ips[0]), String(seen.remote[0].ips[0])],
    ['a', '10.0.0.1', 'fd00::2'],
  );
  assert.equal(payload(() => networkPolicy.rules(['{'], [], [], [])).code, 7);
  const bad = netpolRules({ rules: () => [{ namespace: 'x', name: 'a', ingress: [{ peers: ['10.0.0.0/8'] }] }] });
  assert.deepEqual(
    payload(() => bad.rules([], [], [], [])),
    {
      code: 100,
      msg: 'module returned invalid rules: rules[0].ingress[0].peers[0]: expected an IpPrefix, got "10.0.0.0/8"',
      details: '',
    },
  );
});

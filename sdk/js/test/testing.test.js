import assert from 'node:assert/strict';
import test from 'node:test';
import { CniError, IpAddress, IpPrefix, asCniError } from '../src/index.js';
import { MemoryStore, TestHost, invocation } from '../src/testing.js';

const ip = (s) => IpAddress.parse(s);

test('the store frees as the host does: the ID trimmed, and leases without an ifname', () => {
  const store = new MemoryStore();
  assert.ok(store.reserve(ip('10.0.0.2'), 'c1', 'eth0', 0));
  assert.ok(store.reserve(ip('10.0.0.3'), 'c1', '', 0));
  assert.ok(store.reserve(ip('10.0.0.4'), 'c1', 'net1', 1));
  assert.ok(!store.reserve(ip('10.0.0.2'), 'c2', 'eth0', 0), 'taken');
  assert.equal(String(store.lastReserved(0)), '10.0.0.3');
  assert.equal(String(store.lastReserved(1)), '10.0.0.4');
  assert.equal(store.lastReserved(2), undefined);
  assert.deepEqual(store.releaseOwner(' c1 ', 'eth0').map(String), ['10.0.0.2', '10.0.0.3']);
  assert.deepEqual(
    store.leases().map((l) => [String(l.ip), l.containerId, l.ifname]),
    [['10.0.0.4', 'c1', 'net1']],
  );
  assert.deepEqual(store.releaseOwner('c1', 'eth0'), []);
});

test('the store keeps the ID trimmed and lists IPv4 before IPv6, by value', () => {
  const store = new MemoryStore();
  for (const a of ['fd00::1', '10.0.0.10', '10.0.0.9']) store.reserve(ip(a), ' c1\n', 'eth0', 0);
  assert.deepEqual(
    store.leases().map((l) => `${l.ip} ${l.containerId}`),
    ['10.0.0.9 c1', '10.0.0.10 c1', 'fd00::1 c1'],
  );
});

test('calls the WIT would refuse are code 100, not a silent success', () => {
  const host = new TestHost();
  const calls = [
    ({ store }) => store.reserve('10.0.0.2', 'c1', 'eth0', 0),
    ({ store }) => store.reserve(ip('10.0.0.2'), 'c1', 'eth0', -1),
    ({ store }) => store.lastReserved(1.5),
    ({ store }) => store.releaseOwner('c1', undefined),
    ({ log }) => log('trace', 'x'),
    ({ log }) => log('info', 42),
  ];
  for (const call of calls) {
    const plugin = { add: (_inv, h) => call(h) };
    assert.throws(
      () => host.ipam(plugin).add(invocation('c1', {})),
      { code: 100, msg: /^invalid call to the host: / },
      String(call),
    );
  }
  assert.equal(host.store.leases().length, 0);
  assert.equal(host.logs.length, 0);
});

test('results the host would refuse are code 100', () => {
  const host = new TestHost();
  const add = (result) => host.ipam({ add: () => result }).add(invocation('c1', {}));
  const address = IpPrefix.parse('10.0.0.2/24');
  const refused = [
    [undefined, 'expected an object, got nothing'],
    [{ ips: [{ address: '10.0.0.2/24' }] }, 'ips[0].address: expected an IpPrefix, got "10.0.0.2/24"'],
    [
      { ips: [{ address: { address: ip('10.0.0.2'), prefixLen: 33 } }] },
      'ips[0].address: expected an IpPrefix, got {"address":"10.0.0.2","prefixLen":33}',
    ],
    [{ ips: [{ address, gateway: ip('fd00::1') }] }, 'ips[0].gateway: fd00::1 is not of the family of 10.0.0.2/24'],
    [{ ips: [{ address, iface: -1 }] }, 'ips[0].iface: expected an integer from 0 to 4294967295, got -1'],
    [
      { routes: [{ dst: IpPrefix.parse('0.0.0.0/0'), gw: ip('fd00::1') }] },
      'routes[0].gw: fd00::1 is not of the family of 0.0.0.0/0',
    ],
    [
      { routes: [{ dst: IpPrefix.parse('0.0.0.0/0'), scope: 'global' }] },
      'routes[0].scope: expected one of universe, site, link, host, got "global"',
    ],
    [{ dns: { nameservers: ['10.0.0.53'] } }, 'dns.nameservers[0]: expected an IpAddress, got "10.0.0.53"'],
    [
      { interfaces: [{ name: 'eth0', mac: '0a:58:00:00:00:01' }] },
      'interfaces[0].mac: expected a Mac, got "0a:58:00:00:00:01"',
    ],
    [{ ips: {} }, 'ips: expected a list, got {}'],
  ];
  for (const [result, why] of refused) {
    assert.throws(() => add(result), { code: 100, msg: `plugin returned an invalid result: ${why}` }, why);
  }
  assert.deepEqual(add({ ips: [{ address, gateway: null }] }), {
    interfaces: [],
    ips: [{ address, gateway: undefined, iface: undefined }],
    routes: [],
    dns: undefined,
  });
});

test('invocations gather requested addresses as the host does; a malformed one is code 7', () => {
  const config = {
    args: { cni: { ips: ['10.0.0.3', '10.0.0.2/24'], mac: '02:00:00:00:00:02' } },
    runtimeConfig: { ips: ['fd00::5/64'] },
  };
  const inv = invocation('c1', config, {
    args: [{ key: 'IP', value: '10.0.0.2,10.0.0.4,' }],
    ips: ['10.0.0.4', '10.0.0.6'],
    namespace: 'prod',
  });
  assert.deepEqual(inv.requestedIps.map(String), ['10.0.0.2', '10.0.0.4', '10.0.0.3', 'fd00::5', '10.0.0.6']);
  assert.equal(String(inv.requestedMac), '02:00:00:00:00:02');
  assert.deepEqual(
    [inv.arg('IP'), inv.arg('K8S_POD_NAMESPACE'), inv.podNamespace(), inv.arg('MAC')],
    ['10.0.0.2,10.0.0.4,', 'prod', 'prod', undefined],
  );
  assert.deepEqual([inv.ifname, inv.netns, inv.networkName], ['eth0', '/run/netns/test', 'test']);
  assert.deepEqual(inv.configJson(), config);
  for (const [cfg, options, msg] of [
    [{}, { args: [{ key: 'IP', value: '10.0.0.300' }] }, 'CNI_ARGS IP: "10.0.0.300" is not an IP address'],
    [{ runtimeConfig: { ips: ['nope'] } }, {}, 'runtimeConfig.ips: "nope" is not an IP address'],
    [{ args: { cni: { ips: '10.0.0.2' } } }, {}, 'args.cni.ips must be a list'],
    [{ runtimeConfig: { mac: 5 } }, {}, 'runtimeConfig.mac must be a string'],
    [{}, { mac: 'zz' }, 'options.mac: invalid MAC address "zz"'],
  ]) {
    assert.throws(() => invocation('c1', cfg, options), { code: 7, msg });
  }
  assert.throws(() => invocation('c1', 'not json').configJson(), { code: 7, msg: /^invalid plugin config: / });
});

test('asCniError keeps codes, reads a host error payload, and makes a bug code 100', () => {
  const own = new CniError(11, 'busy', 'lock');
  assert.equal(asCniError(own), own);
  const host = asCniError(Object.assign(new Error('x'), { payload: { code: 5, msg: 'disk', details: 'EIO' } }));
  assert.deepEqual([host.code, host.msg, host.details], [5, 'disk', 'EIO']);
  const bug = asCniError(new TypeError('x is not a function'));
  assert.deepEqual([bug.code, bug.msg], [100, 'internal error: TypeError: x is not a function']);
  assert.match(bug.details, /at /);
  assert.deepEqual(
    [asCniError('oops').msg, asCniError(undefined).msg],
    ['internal error: oops', 'internal error: undefined'],
  );
  assert.equal(String(own), 'CniError: busy (code 11)');
});

import assert from 'node:assert/strict';
import test from 'node:test';
import { IpAddress, RangeIpam } from '../src/index.js';
import { TestHost, invocation } from '../src/testing.js';

/** The simplest policy: the first free address. */
class FirstFree extends RangeIpam {
  pick(set, _last, taken) {
    for (const r of set) {
      const ip = r.firstFree(r.start, taken);
      if (ip) return ip;
    }
    return undefined;
  }
}

/** host-local's: on from the last one reserved, wrapping around. */
class RoundRobin extends RangeIpam {
  pick(set, last, taken) {
    const r = set[0];
    const after = last && r.contains(last) ? last.next() : r.start;
    return r.firstFree(after ?? r.start, taken) ?? r.firstFree(r.start, taken);
  }
}

const CONF = { ipam: { subnet: '10.9.0.0/29', routes: [{ dst: '0.0.0.0/0' }], dns: { nameservers: ['10.9.0.53'] } } };
const DUAL = { ipam: { subnet: '10.9.0.0/29', ranges: [[{ subnet: 'fd00::/125' }]] } };

const setup = (plugin = new FirstFree()) => {
  const host = new TestHost();
  return { host, ipam: host.ipam(plugin) };
};
const addresses = (r) => r.ips.map((i) => String(i.address));
const leased = (host) => host.store.leases().map((l) => `${l.ip} ${l.containerId}/${l.ifname}`);

test('ADD skips the gateway and returns the routes and dns', () => {
  const { host, ipam } = setup();
  const r = ipam.add(invocation('c1', CONF));
  assert.deepEqual(addresses(r), ['10.9.0.2/29']);
  assert.equal(String(r.ips[0].gateway), '10.9.0.1');
  assert.deepEqual(
    r.routes.map((x) => String(x.dst)),
    ['0.0.0.0/0'],
  );
  assert.deepEqual(r.dns.nameservers.map(String), ['10.9.0.53']);
  assert.deepEqual(leased(host), ['10.9.0.2 c1/eth0']);
  assert.deepEqual(host.logs, [{ level: 'info', msg: 'allocated 10.9.0.2/29 to c1' }]);
});

test('ADD takes one address per range set, IPv4 and IPv6', () => {
  const { ipam } = setup();
  assert.deepEqual(addresses(ipam.add(invocation('a', DUAL))), ['10.9.0.2/29', 'fd00::2/125']);
  assert.deepEqual(addresses(ipam.add(invocation('b', DUAL))), ['10.9.0.3/29', 'fd00::3/125']);
});

test('a second ADD for the same attachment is refused and leaves its lease alone', () => {
  const { host, ipam } = setup();
  ipam.add(invocation('c1', CONF));
  assert.throws(() => ipam.add(invocation('c1', CONF)), {
    code: 100,
    msg: '10.9.0.2 has been allocated to c1/eth0, duplicate allocation is not allowed',
  });
  assert.deepEqual(leased(host), ['10.9.0.2 c1/eth0']);
  ipam.add(invocation('c1', CONF, { ifname: 'net1' }));
  assert.equal(host.store.leases().length, 2, 'another ifname is another attachment');
});

test('requested IPs are honoured, one per matching set, or refused', () => {
  const { host, ipam } = setup();
  assert.deepEqual(addresses(ipam.add(invocation('c1', DUAL, { ips: ['fd00::5', '10.9.0.5/29'] }))), [
    '10.9.0.5/29',
    'fd00::5/125',
  ]);
  assert.throws(() => ipam.add(invocation('c2', CONF, { ips: ['10.9.0.5'] })), {
    code: 100,
    msg: 'requested IP address 10.9.0.5 is not available in range set 10.9.0.1-10.9.0.6',
  });
  assert.throws(() => ipam.add(invocation('c3', CONF, { ips: ['10.9.0.1'] })), {
    code: 100,
    msg: /10\.9\.0\.1 is not available/,
  });
  assert.throws(() => ipam.add(invocation('c4', CONF, { ips: ['10.9.0.3', '10.9.0.4', '10.99.0.1'] })), {
    code: 100,
    msg: 'requested IPs 10.9.0.4, 10.99.0.1 were not allocated',
  });
  assert.deepEqual(leased(host), ['10.9.0.5 c1/eth0', 'fd00::5 c1/eth0'], 'a refused ADD keeps nothing');
  const viaConfig = { ...CONF, runtimeConfig: { ips: ['10.9.0.6'] } };
  assert.deepEqual(
    addresses(ipam.add(invocation('c5', viaConfig))),
    ['10.9.0.6/29'],
    'runtimeConfig.ips, as the host gathers it',
  );
});

test('exhaustion is code 50 in ADD and STATUS, and a failed ADD frees what it took', () => {
  const { host, ipam } = setup();
  for (const id of ['c0', 'c1', 'c2', 'c3', 'c4']) ipam.add(invocation(id, CONF));
  assert.throws(() => ipam.add(invocation('c9', CONF)), {
    code: 50,
    msg: 'no IP addresses available in range set: 10.9.0.1-10.9.0.6',
  });
  assert.throws(() => ipam.status(invocation('', CONF)), {
    code: 50,
    msg: 'range set 10.9.0.1-10.9.0.6 is exhausted (5 leases)',
  });
  ipam.del(invocation('c0', CONF));
  ipam.status(invocation('', CONF));
  // The IPv4 set has one address left, the IPv6 one none: the IPv4 lease is given back.
  const full = {
    ipam: { subnet: '10.9.0.0/29', ranges: [[{ subnet: 'fd00::/126', rangeStart: 'fd00::2', rangeEnd: 'fd00::2' }]] },
  };
  ipam.add(invocation('v6', { ipam: { ranges: full.ipam.ranges } }));
  assert.throws(() => ipam.add(invocation('c9', full)), { code: 50, msg: /fd00::2-fd00::2/ });
  assert.ok(!leased(host).some((l) => l.includes('c9')), leased(host).join(' '));
});

test('an address taken since the leases were read is skipped', () => {
  const { host, ipam } = setup();
  const reserve = host.store.reserve.bind(host.store);
  let raced = false;
  host.store.reserve = (ip, id, ifname, set) => {
    if (!raced) {
      raced = true;
      reserve(ip, 'other', 'eth0', set); // Another ADD got there first.
    }
    return reserve(ip, id, ifname, set);
  };
  assert.deepEqual(addresses(ipam.add(invocation('c1', CONF))), ['10.9.0.3/29']);
  assert.deepEqual(leased(host), ['10.9.0.2 other/eth0', '10.9.0.3 c1/eth0']);
});

test('pick gets the last address reserved in its set', () => {
  const { ipam } = setup(new RoundRobin());
  const ids = ['a', 'b', 'c'];
  for (const id of ids) ipam.add(invocation(id, CONF));
  ipam.del(invocation('a', CONF));
  assert.deepEqual(addresses(ipam.add(invocation('d', CONF))), ['10.9.0.5/29'], 'round robin, not lowest free');
});

test('a pick that breaks the contract is code 100, and nothing is kept', () => {
  const picks = { gateway: '10.9.0.1', outside: '10.9.1.1', text: undefined };
  for (const [what, addr] of Object.entries(picks)) {
    const host = new TestHost();
    const ipam = host.ipam(Object.assign(new FirstFree(), { pick: () => (addr ? IpAddress.parse(addr) : '10.9.0.2') }));
    assert.throws(() => ipam.add(invocation('c1', CONF)), { code: 100, msg: /FirstFree\.pick returned/ }, what);
    assert.equal(host.store.leases().length, 0, what);
  }
  const host = new TestHost();
  const taken = host.ipam(Object.assign(new FirstFree(), { pick: () => IpAddress.parse('10.9.0.2') }));
  taken.add(invocation('c1', CONF));
  assert.throws(() => taken.add(invocation('c2', CONF)), { code: 100, msg: /which is taken/ }, 'would loop forever');
  assert.throws(() => new TestHost().ipam(new RangeIpam()).add(invocation('c1', CONF)), {
    code: 100,
    msg: /internal error: Error: RangeIpam does not implement pick/,
  });
});

test('DEL frees the attachment, is idempotent, and works with a bad config', () => {
  const { host, ipam } = setup();
  ipam.add(invocation('a', DUAL));
  ipam.add(invocation('b', DUAL));
  ipam.del(invocation('a', '{"ipam": {"subnet": "10.9.0.0/33"}}'));
  assert.deepEqual(host.logs.slice(-2), [
    { level: 'warn', msg: 'DEL with invalid config: invalid subnet "10.9.0.0/33"' },
    { level: 'info', msg: 'released 10.9.0.2,fd00::2 of a' },
  ]);
  ipam.del(invocation('a', DUAL));
  ipam.del(invocation('a', 'not json'));
  assert.deepEqual(leased(host), ['10.9.0.3 b/eth0', 'fd00::3 b/eth0']);
});

test('CHECK is code 100 without a lease; GC keeps only the valid attachments', () => {
  const { host, ipam } = setup();
  for (const id of ['a', 'b', 'c']) ipam.add(invocation(id, CONF));
  ipam.add(invocation('b', CONF, { ifname: 'net1' }));
  ipam.gc(invocation('', CONF), [{ containerId: 'b', ifname: 'eth0' }]);
  assert.deepEqual(leased(host), ['10.9.0.3 b/eth0']);
  assert.deepEqual(
    host.logs.slice(-3).map((l) => l.msg),
    ['gc released 10.9.0.2 of a/eth0', 'gc released 10.9.0.5 of b/net1', 'gc released 10.9.0.4 of c/eth0'],
  );
  ipam.check(invocation('b', CONF));
  assert.throws(() => ipam.check(invocation('c', CONF)), {
    code: 100,
    msg: 'host-local: failed to find address added by container c',
  });
  assert.throws(() => ipam.check(invocation('b', {})), { code: 7 });
});

test('a bad config is code 7 and takes nothing', () => {
  const { host, ipam } = setup();
  assert.throws(() => ipam.add(invocation('c1', '{"ipam": {"subnet": "10.9.0.0/33"}}')), { code: 7 });
  assert.throws(() => ipam.add(invocation('c1', '{"ipam": ')), { code: 7, msg: /^invalid plugin config: / });
  assert.throws(() => ipam.status(invocation('', { ipam: {} })), { code: 7, msg: 'no IP ranges specified' });
  assert.equal(host.store.leases().length, 0);
});

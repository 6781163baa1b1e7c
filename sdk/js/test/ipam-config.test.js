import assert from 'node:assert/strict';
import test from 'node:test';
import { IpAddress, IpSet, Range, parseIpamConfig } from '../src/index.js';

const ip = (s) => IpAddress.parse(s);
const sets = (ipam) => parseIpamConfig({ ipam }).sets;
const range = (r) =>
  Range.canonical({ ...r, rangeStart: ip(r.rangeStart), rangeEnd: ip(r.rangeEnd), gateway: ip(r.gateway) });
const shown = (r) => [r.subnet, r.start, r.end, r.gateway].map(String);

test('defaults match the reference host-local, IPv4 and IPv6', () => {
  const [[v4]] = sets({ subnet: '10.1.2.0/24' });
  assert.deepEqual(shown(v4), ['10.1.2.0/24', '10.1.2.1', '10.1.2.254', '10.1.2.1']);
  assert.equal(v4.capacity(), 253n);
  const [[v6]] = sets({ ranges: [[{ subnet: 'fd00::/120' }]] });
  assert.deepEqual(shown(v6), ['fd00::/120', 'fd00::1', 'fd00::ff', 'fd00::1'], 'no broadcast in IPv6');
  assert.equal(v6.capacity(), 254n);
  const [[wide]] = sets({ ranges: [[{ subnet: 'fd00::/64' }]] });
  assert.equal(wide.capacity(), 2n ** 64n - 2n, 'beyond 2^53: BigInt arithmetic');
  const [[host]] = sets({ subnet: '10.1.2.77/24' });
  assert.equal(String(host.subnet), '10.1.2.0/24', 'host bits cleared');
});

test('legacy fields come first, then ranges: dual stack', () => {
  const s = sets({
    subnet: '10.1.0.0/16',
    rangeStart: '10.1.0.10',
    rangeEnd: '10.1.0.20',
    gateway: '10.1.0.254',
    ranges: [[{ subnet: 'fd00::/64' }], [{ subnet: '10.2.0.0/24' }, { subnet: '10.3.0.0/24' }]],
  });
  assert.deepEqual(
    s.map((set) => set.map(String)),
    [['10.1.0.10-10.1.0.20'], ['fd00::1-fd00::ffff:ffff:ffff:ffff'], ['10.2.0.1-10.2.0.254', '10.3.0.1-10.3.0.254']],
  );
  assert.equal(s[0][0].capacity(), 11n, 'the gateway is outside the span');
});

test('routes and dns are typed', () => {
  const c = parseIpamConfig({
    ipam: {
      subnet: '10.1.0.0/24',
      routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.254', priority: 5 }, { dst: 'fd00::/8' }],
      dns: { nameservers: ['10.1.0.53', 'fd00::53'], domain: 'cluster.local', search: ['svc'] },
    },
  });
  assert.deepEqual(
    c.routes.map((r) => [String(r.dst), r.gw && String(r.gw), r.priority]),
    [
      ['0.0.0.0/0', '10.1.0.254', 5],
      ['fd00::/8', undefined, undefined],
    ],
  );
  assert.deepEqual(c.dns.nameservers.map(String), ['10.1.0.53', 'fd00::53']);
  assert.deepEqual([c.dns.domain, c.dns.search, c.dns.options], ['cluster.local', ['svc'], []]);
  assert.equal(parseIpamConfig({ ipam: { subnet: '10.1.0.0/24' } }).dns, undefined);
});

test('bad configs are code 7 with the reference messages', () => {
  const cases = [
    [{}, 'no IP ranges specified'],
    [{ subnet: '10.1.0.0/33' }, 'invalid subnet "10.1.0.0/33"'],
    [{ subnet: 'nonsense' }, 'invalid subnet "nonsense"'],
    [{ subnet: '10.1.0.0/31' }, 'network 10.1.0.0/31 too small to allocate from'],
    [{ subnet: '10.1.0.7/32' }, 'network 10.1.0.7/32 too small to allocate from'],
    [{ subnet: '10.1.0.0/24', gateway: '10.2.0.1' }, 'gateway 10.2.0.1 not in network 10.1.0.0/24'],
    [{ subnet: '10.1.0.0/24', rangeStart: 'fd00::1' }, 'rangeStart fd00::1 not in network 10.1.0.0/24'],
    [{ subnet: '10.1.0.0/24', rangeEnd: '10.1.1.0' }, 'rangeEnd 10.1.1.0 not in network 10.1.0.0/24'],
    [
      { subnet: '10.1.0.0/24', rangeStart: '10.1.0.9', rangeEnd: '10.1.0.2' },
      'rangeStart 10.1.0.9 is after rangeEnd 10.1.0.2',
    ],
    [{ ranges: [[{ subnet: '10.1.0.0/24' }, { subnet: 'fd00::/64' }]] }, 'a range set mixes IPv4 and IPv6'],
    [
      { ranges: [[{ subnet: '10.1.0.0/24' }, { subnet: '10.1.0.0/25' }]] },
      'ranges 10.1.0.1-10.1.0.254 and 10.1.0.1-10.1.0.126 overlap',
    ],
    [{ ranges: [[]] }, 'empty range set'],
    [{ ranges: '10.1.0.0/24' }, 'invalid ipam config: ranges: expected a list, got "10.1.0.0/24"'],
    [{ ranges: ['10.1.0.0/24'] }, 'invalid ipam config: ranges[0]: expected a list, got "10.1.0.0/24"'],
    [
      { ranges: [[{ rangeStart: '10.1.0.2' }]] },
      'invalid ipam config: ranges[0][0].subnet: expected a string, got nothing',
    ],
    [
      { subnet: '10.1.0.0/24', rangeStart: '10.1.0.x' },
      'invalid ipam config: rangeStart: invalid IP address "10.1.0.x"',
    ],
    [
      { subnet: '10.1.0.0/24', routes: [{ gw: '10.1.0.1' }] },
      'invalid ipam config: routes[0].dst: invalid prefix nothing',
    ],
    [
      { subnet: '10.1.0.0/24', routes: [{ dst: '0.0.0.0/0', priority: -1 }] },
      'invalid ipam config: routes[0].priority: expected a u32, got -1',
    ],
    [
      { subnet: '10.1.0.0/24', dns: { nameservers: ['dns.example'] } },
      'invalid ipam config: dns.nameservers[0]: invalid IP address "dns.example"',
    ],
    [null, 'invalid ipam config: ipam: expected an object, got null'],
  ];
  for (const [ipam, msg] of cases) {
    assert.throws(() => parseIpamConfig({ ipam }), { code: 7, msg }, JSON.stringify(ipam));
  }
  assert.throws(() => parseIpamConfig({}), { code: 7, msg: 'missing "ipam" section' });
  assert.throws(() => parseIpamConfig([1]), { code: 7, msg: 'missing "ipam" section' });
});

test('an IPv6 /128 or /127 has nothing to hand out, as in the reference', () => {
  assert.throws(() => sets({ subnet: 'fd00::5/128' }), {
    code: 7,
    msg: 'rangeStart fd00::6 is after rangeEnd fd00::5',
  });
  const [[r]] = sets({ subnet: 'fd00::4/127' });
  assert.equal(r.capacity(), 0n, 'its one address is the gateway');
});

test('firstFree skips the gateway and taken addresses and stops at the end', () => {
  const r = range({ subnet: '10.0.0.0/29' });
  const taken = new IpSet([ip('10.0.0.2'), ip('10.0.0.3')]);
  assert.equal(String(r.firstFree(r.start, taken)), '10.0.0.4');
  assert.equal(String(r.firstFree(ip('10.0.0.5'), taken)), '10.0.0.5');
  assert.equal(r.firstFree(ip('10.0.0.7'), taken), undefined, 'the broadcast is outside the range');
  assert.equal(r.firstFree(ip('10.0.0.0'), taken), undefined, 'from outside the range');
  assert.ok(r.contains(ip('10.0.0.6')) && !r.contains(ip('10.0.0.7')) && !r.contains(ip('::a00:6')));
  const v6 = range({ subnet: 'fd00::/126', gateway: 'fd00::3' });
  assert.equal(String(v6.firstFree(v6.start, new IpSet())), 'fd00::1');
  assert.equal(v6.firstFree(ip('fd00::3'), new IpSet()), undefined, 'only the gateway is left');
  assert.equal(v6.capacity(), 2n);
});

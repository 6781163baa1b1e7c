import assert from 'node:assert/strict';
import test from 'node:test';
import { IpAddress, IpPrefix, IpSet, Mac, hostPrefix } from '../src/index.js';

const ip = (s) => IpAddress.parse(s) ?? assert.fail(`${s} did not parse`);
const net = (s) => IpPrefix.parse(s) ?? assert.fail(`${s} did not parse`);

test('addresses print as Rust std::net prints them', () => {
  const cases = {
    '10.1.2.3': '10.1.2.3',
    '0.0.0.0': '0.0.0.0',
    '::': '::',
    'FD00::1': 'fd00::1',
    '2001:db8:0:0:1:0:0:1': '2001:db8::1:0:0:1',
    'fe80:0:0:0:1:0:0:0': 'fe80::1:0:0:0',
    '1:0:2:3:4:5:6:7': '1:0:2:3:4:5:6:7',
    '::ffff:10.1.2.3': '::ffff:10.1.2.3',
    '1:2:3:4:5:6:10.0.0.1': '1:2:3:4:5:6:a00:1',
    '0:0:1::': '0:0:1::',
  };
  for (const [text, shown] of Object.entries(cases)) assert.equal(String(ip(text)), shown, text);
});

test('malformed addresses do not parse', () => {
  for (const bad of [
    '',
    '10.0.0',
    '10.0.0.256',
    '010.0.0.1',
    '10.0.0.1 ',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7::8',
    '12345::',
    '::1.2.3.4:5',
    '1.2.3.4::',
    'fe80::1%eth0',
    '[::1]',
    42,
  ]) {
    assert.equal(IpAddress.parse(bad), undefined, String(bad));
  }
});

test('next and prev cross octets and groups and stop at the ends', () => {
  assert.equal(String(ip('10.0.0.255').next()), '10.0.1.0');
  assert.equal(String(ip('10.0.1.0').prev()), '10.0.0.255');
  assert.equal(ip('255.255.255.255').next(), undefined);
  assert.equal(ip('0.0.0.0').prev(), undefined);
  assert.equal(String(ip('fd00::ffff').next()), 'fd00::1:0');
  assert.equal(ip('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff').next(), undefined);
});

test('addresses compare by value, IPv4 before IPv6, and convert to and from their parts', () => {
  assert.equal(ip('10.0.0.2').compare(ip('10.0.0.10')), -1);
  assert.equal(ip('fd00::').compare(ip('255.255.255.255')), 1);
  assert.ok(ip('fd00::1').equals(ip('fd00:0::1')));
  assert.ok(!ip('0.0.0.1').equals(ip('::1')), 'same value, other family');
  assert.deepEqual(ip('10.1.2.3').octets(), [10, 1, 2, 3]);
  assert.deepEqual(ip('fd00::1').groups(), [0xfd00, 0, 0, 0, 0, 0, 0, 1]);
  assert.ok(IpAddress.fromGroups([0xfd00, 0, 0, 0, 0, 0, 0, 1]).equals(ip('fd00::1')));
  assert.throws(() => IpAddress.fromOctets([10, 0, 0, 256]), RangeError);
  assert.throws(() => ip('10.0.0.1').groups(), TypeError);
});

test('prefixes: network, first, last, contains; a length beyond the family is refused', () => {
  const p = net('10.22.0.5/16');
  assert.equal(String(p), '10.22.0.5/16', 'host bits kept');
  assert.equal(String(p.network()), '10.22.0.0/16');
  assert.equal(String(p.last), '10.22.255.255');
  assert.ok(p.contains(ip('10.22.200.1')) && !p.contains(ip('10.23.0.0')));
  assert.ok(!net('0.0.0.0/0').contains(ip('::1')), 'another family');
  assert.equal(String(net('fd00::1:5/112').network()), 'fd00::1:0/112');
  assert.equal(String(net('fd00::/64').last), 'fd00::ffff:ffff:ffff:ffff');
  assert.equal(IpPrefix.parse('10.0.0.0/33'), undefined);
  assert.equal(IpPrefix.parse('fd00::/129'), undefined);
  assert.equal(IpPrefix.parse('10.0.0.0'), undefined);
  assert.throws(() => new IpPrefix(ip('10.0.0.0'), 33), /too long/);
  assert.equal(String(hostPrefix(ip('fd00::7'))), 'fd00::7/128');
  assert.equal(String(hostPrefix(ip('10.0.0.7'))), '10.0.0.7/32');
});

test('an IpSet holds addresses by value', () => {
  const s = new IpSet([ip('10.0.0.1'), ip('fd00::1')]);
  assert.ok(s.has(ip('10.0.0.1')) && s.has(ip('fd00:0:0::1')) && !s.has(ip('0.0.0.1')));
  s.add(ip('10.0.0.1'));
  assert.equal(s.size, 2);
  assert.deepEqual([...s].map(String), ['10.0.0.1', 'fd00::1']);
});

test('MACs parse and print as the host does', () => {
  assert.equal(String(Mac.parse('0A:1b:2c:3d:4e:5f')), '0a:1b:2c:3d:4e:5f');
  for (const bad of ['0a:1b:2c:3d:4e', '0a-1b-2c-3d-4e-5f', '0a:1b:2c:3d:4e:5f:00', 'zz:1b:2c:3d:4e:5f']) {
    assert.equal(Mac.parse(bad), undefined, bad);
  }
});

import assert from 'node:assert/strict';
import test from 'node:test';
import { IpAddress, IpPrefix, NetworkPolicy, hostPrefix, selectorMatches } from '../src/index.js';
import { TestHost, namespace, pod } from '../src/testing.js';

const labels = (o) => new Map(Object.entries(o));

test('selectors: matchLabels and every matchExpressions operator; empty matches all', () => {
  const web = labels({ app: 'web', tier: 'front' });
  const cases = [
    [{}, true],
    [undefined, true],
    [{ matchLabels: { app: 'web' } }, true],
    [{ matchLabels: { app: 'web', tier: 'back' } }, false],
    [{ matchExpressions: [{ key: 'app', operator: 'In', values: ['db', 'web'] }] }, true],
    [{ matchExpressions: [{ key: 'app', operator: 'In', values: ['db'] }] }, false],
    [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }, false],
    [{ matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }, false],
    [{ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, true],
    [{ matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, true],
    [{ matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, false],
    [{ matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, true],
    [{ matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, false],
    [{ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['front'] }] }, true],
  ];
  for (const [selector, want] of cases) assert.equal(selectorMatches(selector, web), want, JSON.stringify(selector));
  assert.ok(selectorMatches({}, new Map()));
  assert.throws(() => selectorMatches({ matchExpressions: [{ key: 'a', operator: 'Gt' }] }, web), {
    code: 7,
    msg: 'unknown matchExpressions operator "Gt"',
  });
});

/** Pods labelled isolated=true take ingress only from their own namespace's pods, on TCP 80. */
class SameNamespace extends NetworkPolicy {
  rules(_policies, _namespaces, local, remote, host) {
    const all = [...local, ...remote];
    return local.map((p) => {
      const isolated = p.labels.get('isolated') === 'true';
      if (isolated) host.log('debug', `${p.namespace}/${p.name} takes its namespace only`);
      const peers = all.filter((q) => q.namespace === p.namespace).flatMap((q) => q.ips.map(hostPrefix));
      return {
        namespace: p.namespace,
        name: p.name,
        ingressIsolated: isolated,
        ingress: isolated ? [{ peers, ports: [{ protocol: 'tcp', range: [80, 80] }] }] : [],
      };
    });
  }
}

test('a netpol module gets typed pods and its rules come back normalized', () => {
  const host = new TestHost();
  const local = [
    pod('x', 'a', { labels: { isolated: 'true' }, ips: ['10.0.0.1', 'fd00::1'] }),
    pod('x', 'b', { ips: ['10.0.0.2'] }),
  ];
  const remote = [pod('x', 'c', { ips: ['10.0.0.3'] }), pod('y', 'd', { ips: ['10.0.0.4'] })];
  const rules = host.rules(new SameNamespace(), { namespaces: [namespace('x', { team: 'a' })], local, remote });
  assert.deepEqual(
    rules.map((r) => [r.name, r.ingressIsolated, r.egressIsolated, r.egress.length]),
    [
      ['a', true, false, 0],
      ['b', false, false, 0],
    ],
  );
  assert.deepEqual(rules[0].ingress[0].peers.map(String), ['10.0.0.1/32', 'fd00::1/128', '10.0.0.2/32', '10.0.0.3/32']);
  assert.deepEqual(rules[0].ingress[0].ports, [{ protocol: 'tcp', range: [80, 80] }]);
  assert.deepEqual(host.logs, [{ level: 'debug', msg: 'x/a takes its namespace only' }]);
});

test('the policies reach the module as parsed JSON; a rule for a pod that is not local is dropped', () => {
  let seen;
  const module = {
    rules(policies) {
      seen = policies;
      return [
        { namespace: 'x', name: 'a' },
        { namespace: 'y', name: 'gone' },
      ];
    },
  };
  const policy = {
    kind: 'NetworkPolicy',
    metadata: { name: 'p', namespace: 'x' },
    spec: { podSelector: {} },
    skipped: undefined,
  };
  const rules = new TestHost().rules(module, { policies: [policy], local: [pod('x', 'a')] });
  assert.deepEqual(seen, [
    { kind: 'NetworkPolicy', metadata: { name: 'p', namespace: 'x' }, spec: { podSelector: {} } },
  ]);
  assert.deepEqual(rules, [
    { namespace: 'x', name: 'a', ingressIsolated: false, egressIsolated: false, ingress: [], egress: [] },
  ]);
});

test('rules the WIT cannot carry are code 100; a throw is its CniError', () => {
  const local = [pod('x', 'a')];
  const run = (rules) => new TestHost().rules({ rules }, { local });
  const base = { namespace: 'x', name: 'a' };
  const invalid = [
    [() => undefined, 'rules: expected a list'],
    [() => [{ name: 'a' }], 'rules[0].namespace: expected a string, got nothing'],
    [() => [{ ...base, ingressIsolated: 'yes' }], 'rules[0].ingressIsolated: expected a boolean, got "yes"'],
    [
      () => [{ ...base, ingress: [{ peers: ['10.0.0.0/24'] }] }],
      'rules[0].ingress[0].peers[0]: expected an IpPrefix, got "10.0.0.0/24"',
    ],
    [
      () => [{ ...base, ingress: [{ peers: [{ address: IpAddress.parse('10.0.0.0'), prefixLen: 40 }] }] }],
      'rules[0].ingress[0].peers[0]: expected an IpPrefix, got {"address":"10.0.0.0","prefixLen":40}',
    ],
    [
      () => [{ ...base, egress: [{ ports: [{ protocol: 'icmp' }] }] }],
      'rules[0].egress[0].ports[0].protocol: expected one of tcp, udp, sctp, got "icmp"',
    ],
    [
      () => [{ ...base, egress: [{ ports: [{ protocol: 'udp', range: [53, 70000] }] }] }],
      'rules[0].egress[0].ports[0].range[1]: expected an integer from 0 to 65535, got 70000',
    ],
    [
      () => [{ ...base, egress: [{ ports: [{ protocol: 'udp', range: [60, 53] }] }] }],
      'rules[0].egress[0].ports[0].range: expected [first, last], got [60,53]',
    ],
  ];
  for (const [rules, why] of invalid) {
    assert.throws(() => run(rules), { code: 100, msg: `module returned invalid rules: ${why}` });
  }
  assert.throws(() => run(() => selectorMatches({ matchExpressions: [{ operator: 'Gt' }] }, new Map())), { code: 7 });
  assert.throws(() => run(() => [][0].x), { code: 100, msg: /^internal error: TypeError/ });
  assert.deepEqual(
    run(() => [{ ...base, ingress: [{ peers: [IpPrefix.parse('10.0.0.0/24')] }] }])[0].ingress[0].ports,
    [],
  );
});

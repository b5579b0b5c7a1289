// Response rules (lib/policies/response_rules.ts): matching and actions against the core's own
// passes, the default rule set, bad rules, and a real receiver whose 421 suspends the pair for the
// rule's duration and whose 5xx bounces the rest of the domain's queue.
import { describe, expect, test, vi } from 'vitest';

import {
  type ActiveRule,
  type Bounce,
  DEFAULT_RESPONSE_RULES,
  MailQueueCore,
  MemoryStore,
  type ResponseRule,
  responseRules,
  SmtpTransport,
} from '../../lib/index.js';
import { submitMany, waitFor } from '../support/harness.js';
import { startServer } from '../support/smtp_servers.js';
import { tornDownAfterEach } from '../support/teardown.js';

const T0 = 1_700_000_000_000;
const { cores, servers } = tornDownAfterEach();

function queued(domains: string[]): { core: MailQueueCore; clock: { t: number } } {
  const clock = { t: T0 };
  const core = new MailQueueCore({
    bindings: ['a', 'b'],
    config: { global: { maxOutboundConnections: 10, connectionAllocationAggressiveness: 1 } },
    clock: () => clock.t,
  });
  cores.push(core);
  let id = 1;
  for (const d of domains)
    for (const b of ['a', 'b']) for (let i = 0; i < 100; i++) core.enqueue({ id: id++, domain: d, binding: b });
  return { core, clock };
}

/** Connections the next pass opens, by "domain/binding" (released again at once). */
function opens(core: MailQueueCore): Record<string, number> {
  const out: Record<string, number> = {};
  for (const g of core.maintain().grants) {
    const k = `${g.domain}/${g.binding}`;
    out[k] = (out[k] ?? 0) + 1;
    core.releaseConnection(g.connectionId);
  }
  return out;
}

function deferred(core: MailQueueCore, domain: string, binding: string, code: number, response: string): void {
  core.emit('deferred', { id: 1, domain, binding, nextAttempt: T0, code, response });
}

describe('matching and actions', () => {
  const rules: ResponseRule[] = [
    { name: 'busy', match: { code: 421, enhanced: '4.7.' }, action: { kind: 'suspend' }, durationMs: 60_000 },
    {
      name: 'slow-down',
      match: { text: 'slow down', domain: '*.example' },
      action: { kind: 'maxConnections', value: 2 },
      durationMs: 30_000,
    },
    {
      name: 'trickle',
      match: { code: [450, 451], text: '^4\\.7\\.1 rate' },
      action: { kind: 'throttle', connections: 3, perMs: 10_000 },
      durationMs: 60_000,
    },
  ];

  test('suspend: a matching reply pauses that pair only (core.pause), until the duration ends', () => {
    // The pause lifts on a timer: the test moves the timers with its clock.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { core, clock } = queued(['x.test', 'y.test']);
      const advance = (ms: number) => {
        clock.t += ms;
        vi.advanceTimersByTime(ms);
      };
      const seen: ActiveRule[] = [];
      const r = responseRules(core, rules, { onMatch: (a) => seen.push(a) });
      expect(opens(core)).toEqual({ 'x.test/a': 10, 'x.test/b': 10, 'y.test/a': 10, 'y.test/b': 10 });
      deferred(core, 'x.test', 'a', 421, '421-4.7.0 Try again later, closing connection.');
      deferred(core, 'x.test', 'a', 450, '4.7.0 not a 421'); // the code does not match
      expect(seen.map((a) => [a.rule, a.domain, a.binding, a.until])).toEqual([['busy', 'x.test', 'a', T0 + 60_000]]);
      expect(core.domain('x.test').suspended('a')).toBe(true);
      expect(core.domain('x.test').suspended('b')).toBe(false);
      expect(opens(core)).toEqual({ 'x.test/b': 10, 'y.test/a': 10, 'y.test/b': 10 });
      advance(30_000);
      deferred(core, 'x.test', 'a', 421, '421 4.7.28 again'); // extends it
      expect(r.active()).toEqual([
        { rule: 'busy', domain: 'x.test', binding: 'a', action: { kind: 'suspend' }, until: T0 + 90_000, matches: 2 },
      ]);
      advance(59_999);
      expect(opens(core)['x.test/a']).toBeUndefined();
      advance(1);
      expect(core.domain('x.test').suspended('a')).toBe(false);
      expect(opens(core)['x.test/a']).toBe(10);
      expect(r.active()).toEqual([]);
      // An operator's suspension is its own: the rule's pause ending does not lift it.
      core.suspend('y.test', 'a');
      deferred(core, 'y.test', 'a', 421, '421 4.7.0 busy');
      advance(60_000);
      expect(core.domain('y.test').suspended('a')).toBe(true);
      // detach() lifts what the rules hold.
      deferred(core, 'x.test', 'b', 421, '421 4.7.0 busy');
      expect(core.domain('x.test').suspended('b')).toBe(true);
      r.detach();
      expect(core.domain('x.test').suspended('b')).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  test('maxConnections: a cap on the pair while the rule holds; a domain pattern limits where it applies', () => {
    const { core, clock } = queued(['mx.example', 'other.test']);
    responseRules(core, rules);
    deferred(core, 'other.test', 'a', 451, 'please slow down');
    deferred(core, 'mx.example', 'b', 451, 'please SLOW DOWN');
    expect(opens(core)).toEqual({ 'mx.example/a': 10, 'mx.example/b': 2, 'other.test/a': 10, 'other.test/b': 10 });
    clock.t += 30_000;
    expect(opens(core)['mx.example/b']).toBe(10);
  });

  test('throttle: at most `connections` new connections in any `perMs`', () => {
    const { core, clock } = queued(['x.test']);
    responseRules(core, rules);
    deferred(core, 'x.test', 'a', 451, '4.7.1 rate limited');
    const held: number[] = [];
    const take = () => {
      const r = core.maintain();
      let n = 0;
      for (const g of r.grants) if (g.binding === 'a') n++;
      // Connections stay open: the throttle counts new ones.
      for (const g of r.grants) if (g.binding === 'a') held.push(g.connectionId);
      for (const g of r.grants) if (g.binding !== 'a') core.releaseConnection(g.connectionId);
      return n;
    };
    expect(take()).toBe(3);
    clock.t += 5_000;
    expect(take()).toBe(0);
    for (const id of held.splice(0)) core.releaseConnection(id);
    clock.t += 4_999;
    expect(take()).toBe(0); // still within 10 s of the first three
    clock.t += 1;
    expect(take()).toBe(3);
  });

  test('the default rule set is valid and recognises the providers it is written for', () => {
    const { core } = queued(['gmail.com', 'yahoo.com', 'outlook.com', 'small.test']);
    const r = responseRules(core, DEFAULT_RESPONSE_RULES);
    deferred(
      core,
      'gmail.com',
      'a',
      421,
      '421-4.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail originating from your IP address.',
    );
    deferred(
      core,
      'yahoo.com',
      'a',
      421,
      '421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints',
    );
    deferred(
      core,
      'outlook.com',
      'b',
      451,
      '451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation.',
    );
    deferred(core, 'small.test', 'a', 421, '421 4.7.0 Too many concurrent connections from your host');
    deferred(core, 'small.test', 'b', 450, '450 4.2.1 mailbox busy'); // no rule
    expect(r.active().map((a) => `${a.rule} ${a.domain}/${a.binding}`)).toEqual([
      'gmail-unusual-rate gmail.com/a',
      'yahoo-temporarily-deferred yahoo.com/a',
      'microsoft-rate-limited outlook.com/b',
      'too-many-connections small.test/a',
    ]);
    const o = opens(core);
    expect(o['gmail.com/a']).toBe(1);
    expect(o['yahoo.com/a']).toBeUndefined();
    expect(o['outlook.com/b']).toBe(2);
    expect(o['small.test/a']).toBe(1);
    expect(o['small.test/b']).toBe(10);
  });

  test('bad rules are refused whole, naming the rule and the field', () => {
    const { core } = queued(['x.test']);
    const bad: [unknown, RegExp][] = [
      ['nope', /rules must be an array/],
      [[null], /rules\[0\] must be an object/],
      [[{ name: '', match: {}, action: { kind: 'suspend' }, durationMs: 1 }], /rules\[0\]\.name/],
      [[{ name: 'a', match: { code: 99 }, action: { kind: 'suspend' }, durationMs: 1 }], /rules\[0\]\.match\.code/],
      [[{ name: 'a', match: { enhanced: '9.9' }, action: { kind: 'suspend' }, durationMs: 1 }], /match\.enhanced/],
      [
        [{ name: 'a', match: { text: '(' }, action: { kind: 'suspend' }, durationMs: 1 }],
        /match\.text is not a regular/,
      ],
      [[{ name: 'a', match: { mx: 'x' }, action: { kind: 'suspend' }, durationMs: 1 }], /unknown key "mx"/],
      [[{ name: 'a', match: {}, action: { kind: 'pause' }, durationMs: 1 }], /action\.kind must be/],
      [[{ name: 'a', match: {}, action: { kind: 'maxConnections', value: -1 }, durationMs: 1 }], /action\.value/],
      [[{ name: 'a', match: {}, action: { kind: 'throttle', connections: 1, perMs: 0 }, durationMs: 1 }], /perMs/],
      [[{ name: 'a', match: {}, action: { kind: 'suspend' } }], /rules\[0\]\.durationMs/],
      [
        [
          { name: 'ok', match: {}, action: { kind: 'bounceQueue' } },
          { name: 'a', match: {}, action: { kind: 'suspend' }, durationMs: Infinity },
        ],
        /rules\[1\]\.durationMs/,
      ],
    ];
    for (const [rules, message] of bad) expect(() => responseRules(core, rules as never)).toThrow(message);
    expect(() => responseRules(core, [], { clock: Date.now } as never)).toThrow(/unknown option "clock"/);
    // Nothing was attached: a matching reply changes nothing.
    deferred(core, 'x.test', 'a', 421, 'anything');
    expect(opens(core)['x.test/a']).toBe(10);
  });
});

describe('against a real receiver', () => {
  test('a 421 that matches suspends the pair for the rule duration; then the rest is delivered', async () => {
    let refuse = true;
    const srv = await startServer({
      behavior: {
        data: () =>
          refuse
            ? {
                code: 421,
                message: '4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected volume',
              }
            : 'accept',
      },
    });
    servers.push(srv);
    const core = new MailQueueCore({
      bindings: ['a'],
      config: {
        global: {
          maxOutboundConnections: 4,
          retryInterval: 0.05,
          maxRetryInterval: 0.05,
          idleTimeout: 0.1,
          delayedQueueScanInterval: 0.05,
          maxRetries: 1000,
        },
      },
      transport: new SmtpTransport({ routes: { 'y.test': [{ host: srv.host, port: srv.port }] } }),
      store: new MemoryStore(),
    });
    cores.push(core);
    const PAUSE_MS = 1500;
    let matchedAt = 0;
    responseRules(
      core,
      [{ name: 'tss04', match: { code: 421, text: '\\[TSS04\\]' }, action: { kind: 'suspend' }, durationMs: PAUSE_MS }],
      { onMatch: () => (matchedAt ||= Date.now()) },
    );
    const ids = Array.from({ length: 40 }, (_, i) => i + 1);
    await submitMany(core, ids, () => 'y.test');
    core.start();
    await waitFor(() => matchedAt > 0, 'the rule matched');
    refuse = false;
    await waitFor(() => ids.every((id) => srv.acceptedCount(id) >= 1), 'every message delivered', 30_000);
    // Connections opened while the rule held, by the configured duration from the match as the
    // rule's listener saw it (after the ones the pass had already granted when the 421 came,
    // which take up to a connection's setup): none. Then delivery came back.
    const end = matchedAt + PAUSE_MS;
    const during = srv.connections.filter((c) => c.openedAt > matchedAt + 200 && c.openedAt < end - 50);
    expect(during.map((c) => c.openedAt - matchedAt)).toEqual([]);
    expect(srv.connections.some((c) => c.openedAt >= end - 50)).toBe(true);
    expect(srv.duplicates()).toEqual([]);
  }, 60_000);

  test('a 5xx that matches a bounceQueue rule bounces the rest of the domain at once', async () => {
    const srv = await startServer({
      behavior: { data: () => ({ code: 550, message: '5.7.1 Service unavailable; domain suspended' }) },
    });
    servers.push(srv);
    const core = new MailQueueCore({
      bindings: ['a'],
      config: { global: { maxOutboundConnections: 1, maxDeliveriesPerConnection: 1 } },
      transport: new SmtpTransport({ routes: { 'z.test': [{ host: srv.host, port: srv.port }] } }),
      store: new MemoryStore(),
    });
    cores.push(core);
    responseRules(core, [
      { name: 'gone', match: { code: 550, text: 'domain suspended' }, action: { kind: 'bounceQueue' } },
    ]);
    const bounces: Bounce[] = [];
    core.on('bounce', (b) => void bounces.push(b));
    const ids = Array.from({ length: 30 }, (_, i) => i + 1);
    await submitMany(core, ids, () => 'z.test');
    core.start();
    await waitFor(
      () => bounces.length === 30,
      'every message bounced',
      20_000,
      () => bounces.length,
    );
    // The first 550 fires the rule; the connection may already have the next message on the wire
    // (it goes on from the outcome in the same turn), so one or two transactions reach the
    // receiver. Each of those is a 'permanent' bounce, and the rule bounced every other message
    // without a connection.
    const seen = srv.txns.length;
    expect(seen).toBeGreaterThanOrEqual(1);
    expect(seen).toBeLessThanOrEqual(2);
    expect(new Set(bounces.map((b) => b.id)).size).toBe(30);
    expect(bounces.filter((b) => b.reason === 'permanent').length).toBe(seen);
    expect(bounces.filter((b) => b.reason === 'failed').length).toBe(30 - seen);
  }, 60_000);
});

test('core.pause() checks its arguments, naming them, and says false for a domain never seen', () => {
  const { core } = queued(['x.test']);
  expect(() => core.pause(5 as never, 'a', 1)).toThrow(TypeError);
  expect(() => core.pause('x.test', 'nope', 1)).toThrow(/binding/);
  expect(() => core.pause('x.test', 'a', '1' as never)).toThrow(/durationMs must be a number/);
  expect(() => core.pause('x.test', 'a', -1)).toThrow(RangeError);
  expect(() => core.pause('x.test', 'a', 2 ** 31)).toThrow(/durationMs must be from 0/);
  expect(() => core.pause('x.test', 'a', Number.NaN)).toThrow(RangeError);
  expect(core.pause('never.test', 'a', 1000)).toBe(false);
  expect(core.domain('x.test').suspended('a')).toBe(false);
  expect(core.pause('x.test', 'a', 60_000)).toBe(true);
  expect(core.domain('x.test').suspended('a')).toBe(true);
  expect(core.pause('x.test', 'a', 0)).toBe(true);
  expect(core.domain('x.test').suspended('a')).toBe(false);
});

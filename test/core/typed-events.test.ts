// Event payloads are typed: a listener's argument is the event's payload type, so a field that is
// not there does not compile (`npm test` type-checks this file: an @ts-expect-error that meets no
// error fails the type check), and at run time the payloads are what the types say.
import { expect, expectTypeOf, test } from 'vitest';

import { type Bounce, type BouncedRecipient, type CoreEvents, type Grant, MailQueueCore } from '../../lib/index.js';

test('listeners get the payload types of their events', () => {
  const core = new MailQueueCore({ clock: () => 10_000, config: { global: { messageExpiration: 1 } } });
  try {
    const bounces: Bounce[] = [];
    const grants: Grant[] = [];
    core.on('bounce', (e) => {
      expectTypeOf(e).toEqualTypeOf<Bounce>();
      expectTypeOf(e.reason).toEqualTypeOf<'expired' | 'permanent' | 'retries-exhausted' | 'failed' | 'missing'>();
      expectTypeOf(e.envelope).toEqualTypeOf<{ from: string; to: string[] } | undefined>();
      expectTypeOf(e.recipients).toEqualTypeOf<BouncedRecipient[] | undefined>();
      expectTypeOf<BouncedRecipient>().toEqualTypeOf<{ recipient: string; code?: number; diagnostic: string }>();
      expectTypeOf(e.body).toEqualTypeOf<(() => Promise<Buffer>) | undefined>();
      bounces.push(e);
    });
    core.on('connection', (g) => {
      expectTypeOf(g).toEqualTypeOf<Grant>();
      grants.push(g);
    });
    core.on('error', (err) => {
      expectTypeOf(err).toEqualTypeOf<Error>();
    });
    core.on('delivered', (e) => {
      expectTypeOf(e.response).toEqualTypeOf<string | undefined>();
      expectTypeOf(e.recipients).toEqualTypeOf<string[] | undefined>();
    });
    core.on('deferred', (e) => {
      expectTypeOf(e.nextAttempt).toEqualTypeOf<number>();
      expectTypeOf(e.recipients).toEqualTypeOf<string[] | undefined>();
    });
    // @ts-expect-error: a bounce has no such field
    core.on('bounce', (e) => e.nonexistent);
    // @ts-expect-error: no such event
    core.on('delivred', () => {});
    expectTypeOf<CoreEvents['bounce']>().toEqualTypeOf<[event: Bounce]>();

    core.enqueue({ id: 1, domain: 'x.test', expiresAt: 10_500 });
    core.enqueue({ id: 2, domain: 'x.test' });
    core.maintain(10_000);
    expect(grants).toEqual([{ connectionId: expect.any(Number), domain: 'x.test', binding: 'default' }]);
    core.maintain(10_600); // 1 has expired, 2 (at 11_000) not yet
    expect(bounces).toEqual([{ id: 1, domain: 'x.test', reason: 'expired' }]);
  } finally {
    core.close();
  }
});

test("a listener that throws a string is reported as an 'error' event with an Error", () => {
  const core = new MailQueueCore({ clock: () => 10_000, config: { global: { messageExpiration: 1 } } });
  try {
    const errors: Error[] = [];
    core.on('error', (err) => errors.push(err));
    core.on('bounce', () => {
      throw 'not an Error';
    });
    core.enqueue({ id: 1, domain: 'x.test', expiresAt: 10_500 });
    core.maintain(11_000);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(Error);
    expect(errors[0].message).toBe('not an Error');
  } finally {
    core.close();
  }
});

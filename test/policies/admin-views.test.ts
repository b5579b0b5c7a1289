// The policies in the operator's views: GET /policies on the admin API, over real HTTP, lists
// each attached policy with what it holds, and forgets it once detached.
import { expect, test } from 'vitest';

import { feedbackConcurrency, MailQueueCore, responseRules, serveAdmin } from '../../lib/index.js';

test('GET /policies lists the attached policies, the rules in force and the windows learnt', async () => {
  const core = new MailQueueCore({ bindings: ['a'], clock: () => 1_700_000_000_000 });
  const admin = await serveAdmin(core);
  try {
    const get = async () => {
      const r = await fetch(`${admin.url}/policies`);
      expect(r.status).toBe(200);
      return (await r.json()) as { policies: { kind: string; state: Record<string, unknown> }[] };
    };
    expect(await get()).toEqual({ policies: [] });
    core.enqueue({ id: 1, domain: 'x.test' });
    const fc = feedbackConcurrency(core, { initial: 3 });
    const rr = responseRules(core, [
      { name: 'busy', match: { code: 421 }, action: { kind: 'maxConnections', value: 1 }, durationMs: 60_000 },
    ]);
    core.emit('connectionOpened', { connectionId: 1, domain: 'x.test', binding: 'a' });
    core.emit('deferred', { id: 1, domain: 'x.test', binding: 'a', nextAttempt: 0, code: 421, response: 'busy' });
    expect(await get()).toEqual({
      policies: [
        {
          kind: 'feedbackConcurrency',
          state: {
            initial: 3,
            max: 20,
            windows: [{ domain: 'x.test', binding: 'a', window: 3, failures: 1 }],
          },
        },
        {
          kind: 'responseRules',
          state: {
            rules: ['busy'],
            active: [
              {
                rule: 'busy',
                domain: 'x.test',
                binding: 'a',
                action: { kind: 'maxConnections', value: 1 },
                until: 1_700_000_060_000,
                matches: 1,
              },
            ],
          },
        },
      ],
    });
    fc.detach();
    rr.detach();
    expect(await get()).toEqual({ policies: [] });
    const post = await fetch(`${admin.url}/policies`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(404);
  } finally {
    await admin.close();
    core.close();
  }
});

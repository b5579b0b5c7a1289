// Cores and receivers a test file makes, stopped, closed and shut after each test.
import { afterEach } from 'vitest';

import type { MailQueueCore } from '../../lib/index.js';
import type { TestServer } from './smtp_servers.js';

/** Registers an afterEach that stops and closes every core, and closes every server, pushed here. */
export function tornDownAfterEach(): { cores: MailQueueCore[]; servers: TestServer[] } {
  const made = { cores: [] as MailQueueCore[], servers: [] as TestServer[] };
  afterEach(async () => {
    for (const c of made.cores.splice(0)) {
      await c.stop().catch(() => undefined);
      c.close();
    }
    await Promise.all(made.servers.splice(0).map((s) => s.close()));
  });
  return made;
}

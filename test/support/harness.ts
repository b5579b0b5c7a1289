// Shared helpers of the delivery integration tests (test/delivery/, test/operator/, and
// test/pass/grant-list.test.ts): test messages whose id travels in the envelope and the body, a
// recorder of a core's events that checks "every message exactly once" as it goes, a sampler of
// the core's books (enqueued = delivered + bounced + still queued at every sampled instant),
// sliding-window counts, and waitFor.
import fs from 'node:fs';

import type { Bounce, DeferredEvent, DeliveredEvent, Grant, MailQueueCore, StoredMessage } from '../../lib/index.js';

/** A message whose id is in the envelope sender (id-<n>@sender.test) and in the body (X-Id). */
export function testMessage(id: number, domain: string, extra: Partial<StoredMessage> = {}): StoredMessage {
  return { id, domain, envelope: { from: `id-${id}@sender.test`, to: [`rcpt${id}@${domain}`] }, ...extra };
}

export function testBody(id: number, size = 0): Buffer {
  const head = `X-Id: ${id}\r\nSubject: message ${id}\r\n\r\n`;
  const line = 'The quick brown fox jumps over the lazy dog 0123456789\r\n';
  const lines = Math.ceil(size / line.length);
  return Buffer.from(`${head}${line.repeat(lines)}end\r\n`);
}

export async function submitMany(
  core: MailQueueCore,
  ids: number[],
  domainOf: (id: number) => string,
  extra: (id: number) => Partial<StoredMessage> = () => ({}),
): Promise<void> {
  for (const id of ids) await core.submit(testMessage(id, domainOf(id), extra(id)), testBody(id));
}

/** The names of every file under a spool directory (messages, journals, temporary files). */
export function spoolFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until cond() is true; throws with `what` (and describe()) after timeoutMs. */
export async function waitFor(
  cond: () => boolean,
  what: string,
  timeoutMs = 20_000,
  describe?: () => unknown,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${describe ? `: ${JSON.stringify(describe())}` : ''}`,
      );
    }
    await sleep(10);
  }
}

/** The largest number of times in any window [t, t + windowMs). times need not be sorted. */
export function maxInWindow(times: number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < t.length; hi++) {
    while (t[hi] - t[lo] >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

export interface Timed<T> {
  at: number;
  event: T;
}

/**
 * Records a core's delivery events and checks, as each arrives, that no id reaches a final
 * outcome (delivered or bounce) twice or is deferred after its final outcome. `violations` lists
 * every breach; tests assert it is empty.
 */
export class CoreLog {
  readonly delivered: Timed<DeliveredEvent>[] = [];
  readonly deferred: Timed<DeferredEvent>[] = [];
  readonly bounced: Timed<Bounce>[] = [];
  readonly grants: Timed<Grant>[] = [];
  readonly errors: unknown[] = [];
  readonly violations: string[] = [];
  /** id -> its final outcome */
  readonly final = new Map<number, 'delivered' | 'bounce'>();
  /** Per id, the attempts count the core reported right after each deferral. */
  readonly attemptsAtDeferral = new Map<number, number[]>();

  constructor(readonly core: MailQueueCore) {
    core.on('delivered', (e: DeliveredEvent) => {
      this.delivered.push({ at: Date.now(), event: e });
      this.#final(e.id, 'delivered');
    });
    core.on('bounce', (e: Bounce) => {
      this.bounced.push({ at: Date.now(), event: e });
      this.#final(e.id, 'bounce');
    });
    core.on('deferred', (e: DeferredEvent) => {
      this.deferred.push({ at: Date.now(), event: e });
      if (this.final.has(e.id))
        this.violations.push(`id ${e.id}: 'deferred' after its final outcome (${this.final.get(e.id)})`);
      const info = core.closed ? undefined : core.message(e.id);
      const list = this.attemptsAtDeferral.get(e.id) ?? [];
      list.push(info ? info.attempts : -1);
      this.attemptsAtDeferral.set(e.id, list);
    });
    core.on('connection', (g: Grant) => {
      this.grants.push({ at: Date.now(), event: g });
    });
    core.on('error', (err: unknown) => {
      this.errors.push(err);
    });
  }

  #final(id: number, what: 'delivered' | 'bounce'): void {
    const prev = this.final.get(id);
    if (prev !== undefined) this.violations.push(`id ${id}: '${what}' after '${prev}'`);
    else this.final.set(id, what);
  }

  deliveredIds(): number[] {
    return this.delivered.map((d) => d.event.id);
  }

  bouncesOf(id: number): Bounce[] {
    return this.bounced.filter((b) => b.event.id === id).map((b) => b.event);
  }

  deferralsOf(id: number): Timed<DeferredEvent>[] {
    return this.deferred.filter((d) => d.event.id === id);
  }

  isDone(ids: Iterable<number>): boolean {
    for (const id of ids) if (!this.final.has(id)) return false;
    return true;
  }
}

/**
 * Samples core.stats() every few ms and checks the books: every id submitted so far is delivered,
 * bounced, or still held by the core (active + delayed + in flight), at every sampled instant.
 * `submitted` must be bumped by the caller right after each submit() resolves (no macrotask runs
 * between the core queuing the message and that continuation, so a sample never falls between).
 */
export class Books {
  submitted = 0;
  samples = 0;
  readonly breaches: string[] = [];
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly core: MailQueueCore,
    private readonly log: CoreLog,
    everyMs = 3,
  ) {
    this.#timer = setInterval(() => this.check(), everyMs);
  }

  check(): void {
    if (this.core.closed) return;
    const s = this.core.stats();
    const held = s.active + s.delayed + s.inFlight;
    const done = this.log.delivered.length + this.log.bounced.length;
    this.samples++;
    if (this.submitted !== done + held && this.breaches.length < 20) {
      this.breaches.push(
        `submitted ${this.submitted} != delivered ${this.log.delivered.length} + bounced ${this.log.bounced.length} + held ${held} (active ${s.active}, delayed ${s.delayed}, in flight ${s.inFlight})`,
      );
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Source address of binding slot i in these tests: 127.0.0.(i+1), so servers can tell bindings apart. */
export function bindingAddress(slot: number): string {
  return `127.0.0.${slot + 1}`;
}

// One simulated run: the real core and the real delivery layer (MailQueueCore with a MemoryStore,
// start(), its maintainer and connections) on a fake clock (@sinonjs/fake-timers: setTimeout,
// setInterval, setImmediate and Date), against a ReceiverModel through SimTransport. Hours of
// traffic take seconds, and the same options give the same timeline (docs/simulator.md).
import FakeTimers from '@sinonjs/fake-timers';

import { type CoreConfig, MailQueueCore, MemoryStore } from '../lib/index.js';
import { prng } from '../examples/demo/protocol.js'; // the project's seeded PRNG (mulberry32)
import { type ReceiverBooks, ReceiverModel, type ReceiverSpec } from './receiver_model.js';
import { SimTransport } from './sim_transport.js';

/** The simulated clock starts here (2024-01-01T00:00:00Z), whatever the real time. */
export const SIM_START = 1_704_067_200_000;
const BODY = Buffer.from('Subject: simulated\r\n\r\nhello\r\n');
const STEP_MS = 10_000;

/** What a policy under test gives back: a way to take it off, and its window if it has one. */
export interface AttachedPolicy {
  detach(): void;
  window?(domain: string): number | undefined;
}

export interface SimulationOptions {
  seed: number;
  minutes: number;
  receiver: ReceiverSpec;
  /** The destination domain (one receiver). Default 'sim.test'. */
  domain?: string;
  /** Messages queued before the start. */
  backlog: number;
  /** Messages arriving each minute (spread over it). Default 0. */
  arrivalsPerMinute?: number;
  /** The core's configuration ('global' scope settings: caps, retry intervals). */
  config?: CoreConfig;
  /** Attaches the policy under test to the core (none: the static caps of `config`). */
  policy?: (core: MailQueueCore) => AttachedPolicy;
}

/** One minute of the run. */
export interface TimelineRow extends ReceiverBooks {
  minute: number;
  /** Messages the core still holds at the end of the minute. */
  queued: number;
  /** The policy's window at the end of the minute, when it has one. */
  window?: number;
}

export interface SimulationResult {
  rows: TimelineRow[];
  totals: Omit<ReceiverBooks, 'open' | 'peakOpen'> & { peakOpen: number; submitted: number; queuedAtEnd: number };
}

export async function runSimulation(o: SimulationOptions): Promise<SimulationResult> {
  const domain = o.domain ?? 'sim.test';
  const clock = FakeTimers.withGlobal(globalThis).install({
    now: SIM_START,
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'Date'],
  });
  const now = () => clock.now;
  const rows: TimelineRow[] = [];
  let submitted = 0;
  try {
    const receiver = new ReceiverModel(o.receiver, SIM_START, prng(o.seed));
    const core = new MailQueueCore({
      bindings: ['a'],
      config: o.config,
      clock: now,
      transport: new SimTransport(new Map([[domain, receiver]]), now),
      store: new MemoryStore(),
    });
    const policy = o.policy?.(core);
    const submit = async (n: number) => {
      for (let i = 0; i < n; i++) {
        submitted++;
        await core.submit(
          { id: submitted, domain, envelope: { from: 'sim@sender.test', to: [`rcpt${submitted}@${domain}`] } },
          BODY,
        );
      }
    };
    await submit(o.backlog);
    core.start();
    const perStep = ((o.arrivalsPerMinute ?? 0) * STEP_MS) / 60_000;
    let owed = 0;
    for (let minute = 1; minute <= o.minutes; minute++) {
      for (let t = 0; t < 60_000; t += STEP_MS) {
        owed += perStep;
        const n = Math.floor(owed);
        owed -= n;
        await submit(n);
        await clock.tickAsync(STEP_MS);
      }
      const s = core.stats();
      const row: TimelineRow = { minute, ...receiver.takeBooks(), queued: s.active + s.delayed + s.inFlight };
      const w = policy?.window?.(domain);
      if (w !== undefined) row.window = w;
      rows.push(row);
    }
    // stop() waits for the connections to close, on timers: move the clock until it has.
    let stopped = false;
    const stopping = core.stop().then(() => {
      stopped = true;
    });
    for (let i = 0; i < 600 && !stopped; i++) await clock.tickAsync(1_000);
    await stopping;
    policy?.detach();
    const s = core.stats();
    core.close();
    const totals = {
      peakOpen: Math.max(0, ...rows.map((r) => r.peakOpen)),
      accepted: sum(rows, 'accepted'),
      refusedConnections: sum(rows, 'refusedConnections'),
      rateLimited: sum(rows, 'rateLimited'),
      greylisted: sum(rows, 'greylisted'),
      downRefusals: sum(rows, 'downRefusals'),
      windowReplies: sum(rows, 'windowReplies'),
      submitted,
      queuedAtEnd: s.active + s.delayed + s.inFlight,
    };
    return { rows, totals };
  } finally {
    clock.uninstall();
  }
}

function sum(rows: TimelineRow[], k: keyof ReceiverBooks): number {
  return rows.reduce((n, r) => n + r[k], 0);
}

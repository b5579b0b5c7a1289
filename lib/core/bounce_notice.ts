// A bounce as an MTA needs it to write a DSN: the 'bounce' event carries the message's envelope,
// the recipients it is about (each with its code and diagnostic) and a reader of the stored body,
// and the store forgets the message only after the event's listeners have run. "Run" means: each
// listener has returned and every promise a listener returned has settled, or
// BOUNCE_LISTENER_TIMEOUT_MS has passed (then an 'error' event says so). A listener that throws
// or rejects is an 'error' event; the removal happens all the same, so that a faulty listener
// neither loses the bounce for the others nor keeps the message stored for ever. A crash before
// the removal leaves the message in the store: recover() queues it again and it bounces again
// (at least once, as deliveries).
import type { BouncedRecipient, BounceEvent } from '../delivery/events.js';
import type { MessageStore } from '../store/message_store.js';
import type { Envelope } from '../transport/transport.js';
import type { Outbox } from './outbox.js';

/** How long the store removal after a bounce waits for the promises its listeners returned. */
export const BOUNCE_LISTENER_TIMEOUT_MS = 30_000;

/** What reason a bounce gives each recipient when the receiver said nothing about it. */
const DIAGNOSTICS: Record<BounceEvent['reason'], string> = {
  expired: 'the message expired before it could be delivered',
  permanent: 'refused by the receiver',
  'retries-exhausted': 'the retries allowed for the message ran out',
  failed: 'failed by the operator',
  missing: 'the message is not in the store',
};

/** Every recipient of `to`, each with the bounce's own code and diagnostic. */
export function everyRecipient(to: readonly string[], ev: BounceEvent): BouncedRecipient[] {
  const diagnostic = ev.response ?? DIAGNOSTICS[ev.reason];
  return to.map((recipient) => ({ recipient, code: ev.code, diagnostic }));
}

/** Envelope reads of one store at once: a wave of expiries or a fail() of a big domain reads its
 *  messages a few at a time (FileSpool opens a file for each), not all at once. */
export const BOUNCE_READS_AT_ONCE = 64;

/** A counting gate: run() waits while `limit` calls are running. */
class Gate {
  #free = BOUNCE_READS_AT_ONCE;
  readonly #waiting: (() => void)[] = [];

  async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await f();
    } finally {
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#free++;
    }
  }
}

const gates = new WeakMap<MessageStore, Gate>();

function gateOf(store: MessageStore): Gate {
  let g = gates.get(store);
  if (g === undefined) gates.set(store, (g = new Gate()));
  return g;
}

export interface BounceFacts {
  /** The envelope as sent, when the caller knows it (else it is read from the store). */
  envelope?: Envelope;
  /** The recipients that bounced (default: every recipient of the envelope). */
  recipients?: BouncedRecipient[];
  /** Remove the message from the store once the listeners have run (default true; false when
   *  other recipients of it still wait for a retry). */
  remove?: boolean;
}

/**
 * Emits `ev` as a 'bounce' with the envelope, recipients and body reader, waits for the listeners
 * (bounded), then removes the message from the store. Without a listener, nothing is read: the
 * removal starts at once. Never rejects; every failure is an 'error' event.
 */
export async function announceBounce(
  outbox: Outbox,
  store: MessageStore | undefined,
  ev: BounceEvent,
  facts: BounceFacts = {},
): Promise<void> {
  const remove = facts.remove !== false && store !== undefined;
  try {
    if (!outbox.listens('bounce')) return;
    if (store === undefined) {
      outbox.emitSafely('bounce', ev);
      return;
    }
    let envelope = facts.envelope;
    if (envelope === undefined) {
      try {
        envelope = (await gateOf(store).run(() => store.get(ev.id)))?.envelope;
      } catch (err) {
        outbox.reportError(err); // a damaged entry: the bounce goes out without its envelope
      }
    }
    if (envelope !== undefined) {
      ev.envelope = { from: envelope.from, to: [...envelope.to] };
      ev.recipients = facts.recipients ?? everyRecipient(envelope.to, ev);
      ev.body = () => store.body(ev.id);
    }
    await outbox.emitAwaited('bounce', ev, BOUNCE_LISTENER_TIMEOUT_MS);
  } finally {
    if (remove) await forget(outbox, store, ev.id);
  }
}

async function forget(outbox: Outbox, store: MessageStore, id: number): Promise<void> {
  try {
    await store.remove(id);
  } catch (err) {
    // The message is done either way; a store that cannot remove it offers it again after a
    // restart (it bounces once more), so report and go on.
    outbox.reportError(err);
  }
}

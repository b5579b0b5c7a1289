// What the delivery layer reports: the events a core emits for each message's outcome, and the
// per-domain tallies the operator views read.
import type { Envelope } from '../transport/transport.js';

export interface DomainTally {
  delivered: number;
  deferred: number;
  bounced: number;
  connectFailures: number;
}

export interface DeliveredEvent {
  id: number;
  domain: string;
  binding: string;
  response?: string;
  /** The recipients the receiver accepted (all of the envelope's when none was refused). Absent
   *  only when the delivery layer did not know the envelope. */
  recipients?: string[];
}
export interface DeferredEvent {
  id: number;
  domain: string;
  binding: string;
  nextAttempt: number;
  code?: number;
  response: string;
  /** The recipients that wait for the retry (the others were accepted or bounced). Absent when the
   *  delivery layer did not know the envelope (a load from the store failed). */
  recipients?: string[];
  /** True when the session broke with this failure: the receiver dropped it, or the delivery
   *  timed out. With a 421 reply and the 'connectionFailed' event, what a concurrency policy
   *  counts as the receiver pushing back (lib/policies/feedback_concurrency.ts); absent for a
   *  refusal the session survived (a 4xx to one message). */
  sessionBroken?: true;
}

/** A recipient a bounce is about, with the receiver's (or the core's) word on it. */
export interface BouncedRecipient {
  recipient: string;
  /** The SMTP reply code, when a receiver gave one. */
  code?: number;
  /** The reply text, or the core's reason (expired, failed by the operator, ...). */
  diagnostic: string;
}

export interface BounceEvent {
  id: number;
  domain?: string;
  binding?: string;
  reason: 'expired' | 'permanent' | 'retries-exhausted' | 'failed' | 'missing';
  code?: number;
  response?: string;
  /**
   * The message's envelope as stored when it bounced (every recipient it still had, also those
   * this bounce is not about). Absent when the store no longer had the message ('missing') or
   * the core has no store.
   */
  envelope?: Envelope;
  /** The recipients that bounced, each with its code and diagnostic: all of the envelope's, or
   *  the refused ones when others were accepted or wait for a retry. Absent with `envelope`. */
  recipients?: BouncedRecipient[];
  /**
   * The stored body, for a DSN (buildDsn): readable until the 'bounce' listeners have run, i.e.
   * until every promise they returned settled (bounded by BOUNCE_LISTENER_TIMEOUT_MS); the store
   * forgets the message after that. Absent without a store.
   */
  body?: () => Promise<Buffer>;
}

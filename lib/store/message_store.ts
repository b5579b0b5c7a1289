// Where message bodies and envelopes live. The core knows messages by id only; an MTA implements
// MessageStore over its spool. Three ship here: MemoryStore (tests, the demo), FileSpool (one file
// per message, fsynced before submit() returns, removed after the final outcome, reloaded by
// core.recover() after a crash) and LogSpool (the same promise from an append-only segment log
// that commits concurrent puts with one fdatasync).
import type { Readable } from 'node:stream';

import type { Envelope, StreamedBody } from '../transport/transport.js';

/** Where a message stands in its retry schedule, recorded after a transient failure. */
export interface RetryState {
  /** attempts made so far (>= 1 after a failure) */
  attempts: number;
  /** ms since the epoch */
  nextAttempt: number;
}

export interface StoredMessage {
  id: number;
  domain: string;
  binding?: string;
  priority?: number;
  envelope: Envelope;
  /** ms since the epoch; absent: the core's default (now + messageExpiration). */
  expiresAt?: number;
  /**
   * Attempts made so far (0 to 65535). list() and get() return it when a retry state was recorded
   * (setRetryState) or put() was given one; absent: none made.
   */
  attempts?: number;
  /** ms since the epoch, finite; returned like attempts. Absent: now (the message is due). */
  nextAttempt?: number;
}

/** What the delivery layer needs to send a message: its envelope and body (see MessageStore.load). */
export interface LoadedMessage {
  envelope: Envelope;
  /** The bytes, or a StreamedBody for a large body the store reads as it is sent. */
  body: Buffer | StreamedBody;
}

export interface MessageStore {
  /** Stores a message durably: when the promise resolves, a crash does not lose it. */
  put(message: StoredMessage, body: Buffer): Promise<void>;
  /**
   * Optional: put() with the body as a stream, written as it comes in, never held whole in
   * memory. Resolves once durable, as put(); rejects (and destroys the stream) when the stream
   * errors or ends short of a valid message, with nothing stored. Without it, core.submit() of a
   * stream or a file path reads the body into one Buffer (up to MAX_BUFFERED_BODY_BYTES) and calls
   * put().
   */
  putStream?(message: StoredMessage, body: Readable): Promise<void>;
  /** The stored envelope and metadata (undefined when unknown). */
  get(id: number): Promise<StoredMessage | undefined>;
  /** The body bytes; rejects when the message is unknown. */
  body(id: number): Promise<Buffer>;
  /**
   * Optional: the envelope and body of a message about to be sent, in one call instead of get()
   * and body(), and without copies: the core only reads them, and hands the body to the transport
   * as it is. Undefined (or a promise of undefined) when the message is unknown; a damaged one
   * rejects (or throws) as body() would. It may answer synchronously (a store in memory): the
   * delivery layer then starts the message without waiting for a promise. Without it the core
   * calls get() and body().
   */
  load?(id: number): LoadedMessage | undefined | Promise<LoadedMessage | undefined>;
  /** Forgets a message after its final outcome. Removing an unknown id is not an error. */
  remove(id: number): Promise<void>;
  /**
   * Optional: remove() without a promise when the removal can finish at once. Returns undefined
   * when the message is gone (as durable as remove() would have made it), or the promise remove()
   * would have returned when it must wait. A bad argument or a closed store throws here instead of
   * rejecting. The delivery layer uses it after each delivery, which then costs no promise and no
   * turn of the microtask queue (MemoryStore, and LogSpool when no group is being written).
   */
  removeNow?(id: number): Promise<void> | undefined;
  /** Every stored message, for recovery after a restart. */
  list(): AsyncIterable<StoredMessage>;
  /**
   * Records a message's retry state after a transient failure, so that recover() keeps its
   * schedule: list() and get() return it as the message's attempts and nextAttempt (the latest
   * recorded wins over what put() was given). Cheap: no fsync of its own (a kill -9 keeps it; a
   * power cut may lose the latest states, and those messages are then retried early, never lost).
   * Unknown id: no error, nothing recorded (or recorded and ignored later); a message put later
   * with that id, or put again after remove(), starts without a state.
   */
  setRetryState?(id: number, state: RetryState): Promise<void>;
  /**
   * Optional: narrows a stored message's recipients to `to` after the others were accepted or
   * bounced, so that its retry (also after a restart: list(), get() and load() return the new
   * list) goes to those alone. Durable when the promise resolves, and crash-safe: a crash leaves
   * the old list or the new one, never neither. The body, the expiry and the retry state are kept.
   * Unknown id: no error, nothing written. A store without it has a partly delivered message
   * retried to every recipient (the accepted ones get it twice).
   */
  setRecipients?(id: number, to: string[]): Promise<void>;
  close?(): Promise<void>;
}

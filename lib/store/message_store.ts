// Where message bodies and envelopes live. The core knows messages by id only; an MTA implements
// MessageStore over its spool. Two ship here: MemoryStore (tests, the demo) and FileSpool (one file
// per message, fsynced before submit() returns, removed after the final outcome, reloaded by
// core.recover() after a crash).
import type { Envelope } from '../transport/transport.js';

export interface StoredMessage {
  id: number;
  domain: string;
  binding?: string;
  priority?: number;
  envelope: Envelope;
  /** ms since the epoch; absent: the core's default (now + messageExpiration). */
  expiresAt?: number;
}

export interface MessageStore {
  /** Stores a message durably: when the promise resolves, a crash does not lose it. */
  put(message: StoredMessage, body: Buffer): Promise<void>;
  /** The stored envelope and metadata (undefined when unknown). */
  get(id: number): Promise<StoredMessage | undefined>;
  /** The body bytes; rejects when the message is unknown. */
  body(id: number): Promise<Buffer>;
  /** Forgets a message after its final outcome. Removing an unknown id is not an error. */
  remove(id: number): Promise<void>;
  /** Every stored message, for recovery after a restart. */
  list(): AsyncIterable<StoredMessage>;
  close?(): Promise<void>;
}

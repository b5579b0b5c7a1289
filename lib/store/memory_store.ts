// MemoryStore: a MessageStore kept in Maps, for tests and the demo. Nothing survives the process.
//
// Both stores (this one and FileSpool) check their arguments the same way, with the helpers below:
// a wrong type is a TypeError, a value out of range a RangeError, and the message starts with the
// argument's name ("message.envelope.to[2] must be a string, got number"; "state.attempts must be
// an integer from 0 to 65535, got -1"). The methods are async,
// so a bad argument rejects the returned promise; it never changes the store. put() of an id that
// is already stored rejects with a MailQueueError whose code is ERR_DUPLICATE_ID.
import { codedError } from '../errors.js';
import {
  checkAttempts,
  checkBindingName,
  checkExpiry,
  checkId,
  checkKeys,
  checkObject,
  checkPriority,
  checkRetryState,
  checkTime,
  typeName,
} from '../validate.js';
import type { LoadedMessage, MessageStore, RetryState, StoredMessage } from './message_store.js';

const MESSAGE_KEYS = new Set([
  'id',
  'domain',
  'binding',
  'priority',
  'envelope',
  'expiresAt',
  'attempts',
  'nextAttempt',
]);
const ENVELOPE_KEYS = new Set(['from', 'to']);
/** What remove() returns: settled already, shared. */
const DONE: Promise<void> = Promise.resolve();

/**
 * Checks a StoredMessage and returns a copy holding only its own fields (so that a caller who
 * mutates its object afterwards does not change what was stored).
 */
export function checkStoredMessage(v: unknown, name = 'message'): StoredMessage {
  const m = checkObject(v, name);
  checkKeys(m, MESSAGE_KEYS, name);
  const id = checkId(m.id, `${name}.id`);
  if (typeof m.domain !== 'string') throw new TypeError(`${name}.domain must be a string, got ${typeName(m.domain)}`);
  if (m.domain.length === 0) throw new RangeError(`${name}.domain must not be empty`);
  const env = checkObject(m.envelope, `${name}.envelope`);
  checkKeys(env, ENVELOPE_KEYS, `${name}.envelope`);
  // The reverse path may be empty: a bounce is sent from "<>".
  if (typeof env.from !== 'string')
    throw new TypeError(`${name}.envelope.from must be a string, got ${typeName(env.from)}`);
  if (!Array.isArray(env.to)) throw new TypeError(`${name}.envelope.to must be an array, got ${typeName(env.to)}`);
  if (env.to.length === 0) throw new RangeError(`${name}.envelope.to must not be empty`);
  const to: string[] = [];
  for (let i = 0; i < env.to.length; i++) {
    const r: unknown = env.to[i];
    if (typeof r !== 'string') throw new TypeError(`${name}.envelope.to[${i}] must be a string, got ${typeName(r)}`);
    to.push(r);
  }
  const out: StoredMessage = { id, domain: m.domain, envelope: { from: env.from, to } };
  if (m.binding !== undefined) out.binding = checkBindingName(m.binding, `${name}.binding`);
  if (m.priority !== undefined) out.priority = checkPriority(m.priority, `${name}.priority`);
  if (m.expiresAt !== undefined) out.expiresAt = checkExpiry(m.expiresAt, `${name}.expiresAt`);
  if (m.attempts !== undefined) out.attempts = checkAttempts(m.attempts, `${name}.attempts`);
  if (m.nextAttempt !== undefined) out.nextAttempt = checkTime(m.nextAttempt, `${name}.nextAttempt`);
  return out;
}

/** Checks the arguments of setRetryState (both stores): the id, then the state; returns a copy. */
export function checkRetryArgs(id: unknown, state: unknown): RetryState {
  checkId(id, 'id');
  return checkRetryState(state, 'state');
}

/** Checks the arguments of setRecipients (every store): the id, then a non-empty list of
 *  strings; returns a copy of the list. */
export function checkRecipientsArgs(id: unknown, to: unknown): string[] {
  checkId(id, 'id');
  if (!Array.isArray(to)) throw new TypeError(`to must be an array, got ${typeName(to)}`);
  if (to.length === 0) throw new RangeError('to must not be empty');
  const out: string[] = [];
  for (let i = 0; i < to.length; i++) {
    const r: unknown = to[i];
    if (typeof r !== 'string') throw new TypeError(`to[${i}] must be a string, got ${typeName(r)}`);
    out.push(r);
  }
  return out;
}

export function checkBody(v: unknown, name = 'body'): Buffer {
  if (!Buffer.isBuffer(v)) throw new TypeError(`${name} must be a Buffer, got ${typeName(v)}`);
  return v;
}

/** A deep copy of a checked StoredMessage (the envelope's array included). */
export function copyStoredMessage(m: StoredMessage): StoredMessage {
  const out: StoredMessage = {
    id: m.id,
    domain: m.domain,
    envelope: { from: m.envelope.from, to: [...m.envelope.to] },
  };
  if (m.binding !== undefined) out.binding = m.binding;
  if (m.priority !== undefined) out.priority = m.priority;
  if (m.expiresAt !== undefined) out.expiresAt = m.expiresAt;
  if (m.attempts !== undefined) out.attempts = m.attempts;
  if (m.nextAttempt !== undefined) out.nextAttempt = m.nextAttempt;
  return out;
}

/** One stored message: its record, and what load() answers (made once, replaced when the
 *  recipients change). */
interface Entry {
  message: StoredMessage;
  loaded: LoadedMessage & { body: Buffer };
}

export class MemoryStore implements MessageStore {
  // One map: the delivery hot path makes one lookup to load a message and one deletion to remove it.
  readonly #entries = new Map<number, Entry>();
  #closed = false;

  /** How many messages are stored. */
  get size(): number {
    return this.#entries.size;
  }

  async put(message: StoredMessage, body: Buffer): Promise<void> {
    const m = checkStoredMessage(message);
    const b = checkBody(body);
    if (this.#closed) throw codedError('ERR_CLOSED', 'the store is closed');
    if (this.#entries.has(m.id)) throw codedError('ERR_DUPLICATE_ID', `message.id ${m.id} is already stored`);
    // A copy of the body: the caller may reuse its buffer.
    this.#entries.set(m.id, { message: m, loaded: { envelope: m.envelope, body: Buffer.from(b) } });
  }

  async get(id: number): Promise<StoredMessage | undefined> {
    checkId(id, 'id');
    const e = this.#entries.get(id);
    return e === undefined ? undefined : copyStoredMessage(e.message);
  }

  async body(id: number): Promise<Buffer> {
    checkId(id, 'id');
    const e = this.#entries.get(id);
    if (e === undefined) throw codedError('ERR_UNKNOWN_ID', `id ${id} is not stored`);
    return Buffer.from(e.loaded.body);
  }

  /** The stored envelope and body themselves, synchronously (no copies: the caller only reads them;
   *  the same object every time until the recipients change). */
  load(id: number): LoadedMessage | undefined {
    checkId(id, 'id');
    return this.#entries.get(id)?.loaded;
  }

  // Not async: removal is the delivery hot path, and an async function's machinery costs more than
  // the deletion. A bad argument still rejects the returned promise.
  remove(id: number): Promise<void> {
    try {
      checkId(id, 'id');
    } catch (err) {
      return Promise.reject(err);
    }
    this.#entries.delete(id);
    return DONE;
  }

  /** remove() at once: done (undefined); a bad argument throws. A subclass or an instance that
   *  replaced remove() gets its own remove() called instead, so that its removals are not skipped. */
  removeNow(id: number): Promise<void> | undefined {
    if (this.remove !== MemoryStore.prototype.remove) return this.remove(id);
    checkId(id, 'id');
    this.#entries.delete(id);
    return undefined;
  }

  /**
   * Records the retry state in the stored message (its attempts and nextAttempt); an unknown id is
   * ignored. put() of the id after remove() starts afresh.
   */
  async setRetryState(id: number, state: RetryState): Promise<void> {
    const s = checkRetryArgs(id, state);
    if (this.#closed) throw codedError('ERR_CLOSED', 'the store is closed');
    const m = this.#entries.get(id)?.message;
    if (m === undefined) return;
    m.attempts = s.attempts;
    m.nextAttempt = s.nextAttempt;
  }

  /** Narrows the stored recipients (a new envelope object: a load() answered before keeps the
   *  old one); an unknown id is ignored. */
  async setRecipients(id: number, to: string[]): Promise<void> {
    const list = checkRecipientsArgs(id, to);
    if (this.#closed) throw codedError('ERR_CLOSED', 'the store is closed');
    const e = this.#entries.get(id);
    if (e === undefined) return;
    const envelope = { from: e.message.envelope.from, to: list };
    e.message.envelope = envelope;
    e.loaded = { envelope, body: e.loaded.body };
  }

  /** The messages stored when the iteration starts, in the order they were put. */
  async *list(): AsyncIterable<StoredMessage> {
    for (const e of [...this.#entries.values()]) yield copyStoredMessage(e.message);
  }

  /** Later put()s reject with ERR_CLOSED; the contents stay readable. */
  async close(): Promise<void> {
    this.#closed = true;
  }
}

// What the core asks of a transport: open a session for (domain, binding), send messages on it one
// at a time, close it. The core owns every lease and every message's outcome; a transport only
// reports what happened. lib/transport/smtp.ts is the SMTP one.

export interface Envelope {
  from: string;
  to: string[];
}

export interface DeliveryTarget {
  domain: string;
  binding: string;
  bindingSlot: number;
  // The Host scope (config.hosts, decision 47): set by the core only when host caps are configured.
  // A transport that honours them connects only to hosts claimHost() granted; one that ignores
  // them leaves every domain at one connection at a time (its MX set is never learned).
  /** The host this connection is charged to: try it first. */
  preferHost?: string;
  /** Tells the core the domain's hosts (MX or route), in preference order, once resolved. */
  learnHosts?(hosts: string[]): void;
  /** Asked right before connecting to a host: true moves the connection's charge there; false
   *  means the host is at its cap (skip it; when every host is, fail with code ERR_HOST_CAP). */
  claimHost?(host: string): boolean;
}

/**
 * A body too large to hand over in memory (FileSpool gives one for a message file larger than
 * STREAM_BODY_BYTES): its size and whether it holds 8-bit bytes are known without reading it, and
 * open() reads it. The stream errors when the bytes read do not match what was stored (a file
 * changed or cut under the spool), before its end, so a transport never finishes such a message.
 */
export interface StreamedBody {
  /** bytes */
  readonly size: number;
  /** Whether any byte is above 0x7f (8BITMIME); true when the store does not know. */
  readonly eightBit: boolean;
  /** A new stream of the body's bytes; the caller reads it to the end or destroys it. */
  open(): import('node:stream').Readable;
}

export interface OutboundMessage {
  id: number;
  domain: string;
  envelope: Envelope;
  /** The bytes, or (from a store that streams large bodies) a StreamedBody. */
  body: Buffer | StreamedBody;
}

/** A recipient the receiver refused (at RCPT TO), with its own verdict. */
export interface RecipientRefusal {
  recipient: string;
  kind: 'transient' | 'permanent';
  code?: number;
  response: string;
}

/**
 * The transport's verdict on one message. `refused`, when present, gives a verdict per recipient:
 * the recipients it lists were refused as it says, every other recipient of the envelope has the
 * message's own verdict (accepted, for 'delivered').
 */
export type Outcome =
  | { kind: 'delivered'; response?: string; refused?: RecipientRefusal[] }
  | { kind: 'transient'; code?: number; response: string; refused?: RecipientRefusal[] }
  | { kind: 'permanent'; code?: number; response: string; refused?: RecipientRefusal[] };

/** The callback of TransportSession.sendCallback(): an error, or the verdict. */
export type SendCallback = (err: Error | null, outcome?: Outcome) => void;

export interface TransportSession {
  /**
   * The destination this session is connected to, as a key: sessions whose domains resolve to the
   * same key may carry each other's mail (sibling domains). Undefined: never migrate.
   */
  readonly mxKey?: string;
  /** Optional: the host (MX or route) this session is connected to, for logs. */
  readonly host?: string;
  /** False once the session can send no more (peer dropped, protocol error, closed). */
  readonly usable: boolean;
  /**
   * Sends one message and reports its outcome. It must settle within the transport's own
   * timeouts. A rejection means the session broke during the message: the core treats the message
   * as a transient failure and closes the session.
   */
  send(message: OutboundMessage): Promise<Outcome>;
  /**
   * Optional: send() with a callback instead of a promise, for the core's hot path (no promise
   * per message). Same contract as send(): `done(null, outcome)` for a verdict, `done(err)` when
   * the session broke during the message (a bad argument may also throw). `done` is called exactly
   * once, never before sendCallback() has returned. The core prefers it when present.
   */
  sendCallback?(message: OutboundMessage, done: SendCallback): void;
  /**
   * Ends the session: QUIT on a healthy idle session; a transport gives up on a busy or
   * unresponsive one (see abort()). Resolves once the connection is gone. Never rejects.
   */
  close(): Promise<void>;
  /**
   * Gives up on the session: drops the connection at once (SMTP: a TCP reset, so whatever is
   * still unsent is discarded and the receiver stops counting the connection) and resolves once
   * it is really gone. A send() in flight then rejects. Idempotent, also after or during close();
   * never rejects. The core calls it instead of close() when it gives up on a session (its
   * delivery timeout fired, send() rejected, close() did not finish in time), and releases the
   * connection's lease only after it resolves: a connection that still exists at the receiver
   * counts against the receiver's limit there. Optional: without it the core can only close()
   * and, past its close timeout, release the lease on trust.
   */
  abort?(): Promise<void>;
}

export interface Transport {
  /**
   * Opens a session for (domain, binding). A rejection is a failed connection attempt (refused,
   * timed out, 4xx or 5xx greeting, no MX): the core counts it against the domain and retries later.
   * An error with `permanent: true` (for example a domain with no MX and no address) bounces one
   * message instead of deferring it.
   */
  open(target: DeliveryTarget): Promise<TransportSession>;
  /** The destination key of a domain, when already known (for sibling migration); optional. */
  mxKey?(domain: string): string | undefined;
  /** Frees the transport's own resources (DNS caches, pools). */
  close?(): Promise<void>;
}

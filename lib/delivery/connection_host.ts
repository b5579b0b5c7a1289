// What a connection (connection.ts) needs from the delivery layer (delivery.ts implements it), and
// the outcome type the two pass between them: the contract kept apart from the connection's own
// loop so that each side can be read alone.
import type { Connection } from './connection.js';
import type { LoadedMessage } from '../store/message_store.js';
import type { DeliveryTarget, Envelope, Outcome, Transport } from '../transport/transport.js';
import type { Logger } from '../logger.js';

/** A message's outcome as the connection saw it: sessionBroken when the session was given up on. */
export type DeliverResult = Outcome & { sessionBroken?: boolean };

/** What a connection needs from the delivery layer. */
export interface ConnectionHost {
  readonly transport: Transport;
  /** options.logger: connection open and close and each outcome at debug, failures at error. */
  readonly logger: Logger | undefined;
  now(): number;
  stopping(): boolean;
  /** Bumped by configure(): when it moved since a connection last looked, it asks overLimit(). */
  configEpoch(): number;
  /** The connection's lease is above a limit configure() lowered (counting out connections
   *  already closing for that): it takes nothing more and closes. */
  overLimit(connection: Connection): boolean;
  /** Suspended by configuration or the operator: take nothing more, close. */
  suspended(domain: string, binding: string): boolean;
  /** Messages to reserve per take (1 when a message throttle applies, so it is checked per message). */
  batchSize(domain: string, binding: string): number;
  maxDeliveries(domain: string, binding: string): number;
  idleTimeoutMs(domain: string, binding: string): number;
  sendTimeoutMs(): number;
  /** Takes up to out.length messages into flight for this connection (from the (domain, binding)
   *  its lease names); returns how many. */
  takeFor(connectionId: number, out: Float64Array): number;
  /** What the transport opens a session for (with the Host scope's questions when it applies). */
  target(connectionId: number, domain: string, binding: string, bindingSlot: number): DeliveryTarget;
  /** Active messages waiting in (domain, binding). */
  queued(domain: string, binding: string): number;
  /** When the message throttle lets (domain, binding) start its next message. */
  messageAllowedAt(domain: string, binding: string): number;
  /** A sibling domain with mail on this binding and the same MX key, or undefined. */
  sibling(domain: string, binding: string, mxKey: string | undefined): string | undefined;
  /** Moves the lease to another domain; false when that domain has no room. */
  migrate(connectionId: number, domain: string): boolean;
  /** Resolves true when mail arrives for (domain, binding), false after timeoutMs or on stop. */
  waitForMail(domain: string, binding: string, timeoutMs: number): Promise<boolean>;
  /** Resolves after ms, or early on stop. */
  sleep(ms: number): Promise<void>;
  /** The envelope and body of a message to send, from the store: at once when the store can,
   *  else a promise; undefined when the store no longer has it. */
  load(id: number): LoadedMessage | undefined | Promise<LoadedMessage | undefined>;
  /** The store no longer has a message: it bounces ('missing'). */
  missing(id: number, domain: string, binding: string): void;
  /** Applies a message's outcome to the store, the core, the tallies and the events (`envelope`:
   *  the one sent, undefined when the message never reached the transport). Returns a promise
   *  when that waits for the store (the lease is released only after it); never throws, never
   *  rejects. */
  apply(
    id: number,
    domain: string,
    binding: string,
    outcome: DeliverResult,
    envelope?: Envelope,
  ): Promise<void> | undefined;
  /** A session could not be opened (every MX failed). */
  openFailed(connectionId: number, domain: string, binding: string, err: unknown): Promise<void>;
  /** The session is open and greeted (the 'connectionOpened' event). */
  opened(connectionId: number, domain: string, binding: string, host: string | undefined): void;
  /** Puts an unsent, in-flight message back at its queue position. */
  untake(id: number): void;
  release(connectionId: number): void;
  closed(connection: Connection): void;
}

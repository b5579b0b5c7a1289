// The shapes of the core's public API that more than one of its parts uses.
import type { DomainRecord } from '../views.js';

export interface Message {
  id: number;
  domain: string;
  /** Binding name; default: the first binding. */
  binding?: string;
  /** 0 normal, 1 urgent (served first). */
  priority?: number;
  /** ms since the epoch; after now the message waits in the delayed queue. Default: now. */
  nextAttempt?: number;
  /** ms since the epoch, or Infinity. Default: now + messageExpiration. */
  expiresAt?: number;
  /** Attempts already made (0 to 65535), for a message queued again after a restart. Default: 0. */
  attempts?: number;
}

export interface MessageInfo {
  id: number;
  domain: string;
  binding: string;
  state: 'active' | 'delayed' | 'in-flight';
  priority: number;
  attempts: number;
  nextAttempt: number;
  expiresAt: number;
}

export interface Stats {
  connections: number;
  active: number;
  delayed: number;
  inFlight: number;
  domains: number;
  opened: number;
  released: number;
  expired: number;
  /** Messages that left an active queue since creation (taken, cancelled, removed, expired or
   *  failed from it). */
  activeRemoved: number;
}

/** A domain by name, or by its DomainRecord (core.domain(name)): the record saves a name lookup
 *  per call on the hot paths that accept one (enqueueBatch, takeInto, take). */
export type DomainRef = string | DomainRecord;

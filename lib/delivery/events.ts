// What the delivery layer reports: the events a core emits for each message's outcome, and the
// per-domain tallies the operator views read.

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
}
export interface DeferredEvent {
  id: number;
  domain: string;
  binding: string;
  nextAttempt: number;
  code?: number;
  response: string;
}
export interface BounceEvent {
  id: number;
  domain?: string;
  binding?: string;
  reason: 'expired' | 'permanent' | 'retries-exhausted' | 'failed' | 'missing';
  code?: number;
  response?: string;
}

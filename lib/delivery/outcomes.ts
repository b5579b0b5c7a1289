// Applying a message's outcome when it is not a plain delivery (delivery.ts keeps that hot path):
// a transient failure (the retry schedule, or a bounce when retries or time ran out), a permanent
// one (a bounce), and an outcome per recipient (some accepted, some refused 5xx, some 4xx).
//
// Per recipient (the transport's Outcome.refused): the accepted recipients are done; the
// permanently refused ones bounce, in one 'bounce' event for the message that lists each with
// its code and diagnostic; the transiently refused ones stay queued and are retried alone. Before
// the message is queued again, the store records the narrowed recipient list durably
// (MessageStore.setRecipients), so that neither the retry nor a restart sends to the accepted
// recipients again. The order, each step waiting for the one before:
//   1. the 'bounce' event for the refused recipients, while the message is still stored whole
//      (its listeners may read the body for a DSN: bounce_notice.ts);
//   2. nothing left to retry: the store forgets the message, the core settles it; otherwise
//      setRecipients(id, the recipients to retry), then the core defers the message and its retry
//      state is recorded, as for any transient failure;
//   3. the 'delivered' event for the accepted recipients, and 'deferred' for those retried.
// A crash before step 2 has recorded anything sends the message again to every recipient it had
// (at least once, as for any delivery cut off before its removal). A store without setRecipients,
// or one whose setRecipients fails (an 'error' event), has the message retried to every recipient.
import type { CoreContext } from '../core/core_context.js';
import type { Outbox } from '../core/outbox.js';
import type { PairSettings } from '../config.js';
import { native, Place } from '../native.js';
import { retryDelayMs } from '../retry.js';
import type { MessageStore } from '../store/message_store.js';
import type { Envelope, Outcome, RecipientRefusal } from '../transport/transport.js';
import type { DeliverResult } from './connection_host.js';
import type { BouncedRecipient, BounceEvent, DeferredEvent, DeliveredEvent } from './events.js';

/** What applying outcomes needs of the core. */
export interface OutcomeParts {
  readonly ctx: CoreContext;
  readonly outbox: Outbox;
  readonly store: MessageStore;
  settle(id: number): void;
  defer(id: number, nextAttempt: number): void;
  attempts(id: number): number | undefined;
  settings(domain: string, binding: string): PairSettings;
}

/** An outcome split over the envelope's recipients. */
export interface RecipientSplit {
  accepted: string[];
  bounced: BouncedRecipient[];
  /** Refused transiently: retried alone. */
  retry: string[];
  /** The first transient refusal (for the 'deferred' event), when there was one. */
  firstRetry?: RecipientRefusal;
}

/** Each recipient of `to` with its verdict: its own refusal in outcome.refused, else the message's. */
export function splitRecipients(outcome: Outcome, to: readonly string[]): RecipientSplit {
  const refused = new Map<string, RecipientRefusal>();
  for (const r of outcome.refused ?? []) refused.set(r.recipient, r);
  const split: RecipientSplit = { accepted: [], bounced: [], retry: [] };
  for (const recipient of to) {
    const r = refused.get(recipient);
    const kind = r?.kind ?? outcome.kind;
    if (kind === 'delivered') split.accepted.push(recipient);
    else if (kind === 'permanent') split.bounced.push(bouncedRecipient(recipient, r, outcome));
    else {
      split.retry.push(recipient);
      if (r !== undefined) split.firstRetry ??= r;
    }
  }
  return split;
}

/** A recipient that bounces, with its own refusal's code and text, else the message's. */
function bouncedRecipient(recipient: string, r: RecipientRefusal | undefined, outcome: Outcome): BouncedRecipient {
  const code = r ? r.code : outcome.kind === 'delivered' ? undefined : outcome.code;
  return { recipient, code, diagnostic: r?.response ?? outcome.response ?? '' };
}

function isClosed(err: unknown): boolean {
  return (err as { code?: string }).code === 'ERR_CLOSED';
}

export class OutcomeApplier {
  constructor(private readonly p: OutcomeParts) {}

  /** A delivered message (or its accepted recipients): settled, counted, announced. */
  delivered(id: number, domain: string, binding: string, response: string | undefined, to?: readonly string[]): void {
    const outbox = this.p.outbox;
    try {
      this.p.settle(id);
      this.#announceDelivered(id, domain, binding, response, to);
    } catch (err) {
      if (!isClosed(err)) outbox.reportError(err); // closed under us
    }
  }

  #announceDelivered(id: number, domain: string, binding: string, response?: string, to?: readonly string[]): void {
    const outbox = this.p.outbox;
    outbox.tally(domain).delivered++;
    // The event object only when someone listens.
    if (!outbox.listens('delivered')) return;
    const e: DeliveredEvent = { id, domain, binding, response };
    if (to !== undefined) e.recipients = [...to];
    outbox.emitSafely('delivered', e);
  }

  /** Any outcome but a plain delivery; `envelope`: the one sent, when known. Never rejects. */
  async apply(id: number, domain: string, binding: string, outcome: DeliverResult, envelope?: Envelope): Promise<void> {
    try {
      if (envelope !== undefined && outcome.refused !== undefined && outcome.refused.length > 0) {
        await this.#perRecipient(id, domain, binding, outcome, envelope);
        return;
      }
      switch (outcome.kind) {
        case 'delivered':
          await this.forget(id);
          this.delivered(id, domain, binding, outcome.response, envelope?.to);
          return;
        case 'permanent':
          await this.bounce(
            { id, domain, binding, reason: 'permanent', code: outcome.code, response: outcome.response },
            envelope,
          );
          return;
        case 'transient': {
          const attempts = this.p.attempts(id) ?? 1;
          if (attempts > this.p.settings(domain, binding).maxRetries) {
            const ev: BounceEvent = {
              id,
              domain,
              binding,
              reason: 'retries-exhausted',
              code: outcome.code,
              response: outcome.response,
            };
            await this.bounce(ev, envelope);
            return;
          }
          const broken = outcome.sessionBroken === true;
          this.#retry(id, domain, binding, attempts, outcome.code, outcome.response, envelope?.to, broken);
          return;
        }
      }
    } catch (err) {
      if (!isClosed(err)) this.p.outbox.reportError(err); // else the core was closed under us
    }
  }

  /** A message that ends without delivery: settled in the core, then announced while the store
   *  still has it, and removed from the store once the listeners have run (bounce_notice.ts). */
  async bounce(ev: BounceEvent, envelope?: Envelope, recipients?: BouncedRecipient[]): Promise<void> {
    this.p.settle(ev.id);
    this.p.outbox.tally(ev.domain as string).bounced++;
    await this.p.outbox.bounce(ev, { envelope, recipients });
  }

  async #perRecipient(
    id: number,
    domain: string,
    binding: string,
    outcome: Outcome,
    envelope: Envelope,
  ): Promise<void> {
    const split = splitRecipients(outcome, envelope.to);
    const { accepted, bounced } = split;
    let retry = split.retry;
    const attempts = this.p.attempts(id) ?? 1;
    let reason: BounceEvent['reason'] = 'permanent';
    if (retry.length > 0 && attempts > this.p.settings(domain, binding).maxRetries) {
      if (bounced.length === 0) reason = 'retries-exhausted';
      const refused = new Map((outcome.refused ?? []).map((r) => [r.recipient, r]));
      for (const recipient of retry) bounced.push(bouncedRecipient(recipient, refused.get(recipient), outcome));
      retry = [];
    }
    // The bounce's own code and text: the first refused recipient's, and every refusal listed.
    const response = bounced.map((r) => `<${r.recipient}> ${r.diagnostic}`).join('; ');
    const ev: BounceEvent = { id, domain, binding, reason, code: bounced[0]?.code, response };
    if (retry.length === 0) {
      // Done: the accepted recipients delivered, the others bounced (once the listeners have run,
      // the store forgets the message).
      if (accepted.length > 0) this.delivered(id, domain, binding, outcome.response, accepted);
      else this.p.settle(id);
      if (bounced.length > 0) {
        this.p.outbox.tally(domain).bounced++;
        await this.p.outbox.bounce(ev, { envelope, recipients: bounced });
      } else await this.forget(id);
      return;
    }
    if (bounced.length > 0) {
      // Still stored whole while the listeners run; the message stays in flight.
      this.p.outbox.tally(domain).bounced++;
      await this.p.outbox.bounce(ev, { envelope, recipients: bounced, remove: false });
    }
    let waiting = envelope.to;
    const store = this.p.store;
    if (retry.length < envelope.to.length && store.setRecipients) {
      try {
        await store.setRecipients(id, retry);
        waiting = retry;
      } catch (err) {
        this.p.outbox.reportError(err); // retried to every recipient: duplicates, nothing lost
      }
    }
    if (accepted.length > 0) this.#announceDelivered(id, domain, binding, outcome.response, accepted);
    const first = split.firstRetry;
    const code = first ? first.code : outcome.kind === 'delivered' ? undefined : outcome.code;
    this.#retry(id, domain, binding, attempts, code, first?.response ?? outcome.response ?? '', waiting);
  }

  /** Defers a message in flight to its next retry and records that in the store; when the retry
   *  would come at or after the expiry the core bounces it instead ('expired', outbox.ts). */
  #retry(
    id: number,
    domain: string,
    binding: string,
    attempts: number,
    code: number | undefined,
    response: string,
    to?: readonly string[],
    sessionBroken = false,
  ): void {
    const s = this.p.settings(domain, binding);
    const nextAttempt = this.p.ctx.now() + retryDelayMs(attempts, s.retryIntervalMs, s.maxRetryIntervalMs);
    this.p.defer(id, nextAttempt);
    if (native.locate(this.p.ctx.live(), id, this.p.ctx.where) === Place.None) return; // expired instead
    const outbox = this.p.outbox;
    // So that recover() after a restart keeps the schedule and the count towards maxRetries.
    // No sync of its own: a state lost in a power cut only makes that retry come early.
    this.p.store.setRetryState?.(id, { attempts, nextAttempt }).catch((err) => outbox.reportError(err));
    outbox.tally(domain).deferred++;
    const e: DeferredEvent = { id, domain, binding, nextAttempt, code, response };
    if (to !== undefined) e.recipients = [...to];
    if (sessionBroken) e.sessionBroken = true;
    outbox.emitSafely('deferred', e);
  }

  /** Has the store forget a message; a failure is an 'error' event (it is offered again after a
   *  restart: a duplicate delivery, which SMTP tolerates). */
  async forget(id: number): Promise<void> {
    try {
      await this.p.store.remove(id);
    } catch (err) {
      this.p.outbox.reportError(err);
    }
  }
}

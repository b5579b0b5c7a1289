// Feedback concurrency: a connectionGoal provider that learns how many connections each
// destination takes, the way Postfix's queue manager does (docs/policies/feedback-concurrency.md).
// Every (domain, binding) has a window, a number of connections, that starts small, grows with each
// connection the receiver opens and greets ('connectionOpened') and shrinks with each one it
// pushes back on (it could not be opened or greeted: 'connectionFailed'; it broke or was answered
// 421 in a session: a 'deferred' event that says so). Feedback may be fractional (1/window, say):
// it adds up, and the window moves by one connection each time it reaches a whole one. A
// destination whose connections fail a whole window's worth in a row, `failedCohortLimit` times,
// is dead: it gets no connection for `deadBackoffMs`, then one, and its window starts again. The
// provider only ever lowers the goal the pass asked for: every configured limit still holds.
import type { MailQueueCore } from '../core.js';
import type { ConnectionFailedEvent, ConnectionOpenedEvent } from '../core/outbox.js';
import type { DeferredEvent } from '../delivery/events.js';
import { checkFunction, checkKeys, checkObject, typeName } from '../validate.js';
import { Attachment } from './attachment.js';
import type { ActiveQueue, DomainRecord } from '../views.js';

/** The feedback of one connection opened (positive) or refused or broken (negative), given the window:
 *  a number in (0, 1]; the window moves by one connection each time the feedback adds up to one. */
export type Feedback = (window: number) => number;

export interface FeedbackConcurrencyOptions {
  /** The window a destination starts with (Postfix initial_destination_concurrency). Default 5. */
  initial?: number;
  /** The largest window (Postfix default_destination_concurrency_limit). Default 20. */
  max?: number;
  /** Growth on each connection opened and greeted (Postfix
   *  default_destination_concurrency_positive_feedback). Default 1; `(w) => 1 / w` is gentler. */
  positiveFeedback?: Feedback;
  /** Shrinkage on each connection refused or broken (Postfix
   *  default_destination_concurrency_negative_feedback). Default 1. */
  negativeFeedback?: Feedback;
  /** Failed windows in a row that make a destination dead (Postfix
   *  default_destination_concurrency_failed_cohort_limit). Default 1. */
  failedCohortLimit?: number;
  /** How long a dead destination gets no connection, ms, before one connection tries it again.
   *  Default 300000 (Postfix minimal_backoff_time's default). */
  deadBackoffMs?: number;
  /** The clock (ms); default the core's own (`core.now()`). */
  now?: () => number;
}

/** One destination's state, as `windows()` lists it. */
export interface ConcurrencyWindow {
  domain: string;
  binding: string;
  /** Connections the destination may have (the goal is at most this). */
  window: number;
  /** Failed connections since the last one that opened. */
  failures: number;
  /** When a dead destination may be tried again (ms), or undefined while it is alive. */
  deadUntil?: number;
}

interface State {
  /** Whole connections. */
  window: number;
  /** Feedback not yet turned into a whole connection up or down (-1 < credit < 1). */
  credit: number;
  failures: number;
  deadUntil: number;
  /** A dead destination's trial connection is under way: its window stays 1 until one opens. */
  probing: boolean;
}

const one: Feedback = () => 1;
/** w steps of 1/w add up to a hair under 1 in floating point: close enough is a whole one. */
const EPSILON = 1e-9;

/** A feedback function's answer, as a step of at most one connection (0 for anything else). */
function feedback(f: Feedback, window: number): number {
  const v = f(window);
  return typeof v === 'number' && v > 0 && v <= 1 ? v : 0;
}

const OPTION_KEYS = new Set([
  'initial',
  'max',
  'positiveFeedback',
  'negativeFeedback',
  'failedCohortLimit',
  'deadBackoffMs',
  'now',
]);

function positiveCount(v: unknown, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeName(v)}`);
  if (!Number.isInteger(v) || v < 1 || v > 65535)
    throw new RangeError(`${name} must be a whole number from 1 to 65535, got ${v}`);
  return v;
}

function fn<T>(v: unknown, name: string, fallback: T): T {
  if (v === undefined) return fallback;
  checkFunction(v, name);
  return v as T;
}

/**
 * The policy, attached to one core: `detach()` takes it off again. `windows()` lists what it has
 * learnt (for an operator's view).
 */
export class FeedbackConcurrency {
  readonly initial: number;
  readonly max: number;
  readonly failedCohortLimit: number;
  readonly deadBackoffMs: number;
  readonly #positive: Feedback;
  readonly #negative: Feedback;
  readonly #now: () => number;
  readonly #core: MailQueueCore;
  /** By domain name, then binding slot. */
  readonly #states = new Map<string, State[]>();
  readonly #attachment: Attachment;

  constructor(core: MailQueueCore, options: FeedbackConcurrencyOptions = {}) {
    const o = checkObject(options, 'options') as FeedbackConcurrencyOptions;
    checkKeys(o, OPTION_KEYS, 'options', 'option');
    this.initial = positiveCount(o.initial, 'options.initial', 5);
    this.max = positiveCount(o.max, 'options.max', 20);
    if (this.initial > this.max)
      throw new RangeError(`options.initial (${this.initial}) must not be above options.max (${this.max})`);
    this.failedCohortLimit = positiveCount(o.failedCohortLimit, 'options.failedCohortLimit', 1);
    const backoff: unknown = o.deadBackoffMs ?? 300_000;
    if (typeof backoff !== 'number')
      throw new TypeError(`options.deadBackoffMs must be a number, got ${typeName(backoff)}`);
    if (!(backoff >= 0) || !Number.isFinite(backoff))
      throw new RangeError(`options.deadBackoffMs must be a finite number of ms >= 0, got ${backoff}`);
    this.deadBackoffMs = backoff;
    this.#positive = fn(o.positiveFeedback, 'options.positiveFeedback', one);
    this.#negative = fn(o.negativeFeedback, 'options.negativeFeedback', one);
    this.#now = fn(o.now, 'options.now', () => core.now());
    this.#core = core;
    this.#attachment = new Attachment(
      core,
      {
        connectionOpened: this.#onOpened,
        connectionFailed: this.#onConnectionFailed,
        deferred: this.#onDeferred,
        // What a forgotten domain learnt goes with it: its next mail starts from `initial`.
        domainForgotten: (e) => this.#states.delete(e.domain),
      },
      this.#provider,
      { kind: 'feedbackConcurrency', state: () => ({ initial: this.initial, max: this.max, windows: this.windows() }) },
    );
  }

  /** Takes the policy off its core: goals are the core's own again. */
  detach(): void {
    this.#attachment.detach();
  }

  /** Every destination the policy has heard of, with its window. */
  windows(): ConcurrencyWindow[] {
    const out: ConcurrencyWindow[] = [];
    const now = this.#now();
    for (const [domain, slots] of this.#states) {
      slots.forEach((s, b) => {
        if (s === undefined) return;
        const w: ConcurrencyWindow = {
          domain,
          binding: this.#core.bindings[b],
          window: s.window,
          failures: s.failures,
        };
        if (s.deadUntil > now) w.deadUntil = s.deadUntil;
        out.push(w);
      });
    }
    return out;
  }

  /** The window of (domain, binding), or undefined when the policy has not seen it yet. */
  window(domain: string, binding = this.#core.bindings[0]): number | undefined {
    const b = this.#core.bindings.indexOf(binding);
    return b < 0 ? undefined : this.#states.get(domain)?.[b]?.window;
  }

  #state(domain: string, b: number): State {
    let slots = this.#states.get(domain);
    if (slots === undefined) {
      slots = [];
      this.#states.set(domain, slots);
    }
    let s = slots[b];
    if (s === undefined) {
      s = { window: this.initial, credit: 0, failures: 0, deadUntil: 0, probing: false };
      slots[b] = s;
    }
    return s;
  }

  readonly #provider = (_closure: unknown, dr: DomainRecord, b: number, _sl: ActiveQueue, goal: { value: number }) => {
    if (goal.value <= 0) return 0;
    const s = this.#states.get(dr.name)?.[b];
    if (s === undefined) {
      // Not heard of yet: the initial window, and no state made for it (a pass visits every pair).
      if (goal.value > this.initial) goal.value = this.initial;
      return 0;
    }
    if (s.deadUntil > 0) {
      if (this.#now() < s.deadUntil) {
        goal.value = 0;
        return 0;
      }
      // The backoff is over: one connection tries the destination again.
      s.deadUntil = 0;
      s.probing = true;
      s.failures = 0;
      s.window = 1;
      s.credit = 0;
    }
    if (goal.value > s.window) goal.value = s.window;
    return 0;
  };

  readonly #onOpened = (e: ConnectionOpenedEvent): void => {
    const b = this.#core.bindings.indexOf(e.binding);
    if (b < 0) return;
    const s = this.#state(e.domain, b);
    s.failures = 0;
    if (s.probing) {
      // The dead destination answered: it starts again where a new one starts.
      s.probing = false;
      s.window = this.initial;
      s.credit = 0;
      return;
    }
    s.credit += feedback(this.#positive, s.window);
    while (s.credit >= 1 - EPSILON) {
      s.credit -= 1;
      if (s.window < this.max) s.window++;
    }
    if (s.window >= this.max) s.credit = Math.min(s.credit, 0);
  };

  readonly #onConnectionFailed = (e: ConnectionFailedEvent): void => {
    if (!e.permanent) this.#failed(e.domain, e.binding);
  };

  readonly #onDeferred = (e: DeferredEvent): void => {
    // A session that broke or a 421 in a session; a refusal of one message is not about the connection.
    if (e.sessionBroken === true || e.code === 421) this.#failed(e.domain, e.binding);
  };

  #failed(domain: string, binding: string): void {
    const b = this.#core.bindings.indexOf(binding);
    if (b < 0) return;
    const s = this.#state(domain, b);
    s.failures++;
    s.credit -= feedback(this.#negative, s.window);
    while (s.credit <= -1 + EPSILON) {
      s.credit += 1;
      if (s.window > 1) s.window--;
    }
    if (s.window <= 1) s.credit = Math.max(s.credit, 0);
    // A pseudo-cohort is a window's worth of connections: that many failures in a row, with no
    // connection opened between them, `failedCohortLimit` times, and the destination is dead.
    if (s.probing || s.failures >= this.failedCohortLimit * s.window) {
      s.deadUntil = this.#now() + this.deadBackoffMs;
      s.probing = false;
      s.failures = 0;
    }
  }
}

/** Attaches feedback concurrency to a core (see FeedbackConcurrency). */
export function feedbackConcurrency(core: MailQueueCore, options?: FeedbackConcurrencyOptions): FeedbackConcurrency {
  return new FeedbackConcurrency(core, options);
}

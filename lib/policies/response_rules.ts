// Response rules: data that matches the replies receivers give (code, enhanced status code, text)
// per domain, and reacts for a while: no new connections for the pair, a lower connection cap, a
// connection rate, or the domain's queued mail bounced (docs/policies/response-rules.md). The
// rules act through a connectionGoal provider, so they only ever lower what the pass would open:
// every configured limit still holds, and an operator's suspend()/resume() is left alone.
import type { MailQueueCore } from '../core.js';
import type { BounceEvent, DeferredEvent } from '../delivery/events.js';
import { checkFunction, checkKeys, checkObject, typeName } from '../validate.js';
import { Attachment } from './attachment.js';
import type { ActiveQueue, DomainRecord } from '../views.js';

/** What a matching reply does, for `durationMs` from the match (a later match extends it). */
export type RuleAction =
  /** Nothing delivered on the pair: no new connection, and open ones take no further message
   *  (core.pause(): lifted by itself, separate from an operator's suspend/resume). */
  | { kind: 'suspend' }
  /** At most this many connections for the pair (the open ones above it are not closed). */
  | { kind: 'maxConnections'; value: number }
  /** At most `connections` new connections for the pair in any `perMs`. */
  | { kind: 'throttle'; connections: number; perMs: number }
  /** The domain's queued mail bounces at once (core.fail(domain)); no duration. */
  | { kind: 'bounceQueue' };

export interface ResponseRule {
  /** Shown in the views and in the 'rule' events. */
  name: string;
  /** Every field given must match. */
  match: {
    /** The reply code, or one of several. */
    code?: number | readonly number[];
    /** The enhanced status code, or its start ('4.7.' matches 4.7.0 and 4.7.28). */
    enhanced?: string;
    /** A regular expression (source text, matched case-insensitively) on the reply text. */
    text?: string;
    /** The destination: a domain, or '*.' and a domain for every domain under it. */
    domain?: string;
  };
  action: RuleAction;
  /** How long the action holds, ms (not for bounceQueue). */
  durationMs?: number;
}

/** A rule in force on a pair, as `active()` lists it. */
export interface ActiveRule {
  rule: string;
  domain: string;
  binding: string;
  action: RuleAction;
  /** When it ends (ms). */
  until: number;
  /** Replies that matched it while it held (the first included). */
  matches: number;
}

interface Compiled {
  rule: ResponseRule;
  codes: ReadonlySet<number> | undefined;
  enhanced: string | undefined;
  text: RegExp | undefined;
  domain: string | undefined;
  suffix: boolean;
}

interface Held {
  compiled: Compiled;
  until: number;
  matches: number;
  /** throttle: when the pair's recent connections were granted (ms), oldest first. */
  opened: number[];
}

const RULE_KEYS = new Set(['name', 'match', 'action', 'durationMs']);
const MATCH_KEYS = new Set(['code', 'enhanced', 'text', 'domain']);
const ENHANCED = /^[245](\.\d{1,3}){0,2}\.?$/;

function compile(r: unknown, at: string): Compiled {
  const o = checkObject(r, at);
  checkKeys(o, RULE_KEYS, at);
  if (typeof o.name !== 'string' || o.name === '') throw new TypeError(`${at}.name must be a non-empty string`);
  const m = checkObject(o.match, `${at}.match`);
  checkKeys(m, MATCH_KEYS, `${at}.match`);
  let codes: Set<number> | undefined;
  if (m.code !== undefined) {
    const list = Array.isArray(m.code) ? m.code : [m.code];
    for (const c of list)
      if (typeof c !== 'number' || !Number.isInteger(c) || c < 200 || c > 599)
        throw new RangeError(`${at}.match.code must be SMTP reply codes (200-599), got ${String(c)}`);
    codes = new Set(list as number[]);
  }
  if (m.enhanced !== undefined && (typeof m.enhanced !== 'string' || !ENHANCED.test(m.enhanced)))
    throw new RangeError(
      `${at}.match.enhanced must be an enhanced status code or its start, such as "4.7.", got ${String(m.enhanced)}`,
    );
  let text: RegExp | undefined;
  if (m.text !== undefined) {
    if (typeof m.text !== 'string') throw new TypeError(`${at}.match.text must be a string, got ${typeName(m.text)}`);
    try {
      text = new RegExp(m.text, 'i');
    } catch (err) {
      throw new RangeError(`${at}.match.text is not a regular expression: ${(err as Error).message}`);
    }
  }
  let domain: string | undefined;
  let suffix = false;
  if (m.domain !== undefined) {
    if (typeof m.domain !== 'string' || m.domain === '' || m.domain === '*.')
      throw new TypeError(`${at}.match.domain must be a domain or "*." and a domain, got ${String(m.domain)}`);
    suffix = m.domain.startsWith('*.');
    domain = (suffix ? m.domain.slice(1) : m.domain).toLowerCase();
  }
  const a = checkObject(o.action, `${at}.action`);
  const count = (v: unknown, name: string) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535)
      throw new RangeError(`${at}.action.${name} must be a whole number from 0 to 65535, got ${String(v)}`);
  };
  switch (a.kind) {
    case 'suspend':
    case 'bounceQueue':
      checkKeys(a, new Set(['kind']), `${at}.action`);
      break;
    case 'maxConnections':
      checkKeys(a, new Set(['kind', 'value']), `${at}.action`);
      count(a.value, 'value');
      break;
    case 'throttle':
      checkKeys(a, new Set(['kind', 'connections', 'perMs']), `${at}.action`);
      count(a.connections, 'connections');
      if (typeof a.perMs !== 'number' || !(a.perMs > 0) || !Number.isFinite(a.perMs))
        throw new RangeError(`${at}.action.perMs must be a positive number of ms, got ${String(a.perMs)}`);
      break;
    default:
      throw new RangeError(
        `${at}.action.kind must be "suspend", "maxConnections", "throttle" or "bounceQueue", got ${String(a.kind)}`,
      );
  }
  if (a.kind !== 'bounceQueue') {
    const d = o.durationMs;
    if (typeof d !== 'number' || !(d > 0) || !Number.isFinite(d))
      throw new RangeError(`${at}.durationMs must be a positive number of ms, got ${String(d)}`);
  }
  return {
    rule: o as unknown as ResponseRule,
    codes,
    enhanced: m.enhanced as string | undefined,
    text,
    domain,
    suffix,
  };
}

/** The enhanced status code at the start of a reply text ("4.7.0 Try again later"), if any. */
function enhancedOf(text: string): string | undefined {
  const m = /^\s*(?:\d{3}[ -])?([245]\.\d{1,3}\.\d{1,3})\b/.exec(text);
  return m?.[1];
}

function matches(c: Compiled, domain: string, code: number | undefined, text: string): boolean {
  if (c.codes !== undefined && (code === undefined || !c.codes.has(code))) return false;
  if (c.domain !== undefined) {
    const d = domain.toLowerCase();
    if (c.suffix ? !d.endsWith(c.domain) : d !== c.domain) return false;
  }
  if (c.enhanced !== undefined) {
    const e = enhancedOf(text);
    if (
      e === undefined ||
      !(e === c.enhanced || e.startsWith(c.enhanced.endsWith('.') ? c.enhanced : `${c.enhanced}.`))
    )
      return false;
  }
  return c.text === undefined || c.text.test(text);
}

export interface ResponseRulesOptions {
  /** The clock (ms); default the core's own (`core.now()`). */
  now?: () => number;
  /** Called when a rule starts to hold on a pair (or a bounceQueue rule fires). */
  onMatch?: (active: ActiveRule) => void;
}

/** The rules, attached to one core: `detach()` takes them off again. */
export class ResponseRules {
  readonly #core: MailQueueCore;
  readonly #rules: Compiled[];
  readonly #now: () => number;
  readonly #onMatch: ((a: ActiveRule) => void) | undefined;
  /** By domain name, then binding slot: the rules holding there. */
  readonly #held = new Map<string, Map<number, Held[]>>();
  readonly #attachment: Attachment;

  constructor(core: MailQueueCore, rules: readonly ResponseRule[], options: ResponseRulesOptions = {}) {
    if (!Array.isArray(rules)) throw new TypeError(`rules must be an array, got ${typeName(rules)}`);
    this.#rules = rules.map((r, i) => compile(r, `rules[${i}]`));
    const o = checkObject(options, 'options');
    checkKeys(o, new Set(['now', 'onMatch']), 'options', 'option');
    if (o.now !== undefined) checkFunction(o.now, 'options.now');
    if (o.onMatch !== undefined) checkFunction(o.onMatch, 'options.onMatch');
    this.#now = (o.now as (() => number) | undefined) ?? (() => core.now());
    this.#onMatch = o.onMatch as ((a: ActiveRule) => void) | undefined;
    this.#core = core;
    const forgotten = (e: { domain: string }) => this.#held.delete(e.domain);
    const listeners = { deferred: this.#onDeferred, bounce: this.#onBounce, domainForgotten: forgotten };
    this.#attachment = new Attachment(core, listeners, this.#provider, {
      kind: 'responseRules',
      state: () => ({ rules: this.#rules.map((c) => c.rule.name), active: this.active() }),
    });
  }

  /** Takes the rules off their core; what they held is lifted. */
  detach(): void {
    const holding = this.active();
    if (!this.#attachment.detach()) return;
    for (const a of holding)
      if (a.action.kind === 'suspend' && this.#core.hasDomain(a.domain)) this.#core.pause(a.domain, a.binding, 0);
    this.#held.clear();
  }

  /** The rules holding now, on every pair. */
  active(): ActiveRule[] {
    const now = this.#now();
    const out: ActiveRule[] = [];
    for (const [domain, bySlot] of this.#held)
      for (const [b, list] of bySlot)
        for (const h of list)
          if (h.until > now)
            out.push({
              rule: h.compiled.rule.name,
              domain,
              binding: this.#core.bindings[b],
              action: h.compiled.rule.action,
              until: h.until,
              matches: h.matches,
            });
    return out;
  }

  readonly #onDeferred = (e: DeferredEvent): void => this.#reply(e.domain, e.binding, e.code, e.response);
  readonly #onBounce = (e: BounceEvent): void => {
    if (e.domain !== undefined && e.binding !== undefined && e.response !== undefined)
      this.#reply(e.domain, e.binding, e.code, e.response);
  };

  #reply(domain: string, binding: string, code: number | undefined, text: string): void {
    const b = this.#core.bindings.indexOf(binding);
    if (b < 0) return;
    for (const c of this.#rules) {
      if (!matches(c, domain, code, text)) continue;
      const now = this.#now();
      const action = c.rule.action;
      if (action.kind === 'bounceQueue') {
        this.#onMatch?.({ rule: c.rule.name, domain, binding, action, until: now, matches: 1 });
        // After this event's own handling: the message that matched is not queued any more.
        queueMicrotask(() => {
          if (this.#attachment.attached && this.#core.hasDomain(domain)) this.#core.fail(domain);
        });
        continue;
      }
      let bySlot = this.#held.get(domain);
      if (bySlot === undefined) this.#held.set(domain, (bySlot = new Map()));
      let list = bySlot.get(b);
      if (list === undefined) bySlot.set(b, (list = []));
      const until = now + (c.rule.durationMs as number);
      const h = list.find((x) => x.compiled === c);
      if (h !== undefined && h.until > now) {
        if (until > h.until && action.kind === 'suspend') this.#core.pause(domain, binding, until - now);
        h.until = Math.max(h.until, until);
        h.matches++;
        continue;
      }
      const fresh: Held = { compiled: c, until, matches: 1, opened: [] };
      if (h !== undefined) list[list.indexOf(h)] = fresh;
      else list.push(fresh);
      if (action.kind === 'suspend') this.#core.pause(domain, binding, until - now);
      this.#onMatch?.({ rule: c.rule.name, domain, binding, action, until, matches: 1 });
    }
  }

  readonly #provider = (_closure: unknown, dr: DomainRecord, b: number, _sl: ActiveQueue, goal: { value: number }) => {
    if (goal.value <= 0) return 0;
    const list = this.#held.get(dr.name)?.get(b);
    if (list === undefined) return 0;
    const now = this.#now();
    const open = dr.connections(b);
    let kept = 0;
    for (const h of list) {
      if (h.until <= now) continue;
      list[kept++] = h;
      const a = h.compiled.rule.action;
      if (a.kind === 'suspend') goal.value = Math.min(goal.value, open);
      else if (a.kind === 'maxConnections') goal.value = Math.min(goal.value, Math.max(a.value, 0));
      else if (a.kind === 'throttle') {
        while (h.opened.length > 0 && h.opened[0] <= now - a.perMs) h.opened.shift();
        const room = Math.max(0, a.connections - h.opened.length);
        const cap = open + room;
        if (goal.value > cap) goal.value = cap;
        // What this pass may open under the throttle is taken as opened (a grant the pass does not
        // make for another limit uses up a slot it did not use: the throttle errs on the low side).
        for (let i = open; i < goal.value; i++) h.opened.push(now);
      }
    }
    list.length = kept;
    if (kept === 0) this.#held.get(dr.name)?.delete(b);
    return 0;
  };
}

/** Attaches response rules to a core (see ResponseRules). */
export function responseRules(
  core: MailQueueCore,
  rules: readonly ResponseRule[],
  options?: ResponseRulesOptions,
): ResponseRules {
  return new ResponseRules(core, rules, options);
}

// A starting set of response rules for the rate-limit and reputation replies that large mailbox
// providers document (docs/policies/response-rules.md lists each with the reply it answers). They
// match on the reply's text and code, not on the domain, because the same receivers answer for
// many domains (hosted mail). Durations are our choice: long enough that the next attempt does
// not meet the same reply, short enough that mail is not held long after the receiver recovers.
import type { ResponseRule } from './response_rules.js';

const MINUTE = 60_000;

export const DEFAULT_RESPONSE_RULES: readonly ResponseRule[] = Object.freeze([
  {
    // Gmail: "421-4.7.28 ... Our system has detected an unusual rate of unsolicited mail
    // originating from your IP address" (4.7.0 in older replies).
    name: 'gmail-unusual-rate',
    match: { code: 421, text: 'unusual rate of unsolicited mail' },
    action: { kind: 'maxConnections', value: 1 },
    durationMs: 30 * MINUTE,
  },
  {
    // Gmail: "421-4.7.0 Try again later, closing connection."
    name: 'gmail-try-again-later',
    match: { code: 421, enhanced: '4.7.0', text: 'try again later, closing connection' },
    action: { kind: 'throttle', connections: 1, perMs: MINUTE },
    durationMs: 10 * MINUTE,
  },
  {
    // Yahoo and AOL: "421 4.7.0 [TSS04] Messages from <ip> temporarily deferred due to unexpected
    // volume or user complaints" (TSS09 for a sending IP on a block list, TS03 for deferrals of
    // a long-standing pattern).
    name: 'yahoo-temporarily-deferred',
    match: { code: 421, text: '\\[(TSS04|TSS09|TS03)\\]' },
    action: { kind: 'suspend' },
    durationMs: 30 * MINUTE,
  },
  {
    // Microsoft (Outlook.com, Hotmail): "451 4.7.650 The mail server [<ip>] has been temporarily
    // rate limited due to IP reputation." and "4.7.500 Server busy. Please try again later".
    name: 'microsoft-rate-limited',
    match: { text: '4\\.7\\.(650|500)|temporarily rate limited|server busy' },
    action: { kind: 'throttle', connections: 2, perMs: MINUTE },
    durationMs: 15 * MINUTE,
  },
  {
    // Any receiver: a 421 that says it has too many connections from us.
    name: 'too-many-connections',
    match: { code: 421, text: 'too many (concurrent |simultaneous )?connections|connection limit' },
    action: { kind: 'throttle', connections: 1, perMs: 10_000 },
    durationMs: 5 * MINUTE,
  },
]);

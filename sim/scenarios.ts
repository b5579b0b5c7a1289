// The simulator's named scenarios: a receiver model and a workload, each run once per policy so
// the policies compare on the same traffic (docs/simulator.md).
import {
  DEFAULT_RESPONSE_RULES,
  feedbackConcurrency,
  type MailQueueCore,
  type ResponseRule,
  responseRules,
} from '../lib/index.js';
import type { ReceiverSpec } from './receiver_model.js';
import type { AttachedPolicy, SimulationOptions } from './simulation.js';

export interface Variant {
  name: string;
  policy?: (core: MailQueueCore) => AttachedPolicy;
}

export interface Scenario {
  name: string;
  what: string;
  minutes: number;
  receiver: ReceiverSpec;
  backlog: number;
  arrivalsPerMinute: number;
  variants: Variant[];
}

const MINUTE = 60_000;
const latency = { connectMs: [30, 120] as [number, number], messageMs: [80, 400] as [number, number] };

/** Retries a minute apart, so a run of an hour sees many of them. */
export const SIM_CONFIG = {
  global: {
    maxOutboundConnections: 20,
    connectionAllocationAggressiveness: 1,
    retryInterval: 60,
    maxRetryInterval: 300,
    hostFailureRetry: 30,
    idleTimeout: 30,
    delayedQueueScanInterval: 5,
    messageExpiration: 86_400,
  },
};

const STATIC: Variant = { name: 'static cap 20' };
const FEEDBACK: Variant = { name: 'feedback concurrency', policy: (core) => feedbackConcurrency(core) };
const RULES: Variant = {
  name: 'default response rules',
  policy: (core) => responseRules(core, DEFAULT_RESPONSE_RULES),
};

/** A rule that pauses the pair on the [TSS04] reply for 10 minutes (the suspend scenario's). */
export const TSS04_RULE: ResponseRule = {
  name: 'tss04',
  match: { code: 421, text: '\\[TSS04\\]' },
  action: { kind: 'suspend' },
  durationMs: 10 * MINUTE,
};

/** A scenario of `minutes` (default 30) against `receiver` (on top of the common latencies). */
function scenario(
  name: string,
  what: string,
  receiver: Partial<ReceiverSpec>,
  load: { backlog: number; perMinute: number; minutes?: number },
  variants: Variant[],
): Scenario {
  const { backlog, perMinute, minutes = 30 } = load;
  return {
    name,
    what,
    minutes,
    receiver: { ...latency, ...receiver },
    backlog,
    arrivalsPerMinute: perMinute,
    variants,
  };
}

export const SCENARIOS: Scenario[] = [
  scenario(
    'hidden-limit',
    'a receiver that takes 7 connections and answers 421 at the greeting beyond them',
    { maxConnections: 7 },
    { backlog: 20_000, perMinute: 1_000 },
    [STATIC, FEEDBACK],
  ),
  scenario(
    'rate-limit',
    'a receiver that accepts 1,200 messages a minute and answers Gmail\'s 421 "try again later" beyond',
    { perMinute: 1_200 },
    { backlog: 30_000, perMinute: 1_000 },
    [STATIC, RULES],
  ),
  scenario(
    'greylisting',
    'a receiver that answers 451 4.7.1 to the first attempt of every message, and takes it 5 minutes later',
    { greylistMs: 5 * MINUTE },
    { backlog: 2_000, perMinute: 200 },
    [STATIC, FEEDBACK],
  ),
  scenario(
    'outage',
    'a receiver that refuses every connection from minute 10 to minute 25',
    { down: { from: 10 * MINUTE, to: 25 * MINUTE } },
    { backlog: 5_000, perMinute: 500, minutes: 45 },
    [STATIC, FEEDBACK],
  ),
  scenario(
    'suspend',
    'a receiver that answers 421 [TSS04] to every message during minutes 5 to 7',
    {
      replyWindow: {
        from: 5 * MINUTE,
        to: 7 * MINUTE,
        code: 421,
        text: '421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume',
      },
    },
    { backlog: 5_000, perMinute: 600 },
    [STATIC, { name: 'rule: pause 10 min on [TSS04]', policy: (core) => responseRules(core, [TSS04_RULE]) }],
  ),
];

/** The options of one run of a scenario's variant. */
export function runOptions(s: Scenario, v: Variant, seed: number): SimulationOptions {
  return {
    seed,
    minutes: s.minutes,
    receiver: s.receiver,
    backlog: s.backlog,
    arrivalsPerMinute: s.arrivalsPerMinute,
    config: SIM_CONFIG,
    policy: v.policy,
  };
}

// The simulator (sim/): the real core and delivery layer on a fake clock against modelled
// receivers. Fixed seeds: feedback concurrency against a hidden limit, a response rule's pause,
// and the same seed giving the same timeline.
import { describe, expect, test } from 'vitest';

import { runOptions, SCENARIOS, type Scenario } from '../../sim/scenarios.js';
import { runSimulation, type SimulationResult } from '../../sim/simulation.js';

function scenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (s === undefined) throw new Error(`no scenario ${name}`);
  return s;
}

async function run(name: string, variant: number, minutes: number, seed = 7): Promise<SimulationResult> {
  const s = scenario(name);
  return runSimulation({ ...runOptions(s, s.variants[variant], seed), minutes });
}

describe('feedback concurrency against a receiver that takes 7 connections', () => {
  test('the window is at 6-7 from the end of the second simulated minute on, with far fewer 421s than a static cap of 20', async () => {
    const fixed = await run('hidden-limit', 0, 10);
    const learnt = await run('hidden-limit', 1, 10);
    expect(scenario('hidden-limit').variants.map((v) => v.name)).toEqual(['static cap 20', 'feedback concurrency']);
    for (const r of learnt.rows.slice(1)) {
      expect(r.window, `minute ${r.minute}`).toBeGreaterThanOrEqual(6);
      expect(r.window, `minute ${r.minute}`).toBeLessThanOrEqual(7);
    }
    // The receiver refuses beyond 7, so its count cannot pass 7; that it reaches 7 with the policy
    // too shows the window uses all the receiver takes. What differs is the 421s.
    expect(fixed.totals.peakOpen).toBe(7);
    expect(learnt.totals.peakOpen).toBe(7);
    expect(learnt.totals.refusedConnections).toBeLessThan(fixed.totals.refusedConnections / 10);
    // After the first two minutes the policy meets no refusal at all.
    expect(learnt.rows.slice(2).reduce((n, r) => n + r.refusedConnections, 0)).toBe(0);
    // And it delivers as much: the receiver's 7 connections are the bound for both.
    expect(learnt.totals.accepted).toBeGreaterThanOrEqual(fixed.totals.accepted * 0.95);
  }, 120_000);
});

describe('a response rule', () => {
  test('pauses the pair on a matching 421 and resumes when its 10 minutes are over', async () => {
    const fixed = await run('suspend', 0, 20);
    const ruled = await run('suspend', 1, 20);
    const minute = (r: SimulationResult, m: number) => r.rows[m - 1];
    // The receiver answers [TSS04] from 5:00 to 7:00. Without the rule, the core keeps trying
    // through the window (hundreds of refusals) and delivers again from 7:00.
    expect(minute(fixed, 6).windowReplies + minute(fixed, 7).windowReplies).toBeGreaterThan(500);
    expect(minute(fixed, 8).accepted).toBeGreaterThan(0);
    // With it, the first replies pause the pair (the connections open then each get one), and
    // nothing is tried or delivered until 10 minutes after the first match (about 15:00).
    expect(minute(ruled, 6).windowReplies).toBeGreaterThan(0);
    expect(minute(ruled, 6).windowReplies).toBeLessThanOrEqual(20);
    for (let m = 7; m <= 15; m++) {
      expect(minute(ruled, m).accepted, `minute ${m}`).toBe(0);
      expect(minute(ruled, m).windowReplies, `minute ${m}`).toBe(0);
      expect(minute(ruled, m).peakOpen, `minute ${m}`).toBe(0);
    }
    expect(minute(ruled, 16).accepted).toBeGreaterThan(0);
    // Nothing is lost: what waited is delivered by the end.
    expect(ruled.totals.accepted + ruled.totals.queuedAtEnd).toBe(ruled.totals.submitted);
  }, 120_000);
});

test('the same seed gives the same timeline; another seed another one', async () => {
  const a = await run('hidden-limit', 1, 4, 42);
  const b = await run('hidden-limit', 1, 4, 42);
  const c = await run('hidden-limit', 1, 4, 43);
  expect(b).toEqual(a);
  expect(c.rows).not.toEqual(a.rows);
}, 120_000);

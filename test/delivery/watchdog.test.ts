// The Watchdog of the delivery hot path (lib/watchdog.ts): one timer re-armed per use. Fake timers:
// what is checked is which arm() a firing belongs to, not how long anything takes.
import { afterEach, beforeEach, expect, test, vi } from 'vitest';

import { Watchdog } from '../../lib/watchdog.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

test('fires once, ms after the latest arm(); re-arming moves the deadline; disarm() cancels it', () => {
  let fired = 0;
  const w = new Watchdog(100, () => fired++);
  w.arm();
  vi.advanceTimersByTime(99);
  expect(fired).toBe(0);
  vi.advanceTimersByTime(1);
  expect(fired).toBe(1);
  expect(w.armed).toBe(false);
  vi.advanceTimersByTime(1000);
  expect(fired).toBe(1); // once per arm()

  w.arm();
  vi.advanceTimersByTime(60);
  w.arm(); // re-armed: the deadline is 100 from here
  vi.advanceTimersByTime(60);
  expect(fired).toBe(1);
  vi.advanceTimersByTime(40);
  expect(fired).toBe(2);

  w.arm();
  vi.advanceTimersByTime(50);
  w.disarm();
  vi.advanceTimersByTime(500);
  expect(fired).toBe(2);

  // Armed again after a disarm (and after the timer ran out disarmed): a full period again.
  w.arm();
  vi.advanceTimersByTime(99);
  expect(fired).toBe(2);
  vi.advanceTimersByTime(1);
  expect(fired).toBe(3);
  w.dispose();
});

test('dispose() frees the timer: nothing fires; a later arm() starts afresh', () => {
  let fired = 0;
  const w = new Watchdog(10, () => fired++, true);
  w.arm();
  w.dispose();
  vi.advanceTimersByTime(100);
  expect(fired).toBe(0);
  expect(vi.getTimerCount()).toBe(0);
  w.arm();
  vi.advanceTimersByTime(10);
  expect(fired).toBe(1);
  w.dispose();
  expect(vi.getTimerCount()).toBe(0);
});

test('many arms make one timer', () => {
  const w = new Watchdog(1000, () => undefined);
  for (let i = 0; i < 100; i++) {
    w.arm();
    w.disarm();
  }
  expect(vi.getTimerCount()).toBe(1);
  w.dispose();
});

// Request and reply with the SMTP servers' worker thread, shared by the demo (npm start) and the
// soak test (npm run soak). ask(type, msg) posts msg (if any) and waits for the worker's next
// message of that type; 'error' messages are collected, and fail a pending ask until the servers
// are up; other messages go to `other` first (true: handled). A worker that dies ends the process.
import type { Worker } from 'node:worker_threads';

export interface WorkerRpc<From extends { type: string }, To> {
  ask<T extends From['type']>(type: T, msg?: To): Promise<Extract<From, { type: T }>>;
  /** The worker's 'error' messages, in order. */
  readonly errors: string[];
  /** The servers are up: later 'error' messages are only collected. */
  serversUp(): void;
}

export function workerRpc<From extends { type: string }, To>(worker: Worker, other?: (m: From) => boolean): WorkerRpc<From, To> {
  const errors: string[] = [];
  let pending: { type: string; resolve: (m: From) => void; reject: (e: Error) => void } | undefined;
  let up = false;
  worker.on('message', (m: From) => {
    if (other?.(m)) return;
    if (m.type === 'error') {
      const message = String((m as { message?: unknown }).message);
      errors.push(message);
      if (!up && pending) pending.reject(new Error(`the SMTP servers did not start: ${message}`));
      return;
    }
    if (pending && pending.type === m.type) {
      const p = pending;
      pending = undefined;
      p.resolve(m);
    }
  });
  worker.on('error', (err) => {
    console.error(`server worker failed: ${err.stack ?? err.message}`);
    process.exit(1);
  });
  return {
    errors,
    serversUp: () => {
      up = true;
    },
    ask: <T extends From['type']>(type: T, msg?: To) =>
      new Promise<Extract<From, { type: T }>>((resolve, reject) => {
        pending = { type, resolve: resolve as (m: From) => void, reject };
        if (msg) worker.postMessage(msg);
      }),
  };
}

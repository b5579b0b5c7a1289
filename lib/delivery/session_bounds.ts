// Opening and ending a connection's transport session within bounds (see the top of
// connection.ts): an open() that never settles is given up on after the delivery timeout (and the
// session it may still bring is aborted), and a session is ended with close() or abort() waiting at
// most CLOSE_TIMEOUT_MS for each, so that a transport that hangs can never hold a lease for ever.
import type { DeliveryTarget, Transport, TransportSession } from '../transport/transport.js';

export const CLOSE_TIMEOUT_MS = 10_000;

/** Resolves true once `p` settles (fulfilled or rejected), false after ms. Never rejects. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** Starts abort(), or close() for a transport without it; throws nothing. */
export function abortSession(session: TransportSession): Promise<void> {
  try {
    return session.abort ? session.abort() : session.close();
  } catch (err) {
    return Promise.reject(err);
  }
}

function closeSession(session: TransportSession): Promise<void> {
  try {
    return session.close();
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Ends a session before its lease goes back (see the top of this file): abort() when given up
 * on, else close(), and abort() when close() has not finished within CLOSE_TIMEOUT_MS. Waits at
 * most 2 * CLOSE_TIMEOUT_MS. Never rejects.
 */
export async function endSession(session: TransportSession, givenUp: boolean): Promise<void> {
  if (givenUp && session.abort) {
    await within(abortSession(session), CLOSE_TIMEOUT_MS);
    return;
  }
  if (await within(closeSession(session), CLOSE_TIMEOUT_MS)) return;
  if (session.abort) await within(abortSession(session), CLOSE_TIMEOUT_MS);
}

export class OpenTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(
    message: string,
    readonly late: Promise<void>,
  ) {
    super(message);
  }
}

/** An open() given up on may still bring a session: abort it whenever it comes. The returned
 *  promise, which the lease waits for, settles when that is done or the open failed, or after
 *  CLOSE_TIMEOUT_MS with the open still pending (then the lease goes back on trust: an open()
 *  that never settles must not hold it for ever). */
async function lateOpen(opening: Promise<TransportSession>): Promise<void> {
  const ended = opening.then(
    (s) => endSession(s, true),
    () => undefined,
  );
  if (await within(opening, CLOSE_TIMEOUT_MS)) await ended;
}

// A transport whose open() never settles must not hold the lease for ever: give up after the
// delivery timeout (OpenTimeoutError), and abort the session if it turns up later.
export async function openWithTimeout(
  transport: Transport,
  target: DeliveryTarget,
  timeoutMs: number,
): Promise<TransportSession> {
  let timer: NodeJS.Timeout | undefined;
  const opening = transport.open(target);
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new OpenTimeoutError(`no session from the transport within ${timeoutMs} ms`, lateOpen(opening)));
    }, timeoutMs);
  });
  try {
    return await Promise.race([opening, watchdog]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

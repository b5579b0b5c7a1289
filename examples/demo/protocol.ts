// The messages between the demo (main thread) and its SMTP servers (a worker thread, so that the
// servers count their connections on their own event loop and the demo gets a second core).

export type ServerKind = 'fast' | 'slow' | 'flaky' | 'tight';

export interface ServerSpec {
  name: string;
  kind: ServerKind;
  /** slow: the reply to the final dot comes this many ms late (uniform in [min, max]). */
  delayMs?: [number, number];
  /** flaky: this share of messages is answered 451 at the final dot. */
  failRate?: number;
  /** tight: a connection beyond this many open ones is refused with 421 in onConnect. */
  refuseAbove?: number;
}

export interface WorkerInit {
  servers: ServerSpec[];
  seed: number;
  /** Source address -> the EHLO name its binding must send. */
  ehloBySource: Record<string, string>;
  /** Recipients with this local part are refused with 550 at RCPT (permanent failures). */
  unknownUser: string;
}

export interface ServerStats {
  name: string;
  kind: ServerKind;
  /** Connections that reached onConnect (refused ones included). */
  connections: number;
  /** Open now, and the most that were open at once, as this server counted them. */
  open: number;
  peak: number;
  refused: number;
  accepted: number;
  /** 451 at the final dot (flaky), 550 at RCPT (unknown user). */
  deferred451: number;
  rejected550: number;
  /** Sessions that carried mail for more than one domain (the core's sibling migration). */
  multiDomainSessions: number;
  /** Mail transactions per source address. */
  sources: Record<string, number>;
  /** MAIL FROM on a session whose EHLO name is not the one of its source address. */
  ehloMismatches: number;
}

export interface AllStats {
  servers: ServerStats[];
  /** Connections open at once over every server, and per source address (server-counted). */
  globalPeak: number;
  globalOpen: number;
  peakBySource: Record<string, number>;
  /** Every message id accepted (250 after the dot), in order; duplicates included. */
  acceptedIds: Float64Array;
}

export type ToWorker = { type: 'stats'; withIds: boolean } | { type: 'close' };
export type FromWorker =
  | { type: 'ready'; ports: Record<string, number> }
  | { type: 'stats'; stats: AllStats }
  | { type: 'closed' }
  | { type: 'error'; message: string };

/** The message id is carried in the envelope sender: b-<id>@sender.demo.test. */
export function senderFor(id: number): string {
  return `b-${id}@sender.demo.test`;
}

export function idFromSender(from: string): number | undefined {
  const m = /^b-(\d+)@sender\.demo\.test$/.exec(from);
  return m ? Number(m[1]) : undefined;
}

/** mulberry32: a small seeded PRNG, so that --seed repeats a workload. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

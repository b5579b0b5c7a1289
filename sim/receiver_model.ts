// A simulated receiver: the behaviour a policy meets, as a model (docs/simulator.md). Every
// decision it makes depends on the simulated clock and its own seeded random numbers, so a run
// is the same every time for the same seed.

/** What a receiver does; every field but latencies is optional. */
export interface ReceiverSpec {
  /** Time to connect and be greeted, ms: uniform in [min, max]. */
  connectMs: [number, number];
  /** Time from a message's MAIL FROM to the reply after its final dot, ms: uniform in [min, max]. */
  messageMs: [number, number];
  /** Connections it takes at once; one more is answered 421 at the greeting (a hidden limit). */
  maxConnections?: number;
  /** Messages it accepts in any 60 s; beyond, a 421 that closes the connection. */
  perMinute?: number;
  /** The reply text of that 421 (default: Gmail's "try again later"). */
  rateLimitReply?: string;
  /** Greylisting: a message's first attempt gets 451 4.7.1; it is accepted from this many ms after. */
  greylistMs?: number;
  /** Down from `from` to `to`, ms after the start: connections refused, open ones dropped. */
  down?: { from: number; to: number };
  /** Every message is answered this reply while `from` <= t < `to` (ms after the start). */
  replyWindow?: { from: number; to: number; code: number; text: string };
}

/** What the receiver counted, for the timeline. */
export interface ReceiverBooks {
  open: number;
  peakOpen: number;
  accepted: number;
  refusedConnections: number;
  rateLimited: number;
  greylisted: number;
  downRefusals: number;
  windowReplies: number;
}

export type Verdict =
  | { kind: 'accept' }
  | {
      kind: 'reply';
      code: number;
      text: string;
      closes: boolean;
      counted: 'rateLimited' | 'greylisted' | 'windowReplies';
    };

export class ReceiverModel {
  readonly books: ReceiverBooks = {
    open: 0,
    peakOpen: 0,
    accepted: 0,
    refusedConnections: 0,
    rateLimited: 0,
    greylisted: 0,
    downRefusals: 0,
    windowReplies: 0,
  };
  /** When each of the last minute's accepted messages was accepted (ms), oldest first. */
  readonly #recent: number[] = [];
  /** A greylisted message's first attempt (ms), by id. */
  readonly #firstSeen = new Map<number, number>();

  constructor(
    readonly spec: ReceiverSpec,
    readonly start: number,
    private readonly random: () => number,
  ) {}

  #uniform([min, max]: [number, number]): number {
    return min + (max - min) * this.random();
  }

  connectDelay(): number {
    return this.#uniform(this.spec.connectMs);
  }

  messageDelay(): number {
    return this.#uniform(this.spec.messageMs);
  }

  /** Whether the receiver is down at `now` (a down receiver also drops the connections it had). */
  isDown(now: number): boolean {
    const t = now - this.start;
    const down = this.spec.down;
    return down !== undefined && t >= down.from && t < down.to;
  }

  /** A connection attempt at `now`: null when it is taken, else the reason it is refused. */
  connect(now: number): string | null {
    if (this.isDown(now)) {
      this.books.downRefusals++;
      return 'connect ECONNREFUSED (the simulated receiver is down)';
    }
    if (this.spec.maxConnections !== undefined && this.books.open >= this.spec.maxConnections) {
      this.books.refusedConnections++;
      return `421 4.7.0 Too many concurrent connections (${this.spec.maxConnections})`;
    }
    this.books.open++;
    if (this.books.open > this.books.peakOpen) this.books.peakOpen = this.books.open;
    return null;
  }

  disconnect(): void {
    this.books.open--;
  }

  /** The verdict on message `id` whose final dot arrives at `now`. */
  message(id: number, now: number): Verdict {
    const t = now - this.start;
    const w = this.spec.replyWindow;
    if (w !== undefined && t >= w.from && t < w.to)
      return this.#reply({
        kind: 'reply',
        code: w.code,
        text: w.text,
        closes: w.code === 421,
        counted: 'windowReplies',
      });
    if (this.spec.greylistMs !== undefined) {
      const first = this.#firstSeen.get(id);
      if (first === undefined || now - first < this.spec.greylistMs) {
        if (first === undefined) this.#firstSeen.set(id, now);
        return this.#reply({
          kind: 'reply',
          code: 451,
          text: '451 4.7.1 Greylisted, please try again later',
          closes: false,
          counted: 'greylisted',
        });
      }
      this.#firstSeen.delete(id);
    }
    if (this.spec.perMinute !== undefined) {
      while (this.#recent.length > 0 && this.#recent[0] <= now - 60_000) this.#recent.shift();
      if (this.#recent.length >= this.spec.perMinute)
        return this.#reply({
          kind: 'reply',
          code: 421,
          text: this.spec.rateLimitReply ?? '421 4.7.0 Try again later, closing connection.',
          closes: true,
          counted: 'rateLimited',
        });
      this.#recent.push(now);
    }
    this.books.accepted++;
    return { kind: 'accept' };
  }

  #reply(v: Verdict & { kind: 'reply' }): Verdict {
    this.books[v.counted]++;
    return v;
  }

  /** The books since the last call, with the peak reset to what is open now. */
  takeBooks(): ReceiverBooks {
    const b = { ...this.books };
    for (const k of Object.keys(this.books) as (keyof ReceiverBooks)[]) if (k !== 'open') this.books[k] = 0;
    this.books.peakOpen = this.books.open;
    return b;
  }
}

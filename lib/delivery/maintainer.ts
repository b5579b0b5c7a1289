// The maintainer: runs maintenance passes on its own while the core is started. A pass runs
// - every delayed_queue_scan_interval,
// - at the next delayed message's next-attempt time, when that comes sooner,
// - soon after mail arrives for a pair with no connection, or after a connection closes while its
//   queue still has mail (a short coalescing delay, so a burst of enqueues costs one pass),
// - again shortly when a pass left mail waiting with no connection at all (limits or throttles).
// Each pass's grants are handed to the delivery layer, which turns them into connections.

export interface MaintainerHost {
  /** Runs one pass; returns how long until the next one is wanted (ms), or Infinity. */
  runPass(): number;
  now(): number;
  /** A pass that threw: reported, and the maintainer goes on. */
  report(err: unknown): void;
}

export class Maintainer {
  #timer: NodeJS.Timeout | undefined;
  #at = Infinity;
  #running = false;

  constructor(
    private readonly host: MaintainerHost,
    private scanIntervalMs: number,
    private readonly coalesceMs = 5,
  ) {}

  get running(): boolean {
    return this.#running;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  stop(): void {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Infinity;
  }

  /** delayed_queue_scan_interval changed (configure()): from the next schedule on. */
  setScanInterval(ms: number): void {
    this.scanIntervalMs = ms;
  }

  /** Asks for a pass soon (coalesced with any already due). */
  poke(): void {
    if (this.#running) this.#schedule(this.coalesceMs);
  }

  #schedule(delayMs: number): void {
    const delay = Math.max(0, Math.min(delayMs, this.scanIntervalMs));
    const at = this.host.now() + delay;
    if (this.#timer && at >= this.#at) return; // one already comes sooner
    if (this.#timer) clearTimeout(this.#timer);
    this.#at = at;
    // Referenced: a started core keeps the process alive until stop(), as a server socket does.
    this.#timer = setTimeout(() => this.#fire(), delay);
  }

  /** Asks for a pass at time t (ms since the epoch), unless one comes sooner. */
  scheduleAt(t: number): void {
    if (this.#running && Number.isFinite(t)) this.#schedule(t - this.host.now());
  }

  #fire(): void {
    this.#timer = undefined;
    this.#at = Infinity;
    if (!this.#running) return;
    let next = this.scanIntervalMs;
    try {
      next = this.host.runPass();
    } catch (err) {
      // A pass that fails (a provider's bad result, a clock that returned garbage) must not end
      // maintenance: report it and run again at the usual interval.
      this.host.report(err);
    } finally {
      if (this.#running) this.#schedule(next);
    }
  }
}

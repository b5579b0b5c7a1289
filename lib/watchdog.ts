// Watchdog: a timeout made once and re-armed for every use, for the per-message deadlines of the
// delivery hot path (a connection's delivery timeout, a session's transaction and idle timers).
// A setTimeout and a clearTimeout per message allocate a Timeout (and its closure) each time, and
// even Timeout.refresh() moves the timer in Node's lists. Here arm() only notes the deadline
// (now + ms) when the timer is already running, and disarm() only clears a flag. The timer runs
// out at least `ms` after it was started; then, if armed and the deadline is still ahead, it runs
// again for what is left (a fresh timer, at most once per deadline), else it fires or does
// nothing. So it fires exactly once per arm(), at the latest arm()'s deadline, unless disarmed.
export class Watchdog {
  #timer: NodeJS.Timeout | undefined;
  /** The duration #timer was made with (refresh() restarts it with that one). */
  #timerMs = 0;
  /** The timer is counting (it has not run out since it was last started). */
  #running = false;
  #armed = false;
  #deadline = 0;

  /**
   * @param ms the deadline after arm(), 1 to 2^31 - 1
   * @param onFire called when an armed watchdog runs out (once; it is then disarmed)
   * @param keepAlive whether the timer keeps the process alive while it runs (armed or not: the
   *   owner disposes of it when done)
   * @param now the clock, in ms (monotonic by default)
   */
  constructor(
    readonly ms: number,
    private readonly onFire: () => void,
    private readonly keepAlive = false,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get armed(): boolean {
    return this.#armed;
  }

  /** Fires `ms` from now unless disarmed (or re-armed) before. */
  arm(): void {
    this.#deadline = this.now() + this.ms;
    this.#armed = true;
    if (this.#running) return;
    this.#start(this.ms);
  }

  disarm(): void {
    this.#armed = false;
  }

  /** Disarms and frees the timer (a later arm() makes a new one). */
  dispose(): void {
    this.#armed = false;
    this.#running = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #start(ms: number): void {
    this.#running = true;
    const t = this.#timer;
    if (t !== undefined && ms === this.#timerMs) {
      t.refresh(); // runs out again, for the full period
      return;
    }
    if (t !== undefined) clearTimeout(t);
    this.#timer = setTimeout(this.#ranOut, ms);
    this.#timerMs = ms;
    if (!this.keepAlive) this.#timer.unref();
  }

  readonly #ranOut = (): void => {
    this.#running = false;
    if (!this.#armed) return;
    const left = this.#deadline - this.now();
    if (left >= 1) {
      this.#start(Math.ceil(left));
      return;
    }
    this.#armed = false;
    this.onFire();
  };
}

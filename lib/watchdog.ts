// Watchdog: a timeout made once and re-armed for every use, for the per-message deadlines of the
// delivery hot path (a connection's delivery timeout, a session's transaction and idle timers).
// A setTimeout and a clearTimeout per message allocate a Timeout (and its closure) each time;
// arm() here restarts the same Timeout (Timeout.refresh()), and disarm() only clears a flag: the
// timer may still run out later, and then does nothing. It fires at most once per arm(), `ms`
// after the latest arm().
export class Watchdog {
  #timer: NodeJS.Timeout | undefined;
  #armed = false;

  /**
   * @param ms the deadline after arm(), 1 to 2^31 - 1
   * @param onFire called when an armed watchdog runs out (once; it is then disarmed)
   * @param keepAlive whether an armed watchdog keeps the process alive (a disarmed one never does)
   */
  constructor(
    readonly ms: number,
    private readonly onFire: () => void,
    private readonly keepAlive = false,
  ) {}

  get armed(): boolean {
    return this.#armed;
  }

  /** Fires `ms` from now unless disarmed (or re-armed) before. */
  arm(): void {
    const t = this.#timer;
    if (t === undefined) {
      this.#timer = setTimeout(this.#fire, this.ms);
      if (!this.keepAlive) this.#timer.unref();
    } else {
      t.refresh();
      if (this.keepAlive) t.ref();
    }
    this.#armed = true;
  }

  disarm(): void {
    this.#armed = false;
    if (this.keepAlive) this.#timer?.unref();
  }

  /** Disarms and frees the timer (a later arm() makes a new one). */
  dispose(): void {
    this.#armed = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #fire = (): void => {
    if (!this.#armed) return;
    this.#armed = false;
    if (this.keepAlive) this.#timer?.unref();
    this.onFire();
  };
}

// The simulator's transport: the library's Transport interface over ReceiverModels instead of
// sockets. Every wait is a timer, so under the simulator's fake clock a connection's life takes no
// real time. One receiver per domain.
import type {
  DeliveryTarget,
  OutboundMessage,
  Outcome,
  SendCallback,
  Transport,
  TransportSession,
} from '../lib/index.js';
import type { ReceiverModel } from './receiver_model.js';

/** An open failure the delivery layer treats as a failed connection attempt (transient). */
class SimOpenError extends Error {
  readonly transient = true;
  readonly permanent = false;
}

class SimSession implements TransportSession {
  #usable = true;
  #closed = false;

  constructor(
    private readonly receiver: ReceiverModel,
    private readonly now: () => number,
    readonly host: string,
  ) {}

  get usable(): boolean {
    return this.#usable;
  }

  send(message: OutboundMessage): Promise<Outcome> {
    return new Promise((resolve, reject) =>
      this.sendCallback(message, (err, outcome) => (err ? reject(err) : resolve(outcome as Outcome))),
    );
  }

  sendCallback(message: OutboundMessage, done: SendCallback): void {
    if (!this.#usable) {
      setTimeout(() => done(new Error('the simulated session is closed')), 0);
      return;
    }
    setTimeout(() => {
      if (this.#closed) {
        done(new Error('the simulated session was aborted'));
        return;
      }
      if (this.receiver.isDown(this.now())) {
        // The receiver went down under this session: the connection is reset mid-message.
        this.receiver.books.downRefusals++;
        this.#drop();
        done(new Error('connection reset (the simulated receiver is down)'));
        return;
      }
      const v = this.receiver.message(message.id, this.now());
      if (v.kind === 'accept') {
        done(null, { kind: 'delivered', response: '250 2.0.0 OK (simulated)' });
        return;
      }
      if (v.closes) this.#drop();
      const kind = v.code >= 500 ? 'permanent' : 'transient';
      done(null, { kind, code: v.code, response: v.text });
    }, this.receiver.messageDelay());
  }

  /** The receiver closes the connection (after a 421). */
  #drop(): void {
    if (this.#closed) return;
    this.#usable = false;
    this.#closed = true;
    this.receiver.disconnect();
  }

  close(): Promise<void> {
    this.#usable = false;
    return new Promise((resolve) =>
      setTimeout(() => {
        this.#drop();
        resolve();
      }, 1),
    );
  }

  abort(): Promise<void> {
    this.#usable = false;
    this.#drop();
    return Promise.resolve();
  }
}

export class SimTransport implements Transport {
  constructor(
    private readonly receivers: ReadonlyMap<string, ReceiverModel>,
    private readonly now: () => number,
  ) {}

  open(target: DeliveryTarget): Promise<TransportSession> {
    const receiver = this.receivers.get(target.domain);
    if (receiver === undefined) return Promise.reject(new SimOpenError(`no simulated receiver for ${target.domain}`));
    return new Promise((resolve, reject) =>
      setTimeout(() => {
        const refused = receiver.connect(this.now());
        if (refused !== null) reject(new SimOpenError(refused));
        else resolve(new SimSession(receiver, this.now, `mx.${target.domain}`));
      }, receiver.connectDelay()),
    );
  }

  mxKey(domain: string): string | undefined {
    return this.receivers.has(domain) ? `mx.${domain}` : undefined;
  }
}

// A policy's hold on one core: its event listeners and its connectionGoal provider, put on
// together and taken off together.
import type { MailQueueCore } from '../core.js';
import type { CoreEvents } from '../core/outbox.js';
import type { ConnectionGoalArgs } from '../core/maintenance_pass.js';
import type { Provider } from '../hook_point.js';

export type PolicyListeners = { [K in keyof CoreEvents]?: (...args: CoreEvents[K]) => void };

export class Attachment {
  readonly #core: MailQueueCore;
  readonly #listeners: PolicyListeners;
  readonly #unregister: () => void;
  #attached = true;

  constructor(core: MailQueueCore, listeners: PolicyListeners, provider: Provider<ConnectionGoalArgs>) {
    this.#core = core;
    this.#listeners = listeners;
    for (const [event, fn] of Object.entries(listeners)) core.on(event as keyof CoreEvents, fn as never);
    this.#unregister = core.hooks.connectionGoal.registerLast(provider);
  }

  get attached(): boolean {
    return this.#attached;
  }

  /** Takes the listeners and the provider off; false when they were off already. */
  detach(): boolean {
    if (!this.#attached) return false;
    this.#attached = false;
    this.#unregister();
    for (const [event, fn] of Object.entries(this.#listeners)) this.#core.off(event as keyof CoreEvents, fn as never);
    return true;
  }
}

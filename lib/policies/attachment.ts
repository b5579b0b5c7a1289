// A policy's hold on one core: its event listeners, its connectionGoal provider and its entry in
// the operator's views, put on together and taken off together.
import type { MailQueueCore } from '../core.js';
import type { CoreEvents } from '../core/outbox.js';
import type { ConnectionGoalArgs } from '../core/maintenance_pass.js';
import type { Provider } from '../hook_point.js';
import { listPolicy, type PolicyView } from './registry.js';

export type PolicyListeners = { [K in keyof CoreEvents]?: (...args: CoreEvents[K]) => void };

export class Attachment {
  readonly #core: MailQueueCore;
  readonly #listeners: PolicyListeners;
  readonly #unregister: () => void;
  readonly #unlist: () => void;
  #attached = true;

  /** `view`: what the admin API's GET /policies shows of the policy. */
  constructor(
    core: MailQueueCore,
    listeners: PolicyListeners,
    provider: Provider<ConnectionGoalArgs>,
    view: PolicyView,
  ) {
    this.#core = core;
    this.#listeners = listeners;
    for (const [event, fn] of Object.entries(listeners)) core.on(event as keyof CoreEvents, fn as never);
    this.#unregister = core.hooks.connectionGoal.registerLast(provider);
    this.#unlist = listPolicy(core, view);
  }

  get attached(): boolean {
    return this.#attached;
  }

  /** Takes the listeners and the provider off; false when they were off already. */
  detach(): boolean {
    if (!this.#attached) return false;
    this.#attached = false;
    this.#unregister();
    this.#unlist();
    for (const [event, fn] of Object.entries(this.#listeners)) this.#core.off(event as keyof CoreEvents, fn as never);
    return true;
  }
}

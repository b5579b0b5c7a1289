// The seed's C names for the __mail_queue_maintain hook, bound to one core, for people porting
// Momentum modules. Each is a thin alias of core.hooks.mailQueueMaintain; has_ returns 1 or 0 as
// the C function does.
import type { MailQueueCore } from './core.js';
import type { MailQueueMaintainArgs } from './core/maintenance_pass.js';
import type { Provider } from './hook_point.js';

export interface MomentumAliases {
  has_core___mail_queue_maintain_hook(): number;
  register_core___mail_queue_maintain_hook_first(fn: Provider<MailQueueMaintainArgs>, closure?: unknown): () => void;
  register_core___mail_queue_maintain_hook_last(fn: Provider<MailQueueMaintainArgs>, closure?: unknown): () => void;
  call_core___mail_queue_maintain_hook(...args: MailQueueMaintainArgs): number;
  /** The exported default, so that a provider can wrap it. The closure argument is ignored. */
  __mail_queue_maintain(closure: unknown, ...args: MailQueueMaintainArgs): number;
}

export function momentumAliases(core: MailQueueCore): MomentumAliases {
  const hook = core.hooks.mailQueueMaintain;
  return {
    has_core___mail_queue_maintain_hook: () => (hook.has() ? 1 : 0),
    register_core___mail_queue_maintain_hook_first: (fn, closure) => hook.registerFirst(fn, closure),
    register_core___mail_queue_maintain_hook_last: (fn, closure) => hook.registerLast(fn, closure),
    call_core___mail_queue_maintain_hook: (...args) => hook.call(...args),
    __mail_queue_maintain: (_closure, ...args) => core.defaultMailQueueMaintain(...args),
  };
}

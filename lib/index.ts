export { MailQueueCore } from './core.js';
export type {
  Bounce, ConnectionGoalArgs, CoreHooks, DomainHookArgs, Grant, MailQueueCoreOptions, MailQueueMaintainArgs,
  MaintainResult, Message, MessageInfo, Stats,
} from './core.js';
export type { Aggressiveness, BindingSpec, CoreConfig, NestedScope, ScopeOptions } from './config.js';
export { HookPoint } from './hook_point.js';
export type { Provider } from './hook_point.js';
export { HookError } from './errors.js';
export type { CodedError, ErrorCode } from './errors.js';
export { ActiveQueue, DomainRecord } from './views.js';
export type { DomainSnapshot } from './views.js';
export { momentumAliases } from './momentum_aliases.js';
export type { MomentumAliases } from './momentum_aliases.js';
import { native } from './native.js';

/** The default goal curve: min(M, max(1, ceil(M * (1 - exp(-a * q / M))))), 0 for q = 0 or M = 0. */
export function connectionGoal(maxConnections: number, queued: number, aggressiveness: number): number {
  return native.goalCurve(maxConnections, queued, aggressiveness);
}

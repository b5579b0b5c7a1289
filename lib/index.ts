export { MailQueueCore } from './core.js';
export { adminHandler, serveAdmin } from './admin/http.js';
export type { AdminOptions, AdminServer, ServeAdminOptions } from './admin/http.js';
export { createMetrics } from './admin/metrics.js';
export type { MetricsOptions } from './admin/metrics.js';
export type { MailQueueCoreOptions } from './core/core_context.js';
export { clusterState, type ClusterState } from './cluster/cluster_caps.js';
export type { ClusterOptions } from './cluster/cluster_options.js';
export type { Logger } from './logger.js';
export type { DomainRef, Message, MessageInfo, Stats } from './core/types.js';
export { DEFAULT_QSHAPE_MINUTES } from './core/qshape.js';
export type { Qshape, QshapeOptions, QshapeRow } from './core/qshape.js';
export type {
  ConnectionFailedEvent,
  ConnectionOpenedEvent,
  CoreEvents,
  Grant,
  PassEvent,
} from './core/outbox.js';
export type {
  ConnectionGoalArgs,
  CoreHooks,
  DomainHookArgs,
  MailQueueMaintainArgs,
  MaintainOptions,
  MaintainResult,
  PassResult,
} from './core/maintenance_pass.js';
export type { BounceEvent as Bounce, BouncedRecipient } from './delivery/events.js';
export { buildDsn } from './delivery/dsn.js';
export type { Dsn, DsnOptions } from './delivery/dsn.js';
export { BOUNCE_LISTENER_TIMEOUT_MS } from './core/bounce_notice.js';
export type { Aggressiveness, BindingSpec, CoreConfig, NestedScope, ScopeOptions } from './config.js';
export type { HostOptions } from './host_config.js';
export { GrantList } from './grant_list.js';
export { HookPoint } from './hook_point.js';
export type { Provider } from './hook_point.js';
export { ERROR_CODES, HookError, MailQueueError } from './errors.js';
export type { CodedError, ErrorCode } from './errors.js';
export { ActiveQueue, DomainRecord } from './views.js';
export type { DomainSnapshot } from './views.js';
export { momentumAliases } from './momentum_aliases.js';
export { FeedbackConcurrency, feedbackConcurrency } from './policies/feedback_concurrency.js';
export type { ConcurrencyWindow, Feedback, FeedbackConcurrencyOptions } from './policies/feedback_concurrency.js';
export { ResponseRules, responseRules } from './policies/response_rules.js';
export type { ActiveRule, ResponseRule, ResponseRulesOptions, RuleAction } from './policies/response_rules.js';
export { DEFAULT_RESPONSE_RULES } from './policies/default_rules.js';
export { SmtpTransport, SmtpOpenError, SmtpSendError, SMTP_DEFAULTS } from './transport/smtp.js';
export type { SmtpOpenErrorCode, SmtpSendErrorCode, SmtpTransportOptions } from './transport/smtp.js';
export { MemoryStore } from './store/memory_store.js';
export { FileSpool, SpoolCorruptError } from './store/file_spool.js';
export type { FileSpoolOptions } from './store/file_spool.js';
export { LogSpool } from './store/log_spool.js';
export type { LogSpoolOptions, LogSpoolStats } from './store/log_spool.js';
export type { LoadedMessage, MessageStore, RetryState, StoredMessage } from './store/message_store.js';
export { STREAM_BODY_BYTES } from './store/body_stream.js';
export { MAX_BUFFERED_BODY_BYTES, type BodyInput } from './delivery/body_input.js';
export type {
  DeliveryTarget,
  Envelope,
  OutboundMessage,
  Outcome,
  RecipientRefusal,
  SendCallback,
  StreamedBody,
  Transport,
  TransportSession,
} from './transport/transport.js';
export type { DeferredEvent, DeliveredEvent, DomainTally } from './delivery/events.js';
export type { MomentumAliases } from './momentum_aliases.js';
import { native } from './native.js';

/** The default goal curve: min(M, max(1, ceil(M * (1 - exp(-a * q / M))))), 0 for q = 0 or M = 0. */
export function connectionGoal(maxConnections: number, queued: number, aggressiveness: number): number {
  return native.goalCurve(maxConnections, queued, aggressiveness);
}

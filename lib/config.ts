// Configuration scopes and their resolution (docs/architecture.md §8). Options are Momentum's, in
// camelCase. A (binding, domain) pair resolves each option most specific first:
//   bindings[b].domains[d] > bindingGroups[g].domains[d] > bindings[b] > bindingGroups[g]
//   > domains[d] > global > built-in default
// Throttles resolve by reference: the scope that sets outboundThrottleConnections owns one bucket,
// shared by every pair that falls back to it. Bad input is refused here, at construction, with an
// error naming the key and the scope.
import { codedError } from './errors.js';
import {
  bool,
  limit,
  parseAggressiveness,
  parseRate,
  type Rate,
  retries,
  seconds,
  secondsOrZero,
  timerInterval,
} from './config_values.js';
import { HostCaps, type HostChecks, type HostOptions, parseHosts } from './host_config.js';
import { checkBindingName, checkDomainName, typeName, unknownKey } from './validate.js';

export type Aggressiveness = 'normal' | 'high' | number;

/** Options that may appear in a scope. Times are in seconds, as in Momentum. */
export interface ScopeOptions {
  /** max_outbound_connections for binding::domain (default 32). */
  maxOutboundConnections?: number;
  /** scope_max_outbound_connections: in `domains` caps the domain across all bindings; in a
   *  binding group's `domains` caps the domain across that group's bindings. */
  scopeMaxOutboundConnections?: number;
  /** server_max_outbound_connections: global total (default 20000); in a binding, that binding's
   *  total; in a binding group, the group's total. */
  serverMaxOutboundConnections?: number;
  /** server_reserve_outbound_connections (global only, default 200). */
  serverReserveOutboundConnections?: number;
  /** connection_allocation_aggressiveness: 'normal' (0.3), 'high' (0.75) or a number in (0, 1]. */
  connectionAllocationAggressiveness?: Aggressiveness;
  /** outbound_throttle_connections: "N" per second, "N/secs", or a number N (per second). */
  outboundThrottleConnections?: string | number;
  /** suspend_delivery: no new connections for the scope. */
  suspendDelivery?: boolean;
  /** message_expiration in seconds (default 86400): the default expiresAt of a new message. */
  messageExpiration?: number;
  /** max_deliveries_per_connection: a connection closes after this many deliveries (0: no limit). */
  maxDeliveriesPerConnection?: number;
  /** idle_timeout in seconds (default 5): an idle connection waits this long for mail, then closes. */
  idleTimeout?: number;
  /** retry_interval in seconds (default 1200): the first retry's delay, doubled after each failure. */
  retryInterval?: number;
  /** max_retry_interval in seconds (default 43200): the cap on the retry delay. */
  maxRetryInterval?: number;
  /** max_retries: retries after the first attempt, or 'auto' (default: only expiry ends retries). */
  maxRetries?: number | 'auto';
  /** outbound_throttle_messages: "N" per second, "N/secs", or N: messages started per window. */
  outboundThrottleMessages?: string | number;
  /** migrate_connections_between_sibling_domains (default true). */
  migrateConnectionsBetweenSiblingDomains?: boolean;
  /** host_failure_retry in seconds (default 120): after every MX of a domain failed to connect,
   *  the (domain, binding) opens no new connection for this long. */
  hostFailureRetry?: number;
  /** delayed_queue_scan_interval in seconds (global only, default 15): the maintainer runs a pass at
   *  least this often. */
  delayedQueueScanInterval?: number;
  /** Fleet-wide caps through Redis (the `cluster` option, lib/cluster): binding::domain, a domain
   *  (domains scope), every connection (global only); the two throttles at every scope, shared by
   *  reference like the local ones ("N", "N/secs" or N, across the fleet). */
  clusterMaxOutboundConnections?: number;
  clusterScopeMaxOutboundConnections?: number;
  clusterServerMaxOutboundConnections?: number;
  clusterOutboundThrottleConnections?: string | number;
  clusterOutboundThrottleMessages?: string | number;
}

export interface NestedScope extends ScopeOptions {
  domains?: Record<string, ScopeOptions>;
  hosts?: Record<string, HostOptions>; // binding::host caps, in `bindings` only (decision 47)
}

export interface CoreConfig {
  global?: ScopeOptions;
  bindingGroups?: Record<string, NestedScope>;
  bindings?: Record<string, NestedScope>;
  domains?: Record<string, ScopeOptions>;
  hosts?: Record<string, HostOptions>; // the Host scope: caps per MX host (decision 47)
}

export type BindingSpec = string | { name: string; group?: string };

type ScopeKind = 'global' | 'domain' | 'binding' | 'group' | 'binding::domain' | 'group::domain';

interface OptionRule {
  scopes: readonly ScopeKind[];
  check(value: unknown, where: string): unknown;
}

const ALL: readonly ScopeKind[] = ['global', 'domain', 'binding', 'group', 'binding::domain', 'group::domain'];

const RULES: Record<keyof ScopeOptions, OptionRule> = {
  maxOutboundConnections: { scopes: ALL, check: limit },
  scopeMaxOutboundConnections: { scopes: ['domain', 'group::domain'], check: limit },
  serverMaxOutboundConnections: { scopes: ['global', 'binding', 'group'], check: limit },
  serverReserveOutboundConnections: { scopes: ['global'], check: limit },
  connectionAllocationAggressiveness: { scopes: ALL, check: parseAggressiveness },
  outboundThrottleConnections: { scopes: ALL, check: parseRate },
  suspendDelivery: { scopes: ALL, check: bool },
  messageExpiration: { scopes: ALL, check: seconds },
  maxDeliveriesPerConnection: { scopes: ALL, check: limit },
  idleTimeout: { scopes: ALL, check: secondsOrZero },
  retryInterval: { scopes: ALL, check: seconds },
  maxRetryInterval: { scopes: ALL, check: seconds },
  maxRetries: { scopes: ALL, check: retries },
  outboundThrottleMessages: { scopes: ALL, check: parseRate },
  migrateConnectionsBetweenSiblingDomains: { scopes: ALL, check: bool },
  hostFailureRetry: { scopes: ALL, check: secondsOrZero },
  delayedQueueScanInterval: { scopes: ['global'], check: timerInterval },
  clusterMaxOutboundConnections: { scopes: ALL, check: limit },
  clusterScopeMaxOutboundConnections: { scopes: ['domain'], check: limit },
  clusterServerMaxOutboundConnections: { scopes: ['global'], check: limit },
  clusterOutboundThrottleConnections: { scopes: ALL, check: parseRate },
  clusterOutboundThrottleMessages: { scopes: ALL, check: parseRate },
};

/** One scope after validation: parsed values, and the throttle bucket it owns (if it sets one). */
export interface Scope {
  readonly where: string;
  readonly values: Partial<Record<keyof ScopeOptions, unknown>>;
  throttle?: number;
  rate?: Rate;
  /** The outbound_throttle_messages bucket this scope owns, if it sets one. */
  messageThrottle?: number;
  messageRate?: Rate;
}

interface NestedResolved {
  scope: Scope;
  domains: Map<string, Scope>;
  hosts: Map<string, number>; // binding::host caps (bindings only)
}

const BINDING_SPEC_KEYS: ReadonlySet<string> = new Set(['name', 'group']);
const CONFIG_SCOPES: ReadonlySet<string> = new Set(['global', 'bindingGroups', 'bindings', 'domains', 'hosts']);

/** An object literal or Object.create(null), from this realm or another (an MTA such as Haraka
 *  runs its plugins in `vm` contexts, whose Object.prototype is not ours): its prototype is null
 *  or a root prototype (one whose own prototype is null), and it is no Map, Date or the like. */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) return true;
  return Object.getPrototypeOf(proto) === null && Object.prototype.toString.call(v) === '[object Object]';
}

/** What a value that is not a plain object is, for the error: "an array", "a Map", "an instance
 *  of Settings", "a string". */
function notPlain(v: unknown): string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return typeName(v);
  const ctor = (Object.getPrototypeOf(v) as { constructor?: { name?: unknown } }).constructor;
  const name = typeof ctor?.name === 'string' && ctor.name !== '' ? ctor.name : undefined;
  if (name === undefined) return 'an object whose prototype is not Object.prototype';
  return /^(Map|Set|Date|RegExp|Promise|WeakMap|WeakSet|Error)$/.test(name) ? `a ${name}` : `an instance of ${name}`;
}

function configError(where: string, message: string): Error {
  const e = codedError('ERR_CONFIG', `${where}: ${message}`);
  return e;
}

const HOST_CHECKS: HostChecks = { isPlainObject, notPlain, limit, error: configError };

function parseScope(
  raw: unknown,
  kind: ScopeKind,
  where: string,
  nested: boolean,
): { scope: Scope; domains?: unknown; hosts?: unknown } {
  if (!isPlainObject(raw)) throw new TypeError(`${where} must be a plain object, got ${notPlain(raw)}`);
  const values: Scope['values'] = {};
  let domains: unknown;
  let hosts: unknown;
  let rate: Rate | undefined;
  let messageRate: Rate | undefined;
  for (const key of Object.keys(raw)) {
    const value = raw[key];
    if (nested && key === 'domains') {
      domains = value;
      continue;
    }
    if (nested && key === 'hosts') {
      if (kind !== 'binding') throw configError(where, `hosts is not valid in ${kind} scope`);
      hosts = value;
      continue;
    }
    const rule = Object.hasOwn(RULES, key) ? RULES[key as keyof ScopeOptions] : undefined;
    if (rule === undefined) throw configError(where, `unknown option ${JSON.stringify(key)}`);
    if (!rule.scopes.includes(kind)) throw configError(where, `${key} is not valid in ${kind} scope`);
    if (value === undefined) continue;
    const parsed = rule.check(value, `${where}.${key}`);
    values[key as keyof ScopeOptions] = parsed;
    if (key === 'outboundThrottleConnections') rate = parsed as Rate;
    if (key === 'outboundThrottleMessages') messageRate = parsed as Rate;
  }
  return { scope: { where, values, rate, messageRate }, domains, hosts };
}

function parseDomains(raw: unknown, kind: ScopeKind, where: string): Map<string, Scope> {
  const out = new Map<string, Scope>();
  if (raw === undefined) return out;
  if (!isPlainObject(raw)) throw new TypeError(`${where} must be a plain object, got ${notPlain(raw)}`);
  for (const name of Object.keys(raw)) {
    const domain = checkDomainName(name, `${where} key`);
    if (out.has(domain)) throw configError(where, `domain ${domain} is configured twice`);
    out.set(domain, parseScope(raw[name], kind, `${where}.${domain}`, false).scope);
  }
  return out;
}

/** Pair limits as the native core takes them. */
export interface PairSettings {
  maxConnections: number;
  aggressiveness: number;
  throttle: number; // -1: none
  suspended: boolean;
  messageExpirationMs: number;
  messageThrottle: number; // -1: none
  maxDeliveries: number; // 0: no limit
  idleTimeoutMs: number;
  retryIntervalMs: number;
  maxRetryIntervalMs: number;
  maxRetries: number; // Infinity: 'auto'
  migrate: boolean;
  hostFailureRetryMs: number;
  clusterMax: number; // Infinity: not cluster-capped
  clusterThrottle: string; // the scope (where) whose clusterOutboundThrottleConnections applies; '' none
  clusterMessageThrottle: string; // the same for clusterOutboundThrottleMessages
}

export const DEFAULTS = {
  maxOutboundConnections: 32,
  serverMaxOutboundConnections: 20000,
  serverReserveOutboundConnections: 200,
  connectionAllocationAggressiveness: 0.3,
  messageExpiration: 86400,
  idleTimeout: 5,
  retryInterval: 1200,
  maxRetryInterval: 43200,
  hostFailureRetry: 120,
  delayedQueueScanInterval: 15,
} as const;

export class ResolvedConfig {
  readonly bindingNames: readonly string[];
  readonly groupNames: readonly string[];
  readonly groupOfBinding: readonly number[];
  readonly global: Scope;
  readonly domains: Map<string, Scope>;
  readonly bindings: readonly NestedResolved[];
  readonly groups: readonly NestedResolved[];
  /** Every scope that sets outboundThrottleConnections, in the order their buckets are made. */
  readonly throttleScopes: Scope[] = [];
  /** Every scope that sets outboundThrottleMessages. */
  readonly messageThrottleScopes: Scope[] = [];
  /** The Host scope and binding::host caps. */
  readonly hosts: HostCaps;

  constructor(bindingSpecs: unknown, config: unknown) {
    const specs = bindingSpecs === undefined ? ['default'] : bindingSpecs;
    if (!Array.isArray(specs)) throw new TypeError(`bindings must be an array, got ${typeName(specs)}`);
    if (specs.length === 0 || specs.length > 65535)
      throw new RangeError(`bindings must have 1 to 65535 entries, got ${specs.length}`);
    const names: string[] = [];
    const groupNames: string[] = [];
    const groupOf: number[] = [];
    specs.forEach((spec: unknown, i: number) => {
      let name: string;
      let group: string | undefined;
      if (typeof spec === 'string') {
        name = checkBindingName(spec, `bindings[${i}]`);
      } else if (isPlainObject(spec)) {
        const k = unknownKey(spec, BINDING_SPEC_KEYS);
        if (k !== undefined) throw configError(`bindings[${i}]`, `unknown option ${JSON.stringify(k)}`);
        name = checkBindingName(spec.name, `bindings[${i}].name`);
        if (spec.group !== undefined) group = checkBindingName(spec.group, `bindings[${i}].group`);
      } else {
        throw new TypeError(`bindings[${i}] must be a name or { name, group }, got ${typeName(spec)}`);
      }
      if (names.includes(name)) throw configError(`bindings[${i}]`, `binding ${name} is listed twice`);
      names.push(name);
      if (group === undefined) {
        groupOf.push(-1);
      } else {
        let g = groupNames.indexOf(group);
        if (g < 0) g = groupNames.push(group) - 1;
        groupOf.push(g);
      }
    });
    this.bindingNames = names;
    this.groupNames = groupNames;
    this.groupOfBinding = groupOf;

    const cfg = config === undefined ? {} : config;
    if (!isPlainObject(cfg)) throw new TypeError(`config must be a plain object, got ${notPlain(cfg)}`);
    const scope = unknownKey(cfg, CONFIG_SCOPES);
    if (scope !== undefined) {
      throw configError(
        'config',
        `unknown scope ${JSON.stringify(scope)} (expected global, bindingGroups, bindings, domains, hosts)`,
      );
    }
    this.global = parseScope(cfg.global ?? {}, 'global', 'config.global', false).scope;
    this.domains = parseDomains(cfg.domains, 'domain', 'config.domains');
    this.bindings = this.parseNested(cfg.bindings, names, 'binding', 'config.bindings');
    this.groups = this.parseNested(cfg.bindingGroups, groupNames, 'group', 'config.bindingGroups');
    const hosts = parseHosts(cfg.hosts, 'config.hosts', HOST_CHECKS);
    this.hosts = new HostCaps(
      hosts,
      this.bindings.map((b) => b.hosts),
    );

    const all: Scope[] = [this.global, ...this.domains.values()];
    for (const n of [...this.bindings, ...this.groups]) all.push(n.scope, ...n.domains.values());
    for (const s of all) {
      if (s.rate) this.throttleScopes.push(s);
      if (s.messageRate) this.messageThrottleScopes.push(s);
    }
  }

  private parseNested(
    raw: unknown,
    names: readonly string[],
    kind: 'binding' | 'group',
    where: string,
  ): NestedResolved[] {
    const out: NestedResolved[] = names.map((n) => ({
      scope: { where: `${where}.${n}`, values: {} },
      domains: new Map(),
      hosts: new Map(),
    }));
    if (raw === undefined) return out;
    if (!isPlainObject(raw)) throw new TypeError(`${where} must be a plain object, got ${notPlain(raw)}`);
    for (const name of Object.keys(raw)) {
      const i = names.indexOf(name);
      if (i < 0) {
        throw configError(
          where,
          `${kind === 'binding' ? 'binding' : 'binding group'} ${JSON.stringify(name)} is not declared in the bindings option`,
        );
      }
      const at = `${where}.${name}`;
      const { scope, domains, hosts } = parseScope(raw[name], kind, at, true);
      out[i] = {
        scope,
        domains: parseDomains(domains, kind === 'binding' ? 'binding::domain' : 'group::domain', `${at}.domains`),
        hosts: parseHosts(hosts, `${at}.hosts`, HOST_CHECKS),
      };
    }
    return out;
  }

  /** The chain of scopes for (binding, domain), most specific first. */
  private chain(binding: number, domain: string): Scope[] {
    const chain: Scope[] = [];
    const b = this.bindings[binding];
    const g = this.groupOfBinding[binding];
    const group = g >= 0 ? this.groups[g] : undefined;
    const push = (s: Scope | undefined) => {
      if (s) chain.push(s);
    };
    push(b.domains.get(domain));
    push(group?.domains.get(domain));
    push(b.scope);
    push(group?.scope);
    push(this.domains.get(domain));
    push(this.global);
    return chain;
  }

  private lookup(chain: Scope[], key: keyof ScopeOptions): Scope | undefined {
    return chain.find((s) => s.values[key] !== undefined);
  }

  pair(binding: number, domain: string): PairSettings {
    const chain = this.chain(binding, domain);
    const value = <T>(key: keyof ScopeOptions, dflt: T): T => {
      const s = this.lookup(chain, key);
      return s === undefined ? dflt : (s.values[key] as T);
    };
    const throttleScope = this.lookup(chain, 'outboundThrottleConnections');
    const messageScope = this.lookup(chain, 'outboundThrottleMessages');
    return {
      maxConnections: value('maxOutboundConnections', DEFAULTS.maxOutboundConnections),
      aggressiveness: value('connectionAllocationAggressiveness', DEFAULTS.connectionAllocationAggressiveness),
      throttle: throttleScope?.throttle ?? -1,
      suspended: value('suspendDelivery', false),
      messageExpirationMs: value('messageExpiration', DEFAULTS.messageExpiration) * 1000,
      messageThrottle: messageScope?.messageThrottle ?? -1,
      maxDeliveries: value('maxDeliveriesPerConnection', 0),
      idleTimeoutMs: value('idleTimeout', DEFAULTS.idleTimeout) * 1000,
      retryIntervalMs: value('retryInterval', DEFAULTS.retryInterval) * 1000,
      maxRetryIntervalMs: value('maxRetryInterval', DEFAULTS.maxRetryInterval) * 1000,
      maxRetries: value('maxRetries', Infinity),
      migrate: value('migrateConnectionsBetweenSiblingDomains', true),
      hostFailureRetryMs: value('hostFailureRetry', DEFAULTS.hostFailureRetry) * 1000,
      clusterMax: value('clusterMaxOutboundConnections', Infinity),
      clusterThrottle: this.lookup(chain, 'clusterOutboundThrottleConnections')?.where ?? '',
      clusterMessageThrottle: this.lookup(chain, 'clusterOutboundThrottleMessages')?.where ?? '',
    };
  }

  /** scope_max_outbound_connections for Global::Domain (Infinity when unset). */
  domainScopeMax(domain: string): number {
    const v = this.domains.get(domain)?.values.scopeMaxOutboundConnections;
    return v === undefined ? Infinity : (v as number);
  }

  /** scope_max_outbound_connections for Binding_Group::Domain, per group (Infinity when unset). */
  groupDomainScopeMax(domain: string): number[] {
    return this.groups.map((g) => {
      const v = g.domains.get(domain)?.values.scopeMaxOutboundConnections;
      return v === undefined ? Infinity : (v as number);
    });
  }

  /** delayed_queue_scan_interval in ms. */
  scanIntervalMs(): number {
    return (
      ((this.global.values.delayedQueueScanInterval as number | undefined) ?? DEFAULTS.delayedQueueScanInterval) * 1000
    );
  }

  serverMax(): number {
    return (
      (this.global.values.serverMaxOutboundConnections as number | undefined) ?? DEFAULTS.serverMaxOutboundConnections
    );
  }

  serverReserve(): number {
    return (
      (this.global.values.serverReserveOutboundConnections as number | undefined) ??
      DEFAULTS.serverReserveOutboundConnections
    );
  }

  bindingServerMax(): number[] {
    return this.bindings.map((b) => (b.scope.values.serverMaxOutboundConnections as number | undefined) ?? Infinity);
  }

  groupServerMax(): number[] {
    return this.groups.map((g) => (g.scope.values.serverMaxOutboundConnections as number | undefined) ?? Infinity);
  }
}

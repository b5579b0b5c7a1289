// Live reconfiguration: core.configure(config) applies a new configuration to a running core
// (docs/configuration.md#reconfiguring-a-running-core, decision 45). The whole configuration is
// checked first, by the same ResolvedConfig the constructor uses: a refusal names the key and the
// scope and changes nothing. Then every domain the core has seen resolves its settings again and
// the native ledger takes the new limits in place; connections above a lowered limit finish their
// message and close (the delivery layer sees configEpoch move), nothing queued moves.
//
// What stays: the bindings and their groups (they size the native tables; configure() takes only
// the configuration object, and a scope naming a binding or group that was not declared is refused
// as at construction); operator suspensions (suspend(), suspendBinding()) and connect-failure
// cool-downs; messages already queued keep their expiry time. Throttles: a scope (same place in the
// configuration) that sets the same rate keeps its bucket; one whose rate changed keeps its bucket
// too, at the new rate, with the grants it has recorded still counting; a scope new to the
// configuration gets a new bucket. A bucket no scope names any more is shrunk to one entry.
import { ResolvedConfig, type BindingSpec, type Scope } from '../config.js';
import type { Rate } from '../config_values.js';
import { codedError } from '../errors.js';
import { native } from '../native.js';
import type { CoreContext } from './core_context.js';
import type { DomainTable } from './domain_table.js';
import type { Suspensions } from './suspensions.js';

/** What configure() tells once the new configuration is in force: the delivery service (a new
 *  scan interval, idle connections look again, a pass soon). */
export interface ReconfigureHost {
  reconfigured(): void;
}

/** The bindings the core was made with, as the constructor's option took them. */
function bindingSpecs(cfg: ResolvedConfig): BindingSpec[] {
  return cfg.bindingNames.map((name, i) => {
    const g = cfg.groupOfBinding[i];
    return g < 0 ? name : { name, group: cfg.groupNames[g] };
  });
}

type BucketKind = 'throttle' | 'messageThrottle';

// Gives each scope of `next` that sets a rate its bucket: the old scope's at the same place (at
// the new rate when it changed, history kept), else a new one. Buckets left unnamed are shrunk.
function carryBuckets(h: number, old: Scope[], next: Scope[], kind: BucketKind): void {
  const rateOf = (s: Scope): Rate => (kind === 'throttle' ? s.rate : s.messageRate)!;
  const before = new Map(old.map((s) => [s.where, s]));
  for (const s of next) {
    const o = before.get(s.where);
    const rate = rateOf(s);
    if (o === undefined) {
      s[kind] = native.addThrottle(h, rate.count, rate.windowMs);
      continue;
    }
    before.delete(s.where);
    s[kind] = o[kind];
    const was = rateOf(o);
    if (was.count !== rate.count || was.windowMs !== rate.windowMs)
      native.setThrottleRate(h, o[kind]!, rate.count, rate.windowMs);
  }
  for (const o of before.values()) native.setThrottleRate(h, o[kind]!, 1, rateOf(o).windowMs);
}

/** See MailQueueCore.configure. */
export function reconfigure(
  ctx: CoreContext,
  domains: DomainTable,
  suspensions: Suspensions,
  host: ReconfigureHost,
  /** A pass is running its hooks: configure() from inside one is refused. */
  inPass: boolean,
  config: unknown,
): void {
  const h = ctx.live();
  if (inPass) throw codedError('ERR_REENTRANT', 'configure() was called from inside a maintenance hook');
  const old = ctx.config;
  // Every check happens here, before anything changes.
  const next = new ResolvedConfig(bindingSpecs(old), config);

  carryBuckets(h, old.throttleScopes, next.throttleScopes, 'throttle');
  carryBuckets(h, old.messageThrottleScopes, next.messageThrottleScopes, 'messageThrottle');
  ctx.config = next;
  native.setServerLimits(
    h,
    Float64Array.of(next.serverMax(), next.serverReserve()),
    Float64Array.from(next.bindingServerMax()),
    Float64Array.from(next.groupServerMax()),
  );
  const nb = ctx.bindings.length;
  for (let d = 0; d < domains.records.length; d++) {
    if (!domains.live(d)) continue; // a forgotten domain's slot: its next domain resolves afresh
    domains.relimit(d);
    // The configuration's suspendDelivery combined with the operator's and any cool-down.
    for (let b = 0; b < nb; b++) suspensions.apply(d, b);
  }
  ctx.limitsEpoch++;
  ctx.configEpoch++;
  host.reconfigured();
}

// The Node-API glue: module-level functions over a numeric core handle (a plain function costs about
// a third of a wrapped-object method), arguments checked before use, results written into typed
// arrays that the caller owns. No policy lives here: every rule is in native/core or lib/. Each
// function reads its arguments through one Args reader (args.hpp) and checks for a failure once.
#include <napi.h>

#include <cmath>
#include <memory>
#include <vector>

#include "../core/connection_goal.hpp"
#include "../core/core.hpp"
#include "addon_data.hpp"
#include "args.hpp"
#include "core_registry.hpp"

namespace mqc_addon {
namespace {

using mqc::Status;

// createCore(config: Float64Array [bindings, groups, serverMax, serverReserve],
//            groupOfBinding: Int32Array, bindingMax: Float64Array, groupMax: Float64Array) -> handle
Napi::Value CreateCore(const Napi::CallbackInfo& info) {
  Args a(info);
  F64 cfg = a.f64("config");
  I32 gob = a.i32("groupOfBinding");
  F64 bmax = a.f64("bindingMax");
  F64 gmax = a.f64("groupMax");
  a.expect(cfg.length == 4, "config must have 4 entries");
  if (a.failed()) return a.undefined();
  auto isCount = [](double v, double hi) { return v >= 0 && v <= hi && std::floor(v) == v; };
  a.expect(isCount(cfg[0], 65535) && cfg[0] >= 1, "bindings must be 1..65535");
  a.expect(isCount(cfg[1], 65535), "groups must be 0..65535");
  a.expect(isCount(cfg[2], kMaxCount), "serverMax out of range");
  a.expect(isCount(cfg[3], kMaxCount), "serverReserve out of range");
  if (a.failed()) return a.undefined();
  mqc::LedgerConfig lc;
  lc.bindings = static_cast<uint32_t>(cfg[0]);
  lc.groups = static_cast<uint32_t>(cfg[1]);
  lc.serverMax = static_cast<uint32_t>(cfg[2]);
  lc.serverReserve = static_cast<uint32_t>(cfg[3]);
  a.expect(gob.length == lc.bindings && bmax.length == lc.bindings && gmax.length == lc.groups,
           "groupOfBinding/bindingMax/groupMax lengths do not match the counts");
  for (uint32_t b = 0; b < lc.bindings && !a.failed(); ++b) {
    a.expect(gob[b] >= -1 && gob[b] < static_cast<int32_t>(lc.groups), "groupOfBinding: group index out of range");
    lc.groupOfBinding.push_back(gob[b]);
    lc.bindingMax.push_back(a.limit(bmax[b], "bindingMax out of range"));
  }
  for (uint32_t g = 0; g < lc.groups && !a.failed(); ++g)
    lc.groupMax.push_back(a.limit(gmax[g], "groupMax out of range"));
  if (a.failed()) return a.undefined();
  size_t n = mqc::Core::counterCountFor(lc);
  std::shared_ptr<double> counters(new double[n], std::default_delete<double[]>());
  double handle = a.registry()->add(std::make_unique<mqc::Core>(std::move(lc), std::move(counters)));
  if (handle < 0) return a.codeError("ERR_TOO_MANY", "too many open cores");
  return a.num(handle);
}

// An ArrayBuffer over n doubles of native memory that the buffer holds a share of.
Napi::Value sharedBuffer(Args& a, const std::shared_ptr<double>& memory, size_t n, const char* what) {
  auto* keep = new std::shared_ptr<double>(memory);
  napi_value ab;
  napi_status st = napi_create_external_arraybuffer(
      a.env(), keep->get(), n * sizeof(double),
      [](napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<double>*>(hint); }, keep, &ab);
  if (st != napi_ok) {
    delete keep;
    return a.codeError("ERR_INTERNAL", (std::string("could not make the ") + what + " buffer").c_str());
  }
  return Napi::Value(a.env(), ab);
}

// countersBuffer(core) -> ArrayBuffer over the core's own counters (counterNames() order, then
// connections and active per binding): the core writes them in place, so reading one costs no call.
// The buffer shares ownership of that memory: it stays valid after close(), after the core is
// collected, and wherever the buffer goes (a transfer to another thread included).
Napi::Value CountersBuffer(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  if (a.failed()) return a.undefined();
  return sharedBuffer(a, s->core->counterStorage(), s->core->counterCount(), "counters");
}

// flightBuffer(core) -> ArrayBuffer over the core's flight table (Core::kFlightSets sets of
// Core::kFlightWays entries [id + 1, handle, expiresAt, domain]): JavaScript finds a message in flight there and
// stages its outcome without a call. Shared ownership, as countersBuffer.
Napi::Value FlightBuffer(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  if (a.failed()) return a.undefined();
  return sharedBuffer(a, s->core->flightStorage(), mqc::Core::kFlightDoubles, "flight");
}

// trackFlight(core): keep the flight table from now on (the first single outcome asks for it).
Napi::Value TrackFlight(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  if (a.failed()) return a.undefined();
  s->core->trackFlight();
  return a.undefined();
}

Napi::Value DestroyCore(const Napi::CallbackInfo& info) {
  Args a(info);
  double h = a.number("core handle");
  if (a.failed()) return a.undefined();
  return a.boolean(a.registry()->remove(h));
}

// addThrottle(core, count, windowMs) -> throttle index
Napi::Value AddThrottle(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t count = a.u32("count", mqc::kMaxThrottleCount);
  double windowMs = a.finite("windowMs");
  a.expect(count >= 1 && windowMs > 0, "throttle count and window must be positive");
  if (a.failed()) return a.undefined();
  int32_t t = s->core->ledger().addThrottle(count, windowMs);
  if (t < 0) return a.rangeError("windowMs must be at most 1e12");
  return a.num(t);
}

// Reads a domain's limits, the next three arguments of addDomain and setDomainLimits: pairs
// [max, aggressiveness, throttle, suspended] per binding, the scope cap, and the group::domain caps
// per group.
mqc::DomainLimits readDomainLimits(Args& a, CoreSlot* s) {
  F64 pairs = a.f64("pairs");
  double scopeMax = a.number("scopeMax");
  F64 gsm = a.f64("groupScopeMax");
  if (a.failed()) return {};
  uint32_t nb = s->core->bindings();
  uint32_t ng = s->core->ledger().groups();
  a.expect(pairs.length == 4 * static_cast<size_t>(nb) && gsm.length == ng,
           "pairs/groupScopeMax lengths do not match bindings/groups");
  mqc::DomainLimits dl;
  dl.scopeMax = a.limit(scopeMax, "scopeMax out of range");
  for (uint32_t g = 0; g < ng && !a.failed(); ++g)
    dl.groupScopeMax.push_back(a.limit(gsm[g], "groupScopeMax out of range"));
  const double throttles = static_cast<double>(s->core->ledger().throttleCount());
  for (uint32_t b = 0; b < nb && !a.failed(); ++b) {
    const double* p = &pairs[4 * b];
    mqc::PairLimits pl;
    pl.maxConnections = a.limit(p[0], "maxConnections out of range");
    a.expect(p[1] > 0 && p[1] <= 1, "aggressiveness must be in (0, 1]");
    pl.aggressiveness = p[1];
    bool throttleOk = p[2] >= -1 && std::floor(p[2]) == p[2] && p[2] < throttles;
    pl.throttle = a.expect(throttleOk, "throttle index out of range") ? static_cast<int32_t>(p[2]) : -1;
    pl.suspended = p[3] != 0;
    dl.pairs.push_back(pl);
  }
  return dl;
}

// addDomain(core, pairs: Float64Array [max, aggressiveness, throttle, suspended] per binding,
//           scopeMax, groupScopeMax: Float64Array per group) -> domain index
Napi::Value AddDomain(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  mqc::DomainLimits dl = readDomainLimits(a, s);
  if (a.failed()) return a.undefined();
  uint32_t index;
  if (!a.check(s->core->addDomain(dl, &index), "addDomain")) return a.undefined();
  return a.num(index);
}

// setDomainLimits(core, domain, pairs, scopeMax, groupScopeMax): addDomain's limits, set in place
// on an existing domain (live reconfiguration); each pair keeps its message throttle
// (setMessageThrottle sets that).
Napi::Value SetDomainLimits(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  mqc::DomainLimits dl = readDomainLimits(a, s);
  if (a.failed()) return a.undefined();
  mqc::ConnectionLedger& ledger = s->core->ledger();
  for (uint32_t b = 0; b < dl.pairs.size(); ++b) dl.pairs[b].messageThrottle = ledger.pairLimits(d, b).messageThrottle;
  a.check(ledger.setDomainLimits(d, dl), "setDomainLimits");
  return a.undefined();
}

// setServerLimits(core, limits: Float64Array [serverMax, serverReserve], bindingMax: Float64Array
//                 per binding, groupMax: Float64Array per group): the maxima in place.
Napi::Value SetServerLimits(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  F64 lim = a.f64("limits");
  F64 bmax = a.f64("bindingMax");
  F64 gmax = a.f64("groupMax");
  if (a.failed()) return a.undefined();
  mqc::ConnectionLedger& ledger = s->core->ledger();
  a.expect(lim.length == 2, "limits must have 2 entries");
  a.expect(bmax.length == ledger.bindings() && gmax.length == ledger.groups(),
           "bindingMax/groupMax lengths do not match the bindings and groups");
  uint32_t serverMax = a.failed() ? 0 : a.limit(lim[0], "serverMax out of range");
  uint32_t reserve = a.failed() ? 0 : a.limit(lim[1], "serverReserve out of range");
  std::vector<uint32_t> bm, gm;
  for (size_t b = 0; b < bmax.length && !a.failed(); ++b) bm.push_back(a.limit(bmax[b], "bindingMax out of range"));
  for (size_t g = 0; g < gmax.length && !a.failed(); ++g) gm.push_back(a.limit(gmax[g], "groupMax out of range"));
  a.expect(serverMax != mqc::kUnlimited && reserve != mqc::kUnlimited, "serverMax and serverReserve must be finite");
  if (a.failed()) return a.undefined();
  a.check(ledger.setServerLimits(serverMax, reserve, bm, gm), "setServerLimits");
  return a.undefined();
}

// setThrottleRate(core, throttle, count, windowMs): a new rate for a bucket, keeping its history.
Napi::Value SetThrottleRate(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double t = a.integer("throttle", 0, 2147483647.0);
  uint32_t count = a.u32("count", mqc::kMaxThrottleCount);
  double windowMs = a.finite("windowMs");
  a.expect(count >= 1 && windowMs > 0 && windowMs <= 1e12,
           "throttle count and window must be positive (window at most 1e12)");
  if (a.failed()) return a.undefined();
  if (s->core->ledger().setThrottleRate(static_cast<int32_t>(t), count, windowMs) != Status::Ok)
    return a.rangeError("throttle: unknown throttle index");
  return a.undefined();
}

// leaseExcess(core, connectionId, out: Float64Array(6)) -> false for an unknown connection, else
// true with out[i] how far each count behind the lease is above its limit (pair, domain,
// group::domain, group, binding, server).
Napi::Value LeaseExcess(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double id = a.connectionId();
  F64 out = a.f64("out");
  a.expect(out.length >= mqc::kExcessScopes, "out must have 6 entries");
  if (a.failed()) return a.undefined();
  uint32_t ex[mqc::kExcessScopes];
  if (!s->core->ledger().leaseExcess(id, ex)) return a.boolean(false);
  for (size_t i = 0; i < mqc::kExcessScopes; ++i) out[i] = ex[i];
  return a.boolean(true);
}

Napi::Value SetSuspended(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  uint32_t b = a.binding();
  bool flag = a.flag("suspended");
  if (a.failed()) return a.undefined();
  s->core->ledger().setSuspended(d, b, flag);
  return a.undefined();
}

// enqueue(core, domain, binding, id, priority, nextAttempt, expiresAt, now)
Napi::Value Enqueue(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  uint32_t b = a.binding();
  double id = a.id();
  uint32_t prio = a.u32("priority", 1);
  double next = a.time("nextAttempt");
  double exp = a.number("expiresAt");
  double now = a.time("now");
  if (a.failed()) return a.undefined();
  a.check(s->core->enqueue(d, b, id, static_cast<uint8_t>(prio), next, exp, now), "id", id);
  return a.undefined();
}

// enqueueBatch(core, domain, binding, ids: Float64Array, priorities: Uint8Array | null,
//              nextAttempt: number, or nextAttempts: Float64Array (one per id), expiresAt, now)
Napi::Value EnqueueBatch(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  uint32_t b = a.binding();
  F64 ids = a.f64("ids");
  bool perPrio = !a.absent(/*nullToo=*/true);
  U8 prios = perPrio ? a.u8("priorities") : U8{};
  a.expect(!perPrio || prios.length == ids.length, "priorities must have as many entries as ids");
  bool perId = !a.failed() && a.peek().IsTypedArray();
  F64 times = perId ? a.f64("nextAttempts") : F64{};
  a.expect(!perId || times.length == ids.length, "nextAttempts must have as many entries as ids");
  double next = perId ? 0 : a.time("nextAttempt");
  double exp = a.number("expiresAt");
  double now = a.time("now");
  if (a.failed()) return a.undefined();
  size_t n = ids.length, i = 0;
  Status st = times.data != nullptr ? s->core->enqueueBatchAt(d, b, ids.data, prios.data, times.data, n, exp, now, &i)
                                    : s->core->enqueueBatch(d, b, ids.data, prios.data, n, next, exp, now, &i);
  if (st == Status::Ok) return a.undefined();
  BadEntry bad;  // n == 0: nothing to name
  if (n > 0) {
    bool idOk = ids[i] >= 0 && ids[i] <= mqc::kMaxId && std::floor(ids[i]) == ids[i];
    bool prioOk = prios.data == nullptr || prios[i] <= 1;
    bad = !idOk     ? kBadId
          : !prioOk ? BadEntry{"priorities", "must be 0 or 1"}
                    : BadEntry{"nextAttempts", "must be a finite number within ±8.64e15 ms"};
  }
  a.checkBatch(st, i, bad);
  return a.undefined();
}

// enqueueArrivals(core, entries: Float64Array, n, now): n messages for any pairs, in arrival order;
// entries[5 * i ..] = (domain, binding + 65536 * priority, id, nextAttempt, expiresAt). All or
// nothing; the error names entries[5 * i] of the first bad one.
Napi::Value EnqueueArrivals(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  F64 entries = a.f64("entries");
  double n = a.integer("n", 0, static_cast<double>(entries.length / mqc::Core::kArrivalStride));
  double now = a.time("now");
  if (a.failed()) return a.undefined();
  size_t i = 0;
  Status st = s->core->enqueueArrivals(entries.data, static_cast<size_t>(n), now, &i);
  if (st == Status::Ok) return a.undefined();
  std::string what = "entries[" + std::to_string(mqc::Core::kArrivalStride * i) + "]";
  if (st == Status::BadArgument) return a.rangeError((what + ": an id, time or expiry out of range").c_str());
  a.check(st, what.c_str());
  return a.undefined();
}

// applyOutcomes(core, entries: Float64Array, n, now) -> how many entries named no message in
// flight (skipped): the settles and defers staged in JavaScript, [handle, id, nextAttempt or NaN]
// each, applied in order.
Napi::Value ApplyOutcomes(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  F64 entries = a.f64("entries");
  double n = a.integer("n", 0, static_cast<double>(entries.length / mqc::Core::kOutcomeStride));
  double now = a.time("now");
  if (a.failed()) return a.undefined();
  size_t refused = 0;
  a.check(s->core->applyOutcomes(entries.data, static_cast<size_t>(n), now, &refused), "now", now);
  return a.num(static_cast<double>(refused));
}

// cancel(core, id) -> true when a queued message was removed, false when the id is unknown
Napi::Value Cancel(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double id = a.id();
  if (a.failed()) return a.undefined();
  Status st = s->core->cancel(id);
  if (st == Status::UnknownId) return a.boolean(false);
  if (!a.check(st, "id", id)) return a.undefined();
  return a.boolean(true);
}

// cancelBatch(core, ids: Float64Array, cancelled?: Float64Array) -> how many were cancelled
// (unknown ids skipped; their ids into cancelled, in batch order); an id in flight refuses the
// whole batch and nothing changes
Napi::Value CancelBatch(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  F64 ids = a.f64("ids");
  // Optional: where the ids cancelled go (in batch order), room for every id of the batch.
  F64 out{};
  if (!a.absent()) out = a.f64("cancelled");
  a.expect(out.data == nullptr || out.length >= ids.length, "cancelled must have room for every id of ids");
  if (a.failed()) return a.undefined();
  size_t failedAt = 0, cancelled = 0;
  Status st = s->core->cancelBatch(ids.data, ids.length, &failedAt, &cancelled, out.data);
  if (!a.checkBatch(st, failedAt)) return a.undefined();
  return a.num(static_cast<double>(cancelled));
}

// locate(core, id, out: Float64Array(7)) -> place (0 when unknown); out = [domain, binding, place,
// priority, attempts, nextAttempt, expiresAt]
Napi::Value Locate(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double id = a.id();
  F64 out = a.f64("out");
  a.expect(out.length >= 7, "out must have 7 entries");
  if (a.failed()) return a.undefined();
  mqc::MessageInfo mi;
  if (s->core->locate(id, &mi) != Status::Ok) return a.num(0);
  out[0] = mi.domain;
  out[1] = mi.binding;
  out[2] = static_cast<double>(mi.place);
  out[3] = mi.priority;
  out[4] = mi.attempts;
  out[5] = mi.nextAttempt;
  out[6] = mi.expiresAt;
  return a.num(static_cast<double>(mi.place));
}

Napi::Value ActiveSize(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  uint32_t b = a.binding();
  if (a.failed()) return a.undefined();
  return a.num(static_cast<double>(s->core->activeSize(d, b)));
}

Napi::Value DelayedSize(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  if (a.failed()) return a.undefined();
  return a.num(static_cast<double>(s->core->delayedSize(d)));
}

// peekActive(core, domain, binding, offset, out: Float64Array) -> n (k = out.length)
Napi::Value PeekActive(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  uint32_t b = a.binding();
  double offset = a.integer("offset", 0, mqc::kMaxId);
  F64 out = a.f64("out");
  if (a.failed()) return a.undefined();
  return a.num(static_cast<double>(s->core->peekActive(d, b, static_cast<size_t>(offset), out.data, out.length)));
}

// peekDelayed(core, domain, offset, out) -> n
Napi::Value PeekDelayed(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  double offset = a.integer("offset", 0, mqc::kMaxId);
  F64 out = a.f64("out");
  if (a.failed()) return a.undefined();
  return a.num(static_cast<double>(s->core->peekDelayed(d, static_cast<size_t>(offset), out.data, out.length)));
}

// removeActive(core, domain, binding, id) -> boolean
Napi::Value RemoveActive(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  uint32_t b = a.binding();
  double id = a.id();
  if (a.failed()) return a.undefined();
  return a.boolean(s->core->removeActive(d, b, id) == Status::Ok);
}

// take(core, domain, binding, now, out: Float64Array) -> n taken into flight (k = out.length)
Napi::Value Take(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  uint32_t b = a.binding();
  double now = a.time("now");
  F64 out = a.f64("out");
  if (a.failed()) return a.undefined();
  return a.num(static_cast<double>(s->core->take(d, b, out.length, now, out.data)));
}

// takeFor(core, connectionId, now, out: Float64Array) -> taken: the open connection's (domain, binding)
Napi::Value TakeFor(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double id = a.connectionId();
  double now = a.time("now");
  F64 out = a.f64("out");
  if (a.failed()) return a.undefined();
  size_t n = 0;
  if (!a.check(s->core->takeFor(id, out.length, now, out.data, &n), "connectionId", id)) return a.undefined();
  return a.num(static_cast<double>(n));
}

Napi::Value Settle(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double id = a.id();
  if (a.failed()) return a.undefined();
  a.check(s->core->settle(id), "id", id);
  return a.undefined();
}

// settleBatch(core, ids: Float64Array): all in flight, all settled, or nothing changes
Napi::Value SettleBatch(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  F64 ids = a.f64("ids");
  if (a.failed()) return a.undefined();
  size_t failedAt = 0;
  Status st = s->core->settleBatch(ids.data, ids.length, &failedAt);
  a.checkBatch(st, failedAt);
  return a.undefined();
}

// defer(core, id, nextAttempt, now)
Napi::Value Defer(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double id = a.id();
  double next = a.time("nextAttempt");
  double now = a.time("now");
  if (a.failed()) return a.undefined();
  a.check(s->core->defer(id, next, now), "id", id);
  return a.undefined();
}

// deferBatch(core, ids: Float64Array, nextAttempt, now): all in flight, all deferred, or nothing changes
Napi::Value DeferBatch(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  F64 ids = a.f64("ids");
  double next = a.time("nextAttempt");
  double now = a.time("now");
  if (a.failed()) return a.undefined();
  size_t failedAt = 0;
  Status st = s->core->deferBatch(ids.data, ids.length, next, now, &failedAt);
  a.checkBatch(st, failedAt);
  return a.undefined();
}

Napi::Value Untake(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double id = a.id();
  if (a.failed()) return a.undefined();
  a.check(s->core->untake(id), "id", id);
  return a.undefined();
}

// setAttempts(core, id, attempts) -> undefined; a queued message's attempt count (recovery)
Napi::Value SetAttempts(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double id = a.id();
  uint32_t attempts = a.u32("attempts", 65535);
  if (a.failed()) return a.undefined();
  a.check(s->core->setAttempts(id, static_cast<uint16_t>(attempts)), "id", id);
  return a.undefined();
}

// forgetDomain(core, domain) -> 0 forgotten, 1 in use (mail or a connection), 2 held (suspended, or
// a grant or expired message naming it not drained yet): Core::forgetDomain
Napi::Value ForgetDomain(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  if (a.failed()) return a.undefined();
  mqc::Status st = s->core->forgetDomain(d);
  return a.num(st == mqc::Status::Ok ? 0 : st == mqc::Status::DomainInUse ? 1 : 2);
}

// drainIdle(core, out: Uint32Array) -> n: the domains that became idle since the last call
// (Core::drainIdle)
Napi::Value DrainIdle(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  U32s out = a.u32s("out");
  if (a.failed()) return a.undefined();
  return a.num(static_cast<double>(s->core->drainIdle(out.data, out.length)));
}

// dueDomains(core, now, out: Uint32Array) -> n
Napi::Value DueDomains(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double now = a.time("now");
  U32s out = a.u32s("out");
  if (a.failed()) return a.undefined();
  return a.num(static_cast<double>(s->core->dueDomains(now, out.data, out.length)));
}

// computeGoal(core, domain, binding, goalsz) -> goal (-1: nothing to do)
Napi::Value ComputeGoal(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  uint32_t b = a.binding();
  double goalsz = a.integer("goalsz", -2147483648.0, 2147483647.0);
  if (a.failed()) return a.undefined();
  return a.num(static_cast<double>(s->core->computeGoal(d, b, static_cast<int32_t>(goalsz))));
}

// openConnections(core, domain, binding, goal, reserve, now) -> opened
Napi::Value OpenConnections(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  uint32_t b = a.binding();
  double goal = a.integer("goal", -mqc::kMaxId, mqc::kMaxId);
  uint32_t reserve = a.u32("reserve", 0xfffffffeu);
  double now = a.time("now");
  if (a.failed()) return a.undefined();
  return a.num(s->core->openConnections(d, b, static_cast<int64_t>(goal), reserve, now));
}

// defaultMaintain(core, domain, binding, now, goalsz, reserve) -> opened
Napi::Value DefaultMaintain(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  uint32_t b = a.binding();
  double now = a.time("now");
  double goalsz = a.integer("goalsz", -2147483648.0, 2147483647.0);
  uint32_t reserve = a.u32("reserve", 0xfffffffeu);
  if (a.failed()) return a.undefined();
  return a.num(s->core->defaultMaintain(d, b, now, static_cast<int32_t>(goalsz), reserve));
}

// visitDefault(core, binding, reserve) -> opened: defaultMaintain for the domain, now and goalsz of
// the last prepareVisit (the per-pair call of a pass driven from JavaScript)
Napi::Value VisitDefault(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t b = a.binding();
  uint32_t reserve = a.u32("reserve", 0xfffffffeu);
  if (a.failed()) return a.undefined();
  uint32_t opened;
  Status st = s->core->visitDefault(b, reserve, &opened);
  if (st == Status::BadArgument) return a.codeError("ERR_NO_VISIT", "visitDefault: no prepareVisit yet");
  if (!a.check(st, "binding")) return a.undefined();
  return a.num(opened);
}

// maintainDomain(core, domain, now, goalsz, reserve (-1: per pair)) -> opened
Napi::Value MaintainDomain(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  double now = a.time("now");
  double goalsz = a.integer("goalsz", -2147483648.0, 2147483647.0);
  double reserve = a.integer("reserve", -1, kMaxCount);
  if (a.failed()) return a.undefined();
  return a.num(s->core->maintainDomain(d, now, static_cast<int32_t>(goalsz), static_cast<int64_t>(reserve)));
}

// maintainSlice(core, now, maxDomains, fresh, maxGrants, out: Float64Array(2)) -> opened: the next
// slice of a pass with the native default only (fresh: abandon a pass in progress and start a new
// one), ending early once it opened maxGrants connections (Infinity: no cap); out = [domains
// visited, domains of the pass still to visit]. Grants are drained as usual.
Napi::Value MaintainSlice(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double now = a.time("now");
  double maxDomains = a.integer("maxDomains", 1, 4294967295.0);
  bool fresh = a.flag("fresh");
  double maxGrants = a.number("maxGrants");
  a.expect(maxGrants >= 1 && (maxGrants == INFINITY || std::floor(maxGrants) == maxGrants),
           "maxGrants must be a whole number from 1, or Infinity");
  F64 out = a.f64("out");
  a.expect(out.length >= 2, "out must have 2 entries");
  if (a.failed()) return a.undefined();
  size_t cap = maxGrants >= 4294967295.0 ? SIZE_MAX : static_cast<size_t>(maxGrants);
  size_t visited = 0, remaining = 0;
  uint32_t opened = s->core->maintainSlice(now, static_cast<size_t>(maxDomains), cap, fresh, &visited, &remaining);
  out[0] = static_cast<double>(visited);
  out[1] = static_cast<double>(remaining);
  return a.num(opened);
}

// prepareVisit(core, domain, now, goalsz, out: Uint32Array(3 * bindings)) -> n: prepareDomain,
// then the bindings with mail in this visit's order in out[0..n), each one's reserve in
// out[bindings + j], and each binding's wanted connections beyond those held in out[2 * bindings + b]
Napi::Value PrepareVisit(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  double now = a.time("now");
  double goalsz = a.integer("goalsz", -2147483648.0, 2147483647.0);
  U32s out = a.u32s("out");
  size_t nb = s != nullptr ? s->core->bindings() : 0;
  a.expect(out.length >= 3 * nb, "out must have three entries per binding");
  if (a.failed()) return a.undefined();
  return a.num(static_cast<double>(
      s->core->prepareVisit(d, now, static_cast<int32_t>(goalsz), out.data, &out[nb], &out[2 * nb])));
}

// nextSlice(core, now, maxDomains, fresh, out: Uint32Array) -> n: the domains of the next slice of
// a pass in out[1..n] (at most min(maxDomains, out.length - 1)), and the domains of the pass still
// to visit after them in out[0]; fresh: abandon a pass in progress and start a new one
Napi::Value NextSlice(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double now = a.time("now");
  double maxDomains = a.integer("maxDomains", 1, 4294967295.0);
  bool fresh = a.flag("fresh");
  U32s out = a.u32s("out");
  a.expect(out.length >= 2, "out must have at least 2 entries");
  if (a.failed()) return a.undefined();
  size_t k = static_cast<size_t>(maxDomains) < out.length - 1 ? static_cast<size_t>(maxDomains) : out.length - 1;
  size_t remaining = 0;
  size_t n = s->core->nextSlice(now, k, fresh, &out[1], &remaining);
  out[0] = static_cast<uint32_t>(remaining);
  return a.num(static_cast<double>(n));
}

// unvisitSlice(core, k) -> how many of the last k domains nextSlice handed out went back to the pass
Napi::Value UnvisitSlice(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double k = a.integer("k", 0, 4294967295.0);
  if (a.failed()) return a.undefined();
  return a.num(static_cast<double>(s->core->unvisitSlice(static_cast<size_t>(k))));
}

Napi::Value ReserveFor(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  uint32_t b = a.binding();
  if (a.failed()) return a.undefined();
  return a.num(s->core->reserveFor(d, b));
}

Napi::Value ReleaseConnection(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double id = a.connectionId();
  if (a.failed()) return a.undefined();
  a.check(s->core->releaseConnection(id), "connectionId", id);
  return a.undefined();
}

// setMessageThrottle(core, domain, binding, throttle (-1: none))
Napi::Value SetMessageThrottle(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  uint32_t b = a.binding();
  double t = a.integer("throttle", -1, 2147483647.0);
  if (a.failed()) return a.undefined();
  if (s->core->ledger().setMessageThrottle(d, b, static_cast<int32_t>(t)) != Status::Ok)
    return a.rangeError("throttle: unknown throttle index");
  return a.undefined();
}

// setClusterHeld(core, domain (-1: server-wide), binding (-1: the domain), held (-1: not capped)):
// the slots of a fleet-wide cap this node holds leases for (lib/cluster, decision 48).
Napi::Value SetClusterHeld(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double d = a.integer("domain", -1, 4294967295.0);
  double b = a.integer("binding", -1, 65535);
  double held = a.integer("held", -1, 4294967294.0);
  if (a.failed()) return a.undefined();
  mqc::ConnectionLedger& l = s->core->ledger();
  if (d >= static_cast<double>(l.domains())) return a.rangeError("domain: unknown domain index");
  if (b >= static_cast<double>(l.bindings())) return a.rangeError("binding: unknown binding slot");
  if (d < 0 && b >= 0) return a.rangeError("binding: must be -1 when domain is -1 (server-wide)");
  uint32_t h = held < 0 ? mqc::kUnlimited : static_cast<uint32_t>(held);
  if (d < 0)
    l.setHeldServer(h);
  else if (b < 0)
    l.setHeldDomain(static_cast<uint32_t>(d), h);
  else
    l.setHeldPair(static_cast<uint32_t>(d), static_cast<uint32_t>(b), h);
  return a.undefined();
}

// setClusterThrottles(core, domain, binding, connections, messages): the pair's buckets of
// fleet-wide throttles (-1: none; lib/cluster, decision 51).
Napi::Value SetClusterThrottles(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  uint32_t b = a.binding();
  double conn = a.integer("connections", -1, 2147483647.0);
  double msgs = a.integer("messages", -1, 2147483647.0);
  if (a.failed()) return a.undefined();
  if (s->core->ledger().setClusterThrottles(d, b, static_cast<int32_t>(conn), static_cast<int32_t>(msgs)) != Status::Ok)
    return a.rangeError("connections, messages: unknown throttle index, or the pair's own");
  return a.undefined();
}

// setThrottleAllowance(core, throttle, allowance): grants a bucket may make in its window (0 to its
// count): the slots of a fleet-wide throttle this node holds (lib/cluster).
Napi::Value SetThrottleAllowance(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double t = a.integer("throttle", 0, 2147483647.0);
  uint32_t allowance = a.u32("allowance", mqc::kMaxThrottleCount);
  if (a.failed()) return a.undefined();
  if (s->core->ledger().setThrottleAllowance(static_cast<int32_t>(t), allowance) != Status::Ok)
    return a.rangeError("throttle: unknown throttle index, or allowance above its count");
  return a.undefined();
}

// messageNextAllowedAt(core, domain, binding, now) -> time
Napi::Value MessageNextAllowedAt(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  uint32_t b = a.binding();
  double now = a.time("now");
  if (a.failed()) return a.undefined();
  return a.num(s->core->messageNextAllowedAt(d, b, now));
}

// migrateConnection(core, connectionId, domain) -> true when moved, false when the domain has no room
Napi::Value MigrateConnection(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double id = a.connectionId();
  uint32_t d = a.domain();
  if (a.failed()) return a.undefined();
  Status st = s->core->migrateConnection(id, d);
  if (st == Status::TooMany) return a.boolean(false);
  if (!a.check(st, "connectionId", id)) return a.undefined();
  return a.boolean(true);
}

// A host index of this core (after core()).
uint32_t hostArg(Args& a, CoreSlot* s) {
  uint32_t h = a.u32("host", 0x7fffffffu);
  a.expect(s == nullptr || h < s->core->ledger().hosts(), "host: unknown host index");
  return h;
}

// addHost(core, maxConnections, bindingMax: Float64Array per binding) -> host index. The first one
// turns the ledger's Host scope on (decision 47).
Napi::Value AddHost(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double max = a.number("maxConnections");
  F64 bmax = a.f64("bindingMax");
  if (a.failed()) return a.undefined();
  uint32_t nb = s->core->bindings();
  a.expect(bmax.length == nb, "bindingMax length does not match bindings");
  uint32_t m = a.limit(max, "maxConnections out of range");
  std::vector<uint32_t> per;
  for (uint32_t b = 0; b < nb && !a.failed(); ++b) per.push_back(a.limit(bmax[b], "bindingMax out of range"));
  if (a.failed()) return a.undefined();
  uint32_t index = 0;
  if (!a.check(s->core->ledger().addHost(m, per, &index), "addHost")) return a.undefined();
  return a.num(index);
}

// setDomainHosts(core, domain, hosts: Uint32Array of host indexes in preference order)
Napi::Value SetDomainHosts(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  U32s hosts = a.u32s("hosts");
  a.expect(hosts.length <= mqc::kMaxDomainHosts, "hosts: more than 256");
  if (a.failed()) return a.undefined();
  std::vector<uint32_t> list(hosts.data, hosts.data + hosts.length);
  if (s->core->ledger().setDomainHosts(d, list) != Status::Ok)
    return a.rangeError("hosts: unknown or repeated host index, or more than 256");
  return a.undefined();
}

// claimHost(core, connectionId, host) -> true when the connection is charged to host, false when
// host has no room for it
Napi::Value ClaimHost(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double id = a.connectionId();
  uint32_t h = hostArg(a, s);
  if (a.failed()) return a.undefined();
  Status st = s->core->ledger().claimHost(id, h);
  if (st == Status::TooMany) return a.boolean(false);
  if (!a.check(st, "connectionId", id)) return a.undefined();
  return a.boolean(true);
}

// connectionHost(core, connectionId) -> the host index the connection is charged to, or -1
Napi::Value ConnectionHost(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double id = a.connectionId();
  if (a.failed()) return a.undefined();
  if (s->core->ledger().lease(id) == nullptr) {
    a.check(Status::UnknownConnection, "connectionId", id);
    return a.undefined();
  }
  uint32_t h = s->core->ledger().leaseHost(id);
  return a.num(h == mqc::kNoHost ? -1.0 : static_cast<double>(h));
}

// hostCount(core, host) -> connections charged to host
Napi::Value HostCount(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t h = hostArg(a, s);
  if (a.failed()) return a.undefined();
  return a.num(s->core->ledger().hostCount(h));
}

Napi::Value NextDueAt(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  if (a.failed()) return a.undefined();
  return a.num(s->core->nextDueAt());
}

// flushDomain(core, domain, now) -> messages made due
Napi::Value FlushDomain(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  double now = a.time("now");
  if (a.failed()) return a.undefined();
  return a.num(static_cast<double>(s->core->flushDomain(d, now)));
}

// failDomain(core, domain, out: Float64Array) -> ids removed into out (call until 0)
Napi::Value FailDomain(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  F64 out = a.f64("out");
  if (a.failed()) return a.undefined();
  return a.num(static_cast<double>(s->core->failDomain(d, out.data, out.length)));
}

// retryNow(core, id, now) -> true when a delayed message was made due
Napi::Value RetryNow(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double id = a.id();
  double now = a.time("now");
  if (a.failed()) return a.undefined();
  return a.boolean(s->core->retryNow(id, now) == Status::Ok);
}

// delayedByBinding(core, domain, out: Float64Array(bindings))
Napi::Value DelayedByBinding(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  F64 out = a.f64("out");
  a.expect(s == nullptr || out.length >= s->core->bindings(), "out must have one entry per binding");
  if (a.failed()) return a.undefined();
  s->core->delayedByBinding(d, out.data);
  return a.undefined();
}

// connectionsByDomain(core, out: Float64Array) -> domains written: out[d] = connections of domain d
Napi::Value ConnectionsByDomain(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  F64 out = a.f64("out");
  if (a.failed()) return a.undefined();
  return a.num(static_cast<double>(s->core->connectionsByDomain(out.data, out.length)));
}

// ageShape(core, now, expirationMs: Float64Array, edges: Float64Array, out: Float64Array) -> domains
// written: out[d * (edges.length + 2) + k] += messages of domain d in age bucket k (Core::ageShape)
Napi::Value AgeShape(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  double now = a.time("now");
  F64 expiration = a.f64("expirationMs");
  F64 edges = a.f64("edges");
  F64 out = a.f64("out");
  if (a.failed()) return a.undefined();
  size_t n = 0;
  if (!a.check(s->core->ageShape(now, expiration.data, expiration.length, edges.data, edges.length, out.data,
                                 out.length, &n),
               "ageShape (edges ascending, finite and >= 0, at most 64; expirationMs and out long enough)"))
    return a.undefined();
  return a.num(static_cast<double>(n));
}

// drainGrants(core, out: Float64Array, offset = 0) -> grants written (3 entries each: id, domain,
// binding), from grant slot offset of out on
Napi::Value DrainGrants(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  F64 out = a.f64("out");
  // offset (grants, default 0): write from out[3 * offset], so a growing list needs no view per call.
  double offset = a.absent() ? 0 : a.integer("offset", 0, static_cast<double>(out.length / 3));
  if (a.failed()) return a.undefined();
  size_t first = static_cast<size_t>(offset);
  return a.num(static_cast<double>(s->core->drainGrants(out.data + 3 * first, out.length / 3 - first)));
}

// drainExpired(core, out: Float64Array, domains?: Float64Array) -> ids written (with each one's
// domain index in domains, which must be as long as out)
Napi::Value DrainExpired(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  F64 out = a.f64("out");
  bool withDomains = !a.absent();
  F64 doms = withDomains ? a.f64("domains") : F64{};
  a.expect(!withDomains || doms.length >= out.length, "domains must be as long as out");
  if (a.failed()) return a.undefined();
  return a.num(static_cast<double>(s->core->drainExpired(out.data, doms.data, out.length)));
}

// pending(core, out: Float64Array(2)) -> [grants, expired] waiting to be drained
Napi::Value Pending(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  F64 out = a.f64("out");
  a.expect(out.length >= 2, "out must have 2 entries");
  if (a.failed()) return a.undefined();
  out[0] = static_cast<double>(s->core->pendingGrants());
  out[1] = static_cast<double>(s->core->pendingExpired());
  return a.undefined();
}

// domainInfo(core, domain, out: Float64Array(3 + 3 * bindings)):
// [activeTotal, delayed, connections, then per binding: active, connections, suspended]
Napi::Value DomainInfo(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  F64 out = a.f64("out");
  uint32_t nb = s != nullptr ? s->core->bindings() : 0;
  a.expect(out.length >= 3 + 3 * static_cast<size_t>(nb), "out is too short");
  if (a.failed()) return a.undefined();
  const mqc::ConnectionLedger& l = s->core->ledger();
  out[0] = static_cast<double>(s->core->activeTotal(d));
  out[1] = static_cast<double>(s->core->delayedSize(d));
  out[2] = l.domainCount(d);
  for (uint32_t b = 0; b < nb; ++b) {
    out[3 + 3 * b] = static_cast<double>(s->core->activeSize(d, b));
    out[4 + 3 * b] = l.pairCount(d, b);
    out[5 + 3 * b] = l.pairLimits(d, b).suspended ? 1 : 0;
  }
  return a.undefined();
}

// ledgerCounts(core, domain, out: Float64Array(groups)): connections per (group, domain)
Napi::Value GroupDomainCounts(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t d = a.domain();
  F64 out = a.f64("out");
  if (a.failed()) return a.undefined();
  const mqc::ConnectionLedger& l = s->core->ledger();
  for (uint32_t g = 0; g < l.groups() && g < out.length; ++g) out[g] = l.groupDomainCount(g, d);
  return a.undefined();
}

Napi::Value GroupCount(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  uint32_t g = a.u32("group", 65535);
  a.expect(s == nullptr || g < s->core->ledger().groups(), "group: unknown group");
  if (a.failed()) return a.undefined();
  return a.num(s->core->ledger().groupCount(g));
}

Napi::Value CheckInvariants(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  if (a.failed()) return a.undefined();
  return a.boolean(s->core->checkInvariants());
}

Napi::Value BytesReserved(const Napi::CallbackInfo& info) {
  Args a(info);
  CoreSlot* s = a.core();
  if (a.failed()) return a.undefined();
  return a.num(static_cast<double>(s->core->bytesReserved()));
}

// goalCurve(maxConnections, queued, aggressiveness): the default goal curve, for tests and docs
Napi::Value GoalCurve(const Napi::CallbackInfo& info) {
  Args a(info);
  double m = a.integer("maxConnections", 0, kMaxCount);
  double q = a.integer("queued", 0, mqc::kMaxId);
  double g = a.finite("aggressiveness");
  a.expect(g > 0 && g <= 1, "aggressiveness must be in (0, 1]");
  if (a.failed()) return a.undefined();
  return a.num(mqc::connectionGoal(static_cast<uint32_t>(m), static_cast<uint64_t>(q), g));
}

Napi::Value CounterNames(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env());
  for (uint32_t i = 0; i < mqc::kFixedCounters; ++i) a.Set(i, Napi::String::New(info.Env(), mqc::counterName(i)));
  return a;
}

// The crossing floor for benchmarks: a module-level function that does nothing.
Napi::Value Noop(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }

// setErrorClass(errorClass): the class coded errors are made with from now on in this environment,
// `new errorClass(code, message)` (lib/native.ts passes MailQueueError once, at load).
Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Value v = info[0];
  if (!v.IsFunction()) {
    throwType(info.Env(), "errorClass must be a function");
    return info.Env().Undefined();
  }
  static_cast<AddonData*>(info.Data())->errorClass = Napi::Persistent(v.As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  // The registry and the error class live exactly as long as this environment (main thread or worker).
  napi_status st = napi_set_instance_data(
      env, data, [](napi_env, void* d, void*) { delete static_cast<AddonData*>(d); }, nullptr);
  if (st != napi_ok) {
    delete data;
    Napi::Error::New(env, "mail-queue-core: could not set instance data").ThrowAsJavaScriptException();
    return exports;
  }
  struct Entry {
    const char* name;
    Napi::Function::Callback fn;
  };
  static const Entry entries[] = {
      {"createCore", CreateCore},
      {"destroyCore", DestroyCore},
      {"addThrottle", AddThrottle},
      {"addDomain", AddDomain},
      {"setSuspended", SetSuspended},
      {"setDomainLimits", SetDomainLimits},
      {"setServerLimits", SetServerLimits},
      {"setThrottleRate", SetThrottleRate},
      {"leaseExcess", LeaseExcess},
      {"enqueue", Enqueue},
      {"enqueueBatch", EnqueueBatch},
      {"enqueueArrivals", EnqueueArrivals},
      {"cancel", Cancel},
      {"countersBuffer", CountersBuffer},
      {"flightBuffer", FlightBuffer},
      {"trackFlight", TrackFlight},
      {"applyOutcomes", ApplyOutcomes},
      {"cancelBatch", CancelBatch},
      {"locate", Locate},
      {"setAttempts", SetAttempts},
      {"activeSize", ActiveSize},
      {"delayedSize", DelayedSize},
      {"peekActive", PeekActive},
      {"peekDelayed", PeekDelayed},
      {"removeActive", RemoveActive},
      {"take", Take},
      {"takeFor", TakeFor},
      {"settle", Settle},
      {"settleBatch", SettleBatch},
      {"defer", Defer},
      {"deferBatch", DeferBatch},
      {"untake", Untake},
      {"dueDomains", DueDomains},
      {"forgetDomain", ForgetDomain},
      {"drainIdle", DrainIdle},
      {"computeGoal", ComputeGoal},
      {"openConnections", OpenConnections},
      {"defaultMaintain", DefaultMaintain},
      {"maintainDomain", MaintainDomain},
      {"maintainSlice", MaintainSlice},
      {"prepareVisit", PrepareVisit},
      {"visitDefault", VisitDefault},
      {"nextSlice", NextSlice},
      {"unvisitSlice", UnvisitSlice},
      {"reserveFor", ReserveFor},
      {"releaseConnection", ReleaseConnection},
      {"drainGrants", DrainGrants},
      {"connectionsByDomain", ConnectionsByDomain},
      {"ageShape", AgeShape},
      {"drainExpired", DrainExpired},
      {"pending", Pending},
      {"domainInfo", DomainInfo},
      {"groupDomainCounts", GroupDomainCounts},
      {"groupCount", GroupCount},
      {"setMessageThrottle", SetMessageThrottle},
      {"messageNextAllowedAt", MessageNextAllowedAt},
      {"setClusterHeld", SetClusterHeld},
      {"setClusterThrottles", SetClusterThrottles},
      {"setThrottleAllowance", SetThrottleAllowance},
      {"migrateConnection", MigrateConnection},
      {"nextDueAt", NextDueAt},
      {"addHost", AddHost},
      {"setDomainHosts", SetDomainHosts},
      {"claimHost", ClaimHost},
      {"connectionHost", ConnectionHost},
      {"hostCount", HostCount},
      {"flushDomain", FlushDomain},
      {"failDomain", FailDomain},
      {"retryNow", RetryNow},
      {"delayedByBinding", DelayedByBinding},
      {"checkInvariants", CheckInvariants},
      {"bytesReserved", BytesReserved},
      {"goalCurve", GoalCurve},
      {"counterNames", CounterNames},
      {"noop", Noop},
      {"setErrorClass", SetErrorClass},
  };
  for (const Entry& e : entries) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name, data));
  // The core's limits that JavaScript applies before a call, so that they are written once.
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("maxDomainHosts", Napi::Number::New(env, static_cast<double>(mqc::kMaxDomainHosts)));
  limits.Set("flightSetBits", Napi::Number::New(env, static_cast<double>(mqc::Core::kFlightSetBits)));
  limits.Set("flightWays", Napi::Number::New(env, static_cast<double>(mqc::Core::kFlightWays)));
  limits.Set("flightStride", Napi::Number::New(env, static_cast<double>(mqc::Core::kFlightStride)));
  limits.Freeze();
  exports.Set("limits", limits);
  return exports;
}

}  // namespace
}  // namespace mqc_addon

static Napi::Object InitMailQueueCore(Napi::Env env, Napi::Object exports) { return mqc_addon::Init(env, exports); }

NODE_API_MODULE(mail_queue_core, InitMailQueueCore)

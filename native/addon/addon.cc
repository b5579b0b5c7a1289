// The Node-API glue: module-level functions over a numeric core handle (a plain function costs about
// a third of a wrapped-object method), arguments checked before use, results written into typed
// arrays that the caller owns. No policy lives here: every rule is in native/core or lib/.
#include <napi.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "../core/connection_goal.hpp"
#include "../core/core.hpp"
#include "args.hpp"
#include "core_registry.hpp"

namespace mqc_addon {
namespace {

using mqc::Status;

CoreRegistry* registryOf(const Napi::CallbackInfo& info) { return static_cast<CoreRegistry*>(info.Data()); }

// Resolves argument 0 to a live core of this environment, or throws ERR_CLOSED.
CoreSlot* coreArg(const Napi::CallbackInfo& info) {
  double h;
  if (napi_get_value_double(info.Env(), info[0], &h) != napi_ok) {
    throwType(info.Env(), "core handle must be a number");
    return nullptr;
  }
  CoreSlot* s = registryOf(info)->find(h);
  if (s == nullptr) throwCode(info.Env(), "ERR_CLOSED", "the core is closed");
  return s;
}

bool domainArg(const Napi::CallbackInfo& info, size_t i, CoreSlot* s, uint32_t* d) {
  double v;
  if (!argInt(info, i, "domain", 0, 4294967294.0, &v)) return false;
  if (v >= static_cast<double>(s->core->domains())) {
    throwRange(info.Env(), "domain: unknown domain index " + std::to_string(static_cast<int64_t>(v)));
    return false;
  }
  *d = static_cast<uint32_t>(v);
  return true;
}

bool bindingArg(const Napi::CallbackInfo& info, size_t i, CoreSlot* s, uint32_t* b) {
  double v;
  if (!argInt(info, i, "binding", 0, 65535, &v)) return false;
  if (v >= s->core->bindings()) {
    throwRange(info.Env(), "binding: unknown binding slot " + std::to_string(static_cast<int64_t>(v)));
    return false;
  }
  *b = static_cast<uint32_t>(v);
  return true;
}

bool idArg(const Napi::CallbackInfo& info, size_t i, const char* name, double* id) {
  return argInt(info, i, name, 0, mqc::kMaxId, id);
}

// Maps a core status to the JavaScript error the API documents. Returns true for Ok. The message
// (`what`, then the number when one is given) is built only on failure: these run on every settle.
bool checkSlow(Napi::Env env, Status st, const std::string& what);
inline bool check(Napi::Env env, Status st, const char* what, double n = std::nan("")) {
  if (st == Status::Ok) return true;
  return checkSlow(env, st, std::isnan(n) ? std::string(what) : std::string(what) + " " + std::to_string(static_cast<int64_t>(n)));
}

bool checkSlow(Napi::Env env, Status st, const std::string& what) {
  switch (st) {
    case Status::Ok: return true;
    case Status::BadArgument: throwRange(env, what + ": out of range"); return false;
    case Status::BadDomain: throwRange(env, what + ": unknown domain"); return false;
    case Status::BadBinding: throwRange(env, what + ": unknown binding"); return false;
    case Status::DuplicateId: throwCode(env, mqc::statusName(st), what + ": duplicate id"); return false;
    case Status::UnknownId: throwCode(env, mqc::statusName(st), what + ": no such message"); return false;
    case Status::InFlight:
      throwCode(env, mqc::statusName(st), what + ": the message is in flight on a connection");
      return false;
    case Status::NotInFlight: throwCode(env, mqc::statusName(st), what + ": the message is not in flight"); return false;
    case Status::UnknownConnection:
      throwCode(env, mqc::statusName(st), what + ": no such open connection");
      return false;
    case Status::TooMany: throwCode(env, mqc::statusName(st), what + ": table full"); return false;
  }
  throwCode(env, "ERR_INTERNAL", what + ": unexpected status");
  return false;
}

#define CORE_OR_RETURN(s)            \
  CoreSlot* s = coreArg(info);       \
  if (s == nullptr) return info.Env().Undefined()
#define OR_RETURN(expr) \
  if (!(expr)) return info.Env().Undefined()

Napi::Value Num(const Napi::CallbackInfo& info, double v) { return Napi::Number::New(info.Env(), v); }

// createCore(config: Float64Array [bindings, groups, serverMax, serverReserve],
//            groupOfBinding: Int32Array, bindingMax: Float64Array, groupMax: Float64Array) -> handle
Napi::Value CreateCore(const Napi::CallbackInfo& info) {
  double* cfg; size_t cfgLen;
  int32_t* gob; size_t gobLen;
  double* bmax; size_t bmaxLen;
  double* gmax; size_t gmaxLen;
  OR_RETURN(argF64(info, 0, "config", &cfg, &cfgLen));
  OR_RETURN(argI32(info, 1, "groupOfBinding", &gob, &gobLen));
  OR_RETURN(argF64(info, 2, "bindingMax", &bmax, &bmaxLen));
  OR_RETURN(argF64(info, 3, "groupMax", &gmax, &gmaxLen));
  Napi::Env env = info.Env();
  if (cfgLen != 4) return throwRange(env, "config must have 4 entries"), env.Undefined();
  auto isCount = [](double v, double hi) { return v >= 0 && v <= hi && std::floor(v) == v; };
  if (!isCount(cfg[0], 65535) || cfg[0] < 1) return throwRange(env, "bindings must be 1..65535"), env.Undefined();
  if (!isCount(cfg[1], 65535)) return throwRange(env, "groups must be 0..65535"), env.Undefined();
  if (!isCount(cfg[2], 4294967294.0)) return throwRange(env, "serverMax out of range"), env.Undefined();
  if (!isCount(cfg[3], 4294967294.0)) return throwRange(env, "serverReserve out of range"), env.Undefined();
  mqc::LedgerConfig lc;
  lc.bindings = static_cast<uint32_t>(cfg[0]);
  lc.groups = static_cast<uint32_t>(cfg[1]);
  lc.serverMax = static_cast<uint32_t>(cfg[2]);
  lc.serverReserve = static_cast<uint32_t>(cfg[3]);
  if (gobLen != lc.bindings || bmaxLen != lc.bindings || gmaxLen != lc.groups)
    return throwRange(env, "groupOfBinding/bindingMax/groupMax lengths do not match the counts"), env.Undefined();
  for (uint32_t b = 0; b < lc.bindings; ++b) {
    if (gob[b] < -1 || gob[b] >= static_cast<int32_t>(lc.groups))
      return throwRange(env, "groupOfBinding: group index out of range"), env.Undefined();
    if (!(bmax[b] >= 0) || (bmax[b] != INFINITY && !isCount(bmax[b], 4294967294.0)))
      return throwRange(env, "bindingMax out of range"), env.Undefined();
    lc.groupOfBinding.push_back(gob[b]);
    lc.bindingMax.push_back(bmax[b] == INFINITY ? mqc::kUnlimited : static_cast<uint32_t>(bmax[b]));
  }
  for (uint32_t g = 0; g < lc.groups; ++g) {
    if (!(gmax[g] >= 0) || (gmax[g] != INFINITY && !isCount(gmax[g], 4294967294.0)))
      return throwRange(env, "groupMax out of range"), env.Undefined();
    lc.groupMax.push_back(gmax[g] == INFINITY ? mqc::kUnlimited : static_cast<uint32_t>(gmax[g]));
  }
  size_t n = mqc::Core::counterCountFor(lc);
  std::shared_ptr<double> counters(new double[n], std::default_delete<double[]>());
  double handle = registryOf(info)->add(std::make_unique<mqc::Core>(std::move(lc), std::move(counters)));
  if (handle < 0) return throwCode(env, "ERR_TOO_MANY", "too many open cores"), env.Undefined();
  return Num(info, handle);
}

// countersBuffer(core) -> ArrayBuffer over the core's own counters (counterNames() order, then
// connections and active per binding): the core writes them in place, so reading one costs no call.
// The buffer shares ownership of that memory: it stays valid after close(), after the core is
// collected, and wherever the buffer goes (a transfer to another thread included).
Napi::Value CountersBuffer(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  Napi::Env env = info.Env();
  auto* keep = new std::shared_ptr<double>(s->core->counterStorage());
  napi_value ab;
  napi_status st = napi_create_external_arraybuffer(
      env, keep->get(), s->core->counterCount() * sizeof(double),
      [](napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<double>*>(hint); }, keep, &ab);
  if (st != napi_ok) {
    delete keep;
    return throwCode(env, "ERR_INTERNAL", "could not make the counters buffer"), env.Undefined();
  }
  return Napi::Value(env, ab);
}

Napi::Value DestroyCore(const Napi::CallbackInfo& info) {
  double h;
  OR_RETURN(argNumber(info, 0, "core handle", &h));
  return Napi::Boolean::New(info.Env(), registryOf(info)->remove(h));
}

// addThrottle(core, count, windowMs) -> throttle index
Napi::Value AddThrottle(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t count;
  double windowMs;
  OR_RETURN(argU32(info, 1, "count", mqc::kMaxThrottleCount, &count));
  OR_RETURN(argFinite(info, 2, "windowMs", &windowMs));
  if (count < 1 || !(windowMs > 0)) return throwRange(info.Env(), "throttle count and window must be positive"), info.Env().Undefined();
  int32_t t = s->core->ledger().addThrottle(count, windowMs);
  if (t < 0) return throwRange(info.Env(), "windowMs must be at most 1e12"), info.Env().Undefined();
  return Num(info, t);
}

// addDomain(core, pairs: Float64Array [max, aggressiveness, throttle, suspended] per binding,
//           scopeMax, groupScopeMax: Float64Array per group) -> domain index
Napi::Value AddDomain(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double* pairs; size_t pairsLen;
  double scopeMax;
  double* gsm; size_t gsmLen;
  OR_RETURN(argF64(info, 1, "pairs", &pairs, &pairsLen));
  OR_RETURN(argNumber(info, 2, "scopeMax", &scopeMax));
  OR_RETURN(argF64(info, 3, "groupScopeMax", &gsm, &gsmLen));
  Napi::Env env = info.Env();
  uint32_t nb = s->core->bindings();
  uint32_t ng = s->core->ledger().groups();
  if (pairsLen != 4 * static_cast<size_t>(nb) || gsmLen != ng)
    return throwRange(env, "pairs/groupScopeMax lengths do not match bindings/groups"), env.Undefined();
  auto limitOf = [](double v, uint32_t* out) {
    if (v == INFINITY) { *out = mqc::kUnlimited; return true; }
    if (!(v >= 0) || v > 4294967294.0 || std::floor(v) != v) return false;
    *out = static_cast<uint32_t>(v);
    return true;
  };
  mqc::DomainLimits dl;
  if (!limitOf(scopeMax, &dl.scopeMax)) return throwRange(env, "scopeMax out of range"), env.Undefined();
  for (uint32_t g = 0; g < ng; ++g) {
    uint32_t v;
    if (!limitOf(gsm[g], &v)) return throwRange(env, "groupScopeMax out of range"), env.Undefined();
    dl.groupScopeMax.push_back(v);
  }
  for (uint32_t b = 0; b < nb; ++b) {
    mqc::PairLimits pl;
    const double* p = pairs + 4 * b;
    if (!limitOf(p[0], &pl.maxConnections)) return throwRange(env, "maxConnections out of range"), env.Undefined();
    if (!(p[1] > 0 && p[1] <= 1)) return throwRange(env, "aggressiveness must be in (0, 1]"), env.Undefined();
    pl.aggressiveness = p[1];
    if (!(p[2] >= -1) || std::floor(p[2]) != p[2] || p[2] >= static_cast<double>(s->core->ledger().throttleCount()))
      return throwRange(env, "throttle index out of range"), env.Undefined();
    pl.throttle = static_cast<int32_t>(p[2]);
    pl.suspended = p[3] != 0;
    dl.pairs.push_back(pl);
  }
  uint32_t index;
  OR_RETURN(check(env, s->core->addDomain(dl, &index), "addDomain"));
  return Num(info, index);
}

Napi::Value SetSuspended(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d, b;
  bool flag;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(bindingArg(info, 2, s, &b));
  OR_RETURN(argBool(info, 3, "suspended", &flag));
  s->core->ledger().setSuspended(d, b, flag);
  return info.Env().Undefined();
}

// enqueue(core, domain, binding, id, priority, nextAttempt, expiresAt, now)
Napi::Value Enqueue(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d, b, prio;
  double id, next, exp, now;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(bindingArg(info, 2, s, &b));
  OR_RETURN(idArg(info, 3, "id", &id));
  OR_RETURN(argU32(info, 4, "priority", 1, &prio));
  OR_RETURN(argTime(info, 5, "nextAttempt", &next));
  OR_RETURN(argNumber(info, 6, "expiresAt", &exp));
  OR_RETURN(argTime(info, 7, "now", &now));
  Status st = s->core->enqueue(d, b, id, static_cast<uint8_t>(prio), next, exp, now);
  OR_RETURN(check(info.Env(), st, "id", id));
  return info.Env().Undefined();
}

// enqueueBatch(core, domain, binding, ids: Float64Array, priorities: Uint8Array | null,
//              nextAttempt: number, or nextAttempts: Float64Array (one per id), expiresAt, now)
Napi::Value EnqueueBatch(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d, b;
  double* ids; size_t n;
  uint8_t* prios = nullptr; size_t np = 0;
  double* times = nullptr; size_t nt = 0;
  double next = 0, exp, now;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(bindingArg(info, 2, s, &b));
  OR_RETURN(argF64(info, 3, "ids", &ids, &n));
  if (!info[4].IsNull() && !info[4].IsUndefined()) {
    OR_RETURN(argU8(info, 4, "priorities", &prios, &np));
    if (np != n) return throwRange(info.Env(), "priorities must have as many entries as ids"), info.Env().Undefined();
  }
  if (info[5].IsTypedArray()) {
    OR_RETURN(argF64(info, 5, "nextAttempts", &times, &nt));
    if (nt != n) return throwRange(info.Env(), "nextAttempts must have as many entries as ids"), info.Env().Undefined();
  } else {
    OR_RETURN(argTime(info, 5, "nextAttempt", &next));
  }
  OR_RETURN(argNumber(info, 6, "expiresAt", &exp));
  OR_RETURN(argTime(info, 7, "now", &now));
  size_t failedAt = 0;
  Status st = times != nullptr ? s->core->enqueueBatchAt(d, b, ids, prios, times, n, exp, now, &failedAt)
                               : s->core->enqueueBatch(d, b, ids, prios, n, next, exp, now, &failedAt);
  if (st == Status::BadArgument && n > 0) {
    std::string at = "[" + std::to_string(failedAt) + "]";
    bool idOk = ids[failedAt] >= 0 && ids[failedAt] <= mqc::kMaxId && std::floor(ids[failedAt]) == ids[failedAt];
    bool prioOk = prios == nullptr || prios[failedAt] <= 1;
    return throwRange(info.Env(), !idOk     ? "ids" + at + " must be a safe integer from 0 to 2^53-1"
                                  : !prioOk ? "priorities" + at + " must be 0 or 1"
                                            : "nextAttempts" + at + " must be a finite number within ±8.64e15 ms"),
           info.Env().Undefined();
  }
  if (st != Status::Ok) return checkSlow(info.Env(), st, "ids[" + std::to_string(failedAt) + "]"), info.Env().Undefined();
  return info.Env().Undefined();
}

// cancel(core, id) -> true when a queued message was removed, false when the id is unknown
Napi::Value Cancel(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double id;
  OR_RETURN(idArg(info, 1, "id", &id));
  Status st = s->core->cancel(id);
  if (st == Status::UnknownId) return Napi::Boolean::New(info.Env(), false);
  OR_RETURN(check(info.Env(), st, "id", id));
  return Napi::Boolean::New(info.Env(), true);
}

// cancelBatch(core, ids: Float64Array) -> how many were cancelled (unknown ids skipped); an id in
// flight refuses the whole batch and nothing changes
Napi::Value CancelBatch(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double* ids; size_t n;
  OR_RETURN(argF64(info, 1, "ids", &ids, &n));
  size_t failedAt = 0, cancelled = 0;
  Status st = s->core->cancelBatch(ids, n, &failedAt, &cancelled);
  if (st == Status::BadArgument)
    return throwRange(info.Env(), "ids[" + std::to_string(failedAt) + "] must be a safe integer from 0 to 2^53-1"), info.Env().Undefined();
  if (st != Status::Ok) return checkSlow(info.Env(), st, "ids[" + std::to_string(failedAt) + "]"), info.Env().Undefined();
  return Num(info, static_cast<double>(cancelled));
}

// locate(core, id, out: Float64Array(7)) -> place (0 when unknown); out = [domain, binding, place,
// priority, attempts, nextAttempt, expiresAt]
Napi::Value Locate(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double id;
  double* out; size_t len;
  OR_RETURN(idArg(info, 1, "id", &id));
  OR_RETURN(argF64(info, 2, "out", &out, &len));
  if (len < 7) return throwRange(info.Env(), "out must have 7 entries"), info.Env().Undefined();
  mqc::MessageInfo mi;
  if (s->core->locate(id, &mi) != Status::Ok) return Num(info, 0);
  out[0] = mi.domain; out[1] = mi.binding; out[2] = static_cast<double>(mi.place);
  out[3] = mi.priority; out[4] = mi.attempts; out[5] = mi.nextAttempt; out[6] = mi.expiresAt;
  return Num(info, static_cast<double>(mi.place));
}

Napi::Value ActiveSize(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d, b;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(bindingArg(info, 2, s, &b));
  return Num(info, static_cast<double>(s->core->activeSize(d, b)));
}

Napi::Value DelayedSize(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d;
  OR_RETURN(domainArg(info, 1, s, &d));
  return Num(info, static_cast<double>(s->core->delayedSize(d)));
}

// peekActive(core, domain, binding, offset, out: Float64Array) -> n (k = out.length)
Napi::Value PeekActive(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d, b;
  double offset;
  double* out; size_t k;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(bindingArg(info, 2, s, &b));
  OR_RETURN(argInt(info, 3, "offset", 0, mqc::kMaxId, &offset));
  OR_RETURN(argF64(info, 4, "out", &out, &k));
  return Num(info, static_cast<double>(s->core->peekActive(d, b, static_cast<size_t>(offset), out, k)));
}

// peekDelayed(core, domain, offset, out) -> n
Napi::Value PeekDelayed(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d;
  double offset;
  double* out; size_t k;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(argInt(info, 2, "offset", 0, mqc::kMaxId, &offset));
  OR_RETURN(argF64(info, 3, "out", &out, &k));
  return Num(info, static_cast<double>(s->core->peekDelayed(d, static_cast<size_t>(offset), out, k)));
}

// removeActive(core, domain, binding, id) -> boolean
Napi::Value RemoveActive(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d, b;
  double id;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(bindingArg(info, 2, s, &b));
  OR_RETURN(idArg(info, 3, "id", &id));
  Status st = s->core->removeActive(d, b, id);
  return Napi::Boolean::New(info.Env(), st == Status::Ok);
}

// take(core, domain, binding, now, out: Float64Array) -> n taken into flight (k = out.length)
Napi::Value Take(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d, b;
  double now;
  double* out; size_t k;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(bindingArg(info, 2, s, &b));
  OR_RETURN(argTime(info, 3, "now", &now));
  OR_RETURN(argF64(info, 4, "out", &out, &k));
  size_t n = s->core->take(d, b, k, now, out);
  return Num(info, static_cast<double>(n));
}

// takeFor(core, connectionId, now, out: Float64Array) -> taken: the open connection's (domain, binding)
Napi::Value TakeFor(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double id, now;
  double* out; size_t k;
  OR_RETURN(argInt(info, 1, "connectionId", 1, mqc::kMaxId, &id));
  OR_RETURN(argTime(info, 2, "now", &now));
  OR_RETURN(argF64(info, 3, "out", &out, &k));
  size_t n = 0;
  OR_RETURN(check(info.Env(), s->core->takeFor(id, k, now, out, &n), "connectionId", id));
  return Num(info, static_cast<double>(n));
}

Napi::Value Settle(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double id;
  OR_RETURN(idArg(info, 1, "id", &id));
  Status st = s->core->settle(id);
  OR_RETURN(check(info.Env(), st, "id", id));
  return info.Env().Undefined();
}

// settleBatch(core, ids: Float64Array): all in flight, all settled, or nothing changes
Napi::Value SettleBatch(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double* ids; size_t n;
  OR_RETURN(argF64(info, 1, "ids", &ids, &n));
  size_t failedAt = 0;
  Status st = s->core->settleBatch(ids, n, &failedAt);
  if (st == Status::BadArgument)
    return throwRange(info.Env(), "ids[" + std::to_string(failedAt) + "] must be a safe integer from 0 to 2^53-1"), info.Env().Undefined();
  if (st != Status::Ok) return checkSlow(info.Env(), st, "ids[" + std::to_string(failedAt) + "]"), info.Env().Undefined();
  return info.Env().Undefined();
}

// defer(core, id, nextAttempt, now)
Napi::Value Defer(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double id, next, now;
  OR_RETURN(idArg(info, 1, "id", &id));
  OR_RETURN(argTime(info, 2, "nextAttempt", &next));
  OR_RETURN(argTime(info, 3, "now", &now));
  Status st = s->core->defer(id, next, now);
  OR_RETURN(check(info.Env(), st, "id", id));
  return info.Env().Undefined();
}

// deferBatch(core, ids: Float64Array, nextAttempt, now): all in flight, all deferred, or nothing changes
Napi::Value DeferBatch(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double* ids; size_t n;
  double next, now;
  OR_RETURN(argF64(info, 1, "ids", &ids, &n));
  OR_RETURN(argTime(info, 2, "nextAttempt", &next));
  OR_RETURN(argTime(info, 3, "now", &now));
  size_t failedAt = 0;
  Status st = s->core->deferBatch(ids, n, next, now, &failedAt);
  if (st == Status::BadArgument)
    return throwRange(info.Env(), "ids[" + std::to_string(failedAt) + "] must be a safe integer from 0 to 2^53-1"), info.Env().Undefined();
  if (st != Status::Ok) return checkSlow(info.Env(), st, "ids[" + std::to_string(failedAt) + "]"), info.Env().Undefined();
  return info.Env().Undefined();
}

Napi::Value Untake(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double id;
  OR_RETURN(idArg(info, 1, "id", &id));
  Status st = s->core->untake(id);
  OR_RETURN(check(info.Env(), st, "id", id));
  return info.Env().Undefined();
}

// dueDomains(core, now, out: Uint32Array) -> n
Napi::Value DueDomains(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double now;
  uint32_t* out; size_t k;
  OR_RETURN(argTime(info, 1, "now", &now));
  OR_RETURN(argU32Array(info, 2, "out", &out, &k));
  return Num(info, static_cast<double>(s->core->dueDomains(now, out, k)));
}

// computeGoal(core, domain, binding, goalsz) -> goal (-1: nothing to do)
Napi::Value ComputeGoal(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d, b;
  double goalsz;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(bindingArg(info, 2, s, &b));
  OR_RETURN(argInt(info, 3, "goalsz", -2147483648.0, 2147483647.0, &goalsz));
  return Num(info, static_cast<double>(s->core->computeGoal(d, b, static_cast<int32_t>(goalsz))));
}

// openConnections(core, domain, binding, goal, reserve, now) -> opened
Napi::Value OpenConnections(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d, b, reserve;
  double goal, now;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(bindingArg(info, 2, s, &b));
  OR_RETURN(argInt(info, 3, "goal", -mqc::kMaxId, mqc::kMaxId, &goal));
  OR_RETURN(argU32(info, 4, "reserve", 0xfffffffeu, &reserve));
  OR_RETURN(argTime(info, 5, "now", &now));
  uint32_t n = s->core->openConnections(d, b, static_cast<int64_t>(goal), reserve, now);
  return Num(info, n);
}

// defaultMaintain(core, domain, binding, now, goalsz, reserve) -> opened
Napi::Value DefaultMaintain(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d, b, reserve;
  double now, goalsz;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(bindingArg(info, 2, s, &b));
  OR_RETURN(argTime(info, 3, "now", &now));
  OR_RETURN(argInt(info, 4, "goalsz", -2147483648.0, 2147483647.0, &goalsz));
  OR_RETURN(argU32(info, 5, "reserve", 0xfffffffeu, &reserve));
  uint32_t n = s->core->defaultMaintain(d, b, now, static_cast<int32_t>(goalsz), reserve);
  return Num(info, n);
}

// visitDefault(core, binding, reserve) -> opened: defaultMaintain for the domain, now and goalsz of
// the last prepareVisit (the per-pair call of a pass driven from JavaScript)
Napi::Value VisitDefault(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t b, reserve, opened;
  OR_RETURN(bindingArg(info, 1, s, &b));
  OR_RETURN(argU32(info, 2, "reserve", 0xfffffffeu, &reserve));
  Status st = s->core->visitDefault(b, reserve, &opened);
  if (st == Status::BadArgument) return throwCode(info.Env(), "ERR_NO_VISIT", "visitDefault: no prepareVisit yet"), info.Env().Undefined();
  OR_RETURN(check(info.Env(), st, "binding"));
  return Num(info, opened);
}

// maintainDomain(core, domain, now, goalsz, reserve (-1: per pair)) -> opened
Napi::Value MaintainDomain(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d;
  double now, goalsz, reserve;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(argTime(info, 2, "now", &now));
  OR_RETURN(argInt(info, 3, "goalsz", -2147483648.0, 2147483647.0, &goalsz));
  OR_RETURN(argInt(info, 4, "reserve", -1, 4294967294.0, &reserve));
  uint32_t n = s->core->maintainDomain(d, now, static_cast<int32_t>(goalsz), static_cast<int64_t>(reserve));
  return Num(info, n);
}

// The (now, maxDomains, fresh) arguments 1-3 of maintainSlice and nextSlice.
bool sliceArgs(const Napi::CallbackInfo& info, double* now, double* maxDomains, bool* fresh) {
  return argTime(info, 1, "now", now) && argInt(info, 2, "maxDomains", 1, 4294967295.0, maxDomains) &&
         argBool(info, 3, "fresh", fresh);
}

// maintainSlice(core, now, maxDomains, fresh, maxGrants, out: Float64Array(2)) -> opened: the next
// slice of a pass with the native default only (fresh: abandon a pass in progress and start a new
// one), ending early once it opened maxGrants connections (Infinity: no cap); out = [domains
// visited, domains of the pass still to visit]. Grants are drained as usual.
Napi::Value MaintainSlice(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double now, maxDomains, maxGrants;
  bool fresh;
  double* out; size_t len;
  OR_RETURN(sliceArgs(info, &now, &maxDomains, &fresh));
  OR_RETURN(argNumber(info, 4, "maxGrants", &maxGrants));
  if (!(maxGrants >= 1) || (maxGrants != INFINITY && std::floor(maxGrants) != maxGrants))
    return throwRange(info.Env(), "maxGrants must be a whole number from 1, or Infinity"), info.Env().Undefined();
  OR_RETURN(argF64(info, 5, "out", &out, &len));
  if (len < 2) return throwRange(info.Env(), "out must have 2 entries"), info.Env().Undefined();
  size_t cap = maxGrants >= 4294967295.0 ? SIZE_MAX : static_cast<size_t>(maxGrants);
  size_t visited = 0, remaining = 0;
  uint32_t opened = s->core->maintainSlice(now, static_cast<size_t>(maxDomains), cap, fresh, &visited, &remaining);
  out[0] = static_cast<double>(visited);
  out[1] = static_cast<double>(remaining);
  return Num(info, opened);
}

// prepareVisit(core, domain, now, goalsz, out: Uint32Array(3 * bindings)) -> n: prepareDomain,
// then the bindings with mail in this visit's order in out[0..n), each one's reserve in
// out[bindings + j], and each binding's wanted connections beyond those held in out[2 * bindings + b]
Napi::Value PrepareVisit(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d;
  double now, goalsz;
  uint32_t* out; size_t len;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(argTime(info, 2, "now", &now));
  OR_RETURN(argInt(info, 3, "goalsz", -2147483648.0, 2147483647.0, &goalsz));
  OR_RETURN(argU32Array(info, 4, "out", &out, &len));
  uint32_t nb = s->core->bindings();
  if (len < 3 * static_cast<size_t>(nb)) return throwRange(info.Env(), "out must have three entries per binding"), info.Env().Undefined();
  size_t n = s->core->prepareVisit(d, now, static_cast<int32_t>(goalsz), out, out + nb, out + 2 * static_cast<size_t>(nb));
  return Num(info, static_cast<double>(n));
}

// nextSlice(core, now, maxDomains, fresh, out: Uint32Array) -> n: the domains of the next slice of
// a pass in out[1..n] (at most min(maxDomains, out.length - 1)), and the domains of the pass still
// to visit after them in out[0]; fresh: abandon a pass in progress and start a new one
Napi::Value NextSlice(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double now, maxDomains;
  bool fresh;
  uint32_t* out; size_t len;
  OR_RETURN(sliceArgs(info, &now, &maxDomains, &fresh));
  OR_RETURN(argU32Array(info, 4, "out", &out, &len));
  if (len < 2) return throwRange(info.Env(), "out must have at least 2 entries"), info.Env().Undefined();
  size_t k = static_cast<size_t>(maxDomains) < len - 1 ? static_cast<size_t>(maxDomains) : len - 1;
  size_t remaining = 0;
  size_t n = s->core->nextSlice(now, k, fresh, out + 1, &remaining);
  out[0] = static_cast<uint32_t>(remaining);
  return Num(info, static_cast<double>(n));
}

// unvisitSlice(core, k) -> how many of the last k domains nextSlice handed out went back to the pass
Napi::Value UnvisitSlice(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double k;
  OR_RETURN(argInt(info, 1, "k", 0, 4294967295.0, &k));
  return Num(info, static_cast<double>(s->core->unvisitSlice(static_cast<size_t>(k))));
}

Napi::Value ReserveFor(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d, b;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(bindingArg(info, 2, s, &b));
  return Num(info, s->core->reserveFor(d, b));
}

Napi::Value ReleaseConnection(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double id;
  OR_RETURN(argInt(info, 1, "connectionId", 1, mqc::kMaxId, &id));
  Status st = s->core->releaseConnection(id);
  OR_RETURN(check(info.Env(), st, "connectionId", id));
  return info.Env().Undefined();
}

// setMessageThrottle(core, domain, binding, throttle (-1: none))
Napi::Value SetMessageThrottle(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d, b;
  double t;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(bindingArg(info, 2, s, &b));
  OR_RETURN(argInt(info, 3, "throttle", -1, 2147483647.0, &t));
  if (s->core->ledger().setMessageThrottle(d, b, static_cast<int32_t>(t)) != Status::Ok)
    return throwRange(info.Env(), "throttle: unknown throttle index"), info.Env().Undefined();
  return info.Env().Undefined();
}

// messageNextAllowedAt(core, domain, binding, now) -> time
Napi::Value MessageNextAllowedAt(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d, b;
  double now;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(bindingArg(info, 2, s, &b));
  OR_RETURN(argTime(info, 3, "now", &now));
  return Num(info, s->core->messageNextAllowedAt(d, b, now));
}

// migrateConnection(core, connectionId, domain) -> true when moved, false when the domain has no room
Napi::Value MigrateConnection(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double id;
  uint32_t d;
  OR_RETURN(argInt(info, 1, "connectionId", 1, mqc::kMaxId, &id));
  OR_RETURN(domainArg(info, 2, s, &d));
  Status st = s->core->migrateConnection(id, d);
  if (st == Status::TooMany) return Napi::Boolean::New(info.Env(), false);
  OR_RETURN(check(info.Env(), st, "connectionId", id));
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Value NextDueAt(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  return Num(info, s->core->nextDueAt());
}

// flushDomain(core, domain, now) -> messages made due
Napi::Value FlushDomain(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d;
  double now;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(argTime(info, 2, "now", &now));
  size_t n = s->core->flushDomain(d, now);
  return Num(info, static_cast<double>(n));
}

// failDomain(core, domain, out: Float64Array) -> ids removed into out (call until 0)
Napi::Value FailDomain(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d;
  double* out; size_t len;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(argF64(info, 2, "out", &out, &len));
  size_t n = s->core->failDomain(d, out, len);
  return Num(info, static_cast<double>(n));
}

// retryNow(core, id, now) -> true when a delayed message was made due
Napi::Value RetryNow(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double id, now;
  OR_RETURN(idArg(info, 1, "id", &id));
  OR_RETURN(argTime(info, 2, "now", &now));
  Status st = s->core->retryNow(id, now);
  return Napi::Boolean::New(info.Env(), st == Status::Ok);
}

// delayedByBinding(core, domain, out: Float64Array(bindings))
Napi::Value DelayedByBinding(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d;
  double* out; size_t len;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(argF64(info, 2, "out", &out, &len));
  if (len < s->core->bindings()) return throwRange(info.Env(), "out must have one entry per binding"), info.Env().Undefined();
  s->core->delayedByBinding(d, out);
  return info.Env().Undefined();
}

// drainGrants(core, out: Float64Array, offset = 0) -> grants written (3 entries each: id, domain,
// binding), from grant slot offset of out on
Napi::Value DrainGrants(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double* out; size_t len;
  OR_RETURN(argF64(info, 1, "out", &out, &len));
  // offset (grants, default 0): write from out[3 * offset], so a growing list needs no view per call.
  double offset = 0;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    OR_RETURN(argInt(info, 2, "offset", 0, static_cast<double>(len / 3), &offset));
  }
  size_t first = static_cast<size_t>(offset);
  return Num(info, static_cast<double>(s->core->drainGrants(out + 3 * first, len / 3 - first)));
}

// drainExpired(core, out: Float64Array, domains?: Float64Array) -> ids written (with each one's
// domain index in domains, which must be as long as out)
Napi::Value DrainExpired(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double* out; size_t len;
  double* doms = nullptr; size_t dlen = 0;
  OR_RETURN(argF64(info, 1, "out", &out, &len));
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    OR_RETURN(argF64(info, 2, "domains", &doms, &dlen));
    if (dlen < len) return throwRange(info.Env(), "domains must be as long as out"), info.Env().Undefined();
  }
  return Num(info, static_cast<double>(s->core->drainExpired(out, doms, len)));
}

// pending(core, out: Float64Array(2)) -> [grants, expired] waiting to be drained
Napi::Value Pending(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  double* out; size_t len;
  OR_RETURN(argF64(info, 1, "out", &out, &len));
  if (len < 2) return throwRange(info.Env(), "out must have 2 entries"), info.Env().Undefined();
  out[0] = static_cast<double>(s->core->pendingGrants());
  out[1] = static_cast<double>(s->core->pendingExpired());
  return info.Env().Undefined();
}

// domainInfo(core, domain, out: Float64Array(3 + 3 * bindings)):
// [activeTotal, delayed, connections, then per binding: active, connections, suspended]
Napi::Value DomainInfo(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d;
  double* out; size_t len;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(argF64(info, 2, "out", &out, &len));
  uint32_t nb = s->core->bindings();
  if (len < 3 + 3 * static_cast<size_t>(nb)) return throwRange(info.Env(), "out is too short"), info.Env().Undefined();
  const mqc::ConnectionLedger& l = s->core->ledger();
  out[0] = static_cast<double>(s->core->activeTotal(d));
  out[1] = static_cast<double>(s->core->delayedSize(d));
  out[2] = l.domainCount(d);
  for (uint32_t b = 0; b < nb; ++b) {
    out[3 + 3 * b] = static_cast<double>(s->core->activeSize(d, b));
    out[4 + 3 * b] = l.pairCount(d, b);
    out[5 + 3 * b] = l.pairLimits(d, b).suspended ? 1 : 0;
  }
  return info.Env().Undefined();
}

// ledgerCounts(core, domain, out: Float64Array(groups)): connections per (group, domain)
Napi::Value GroupDomainCounts(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t d;
  double* out; size_t len;
  OR_RETURN(domainArg(info, 1, s, &d));
  OR_RETURN(argF64(info, 2, "out", &out, &len));
  const mqc::ConnectionLedger& l = s->core->ledger();
  for (uint32_t g = 0; g < l.groups() && g < len; ++g) out[g] = l.groupDomainCount(g, d);
  return info.Env().Undefined();
}

Napi::Value GroupCount(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  uint32_t g;
  OR_RETURN(argU32(info, 1, "group", 65535, &g));
  if (g >= s->core->ledger().groups()) return throwRange(info.Env(), "group: unknown group"), info.Env().Undefined();
  return Num(info, s->core->ledger().groupCount(g));
}

Napi::Value CheckInvariants(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  return Napi::Boolean::New(info.Env(), s->core->checkInvariants());
}

Napi::Value BytesReserved(const Napi::CallbackInfo& info) {
  CORE_OR_RETURN(s);
  return Num(info, static_cast<double>(s->core->bytesReserved()));
}

// goalCurve(maxConnections, queued, aggressiveness): the default goal curve, for tests and docs
Napi::Value GoalCurve(const Napi::CallbackInfo& info) {
  double m, q, a;
  OR_RETURN(argInt(info, 0, "maxConnections", 0, 4294967294.0, &m));
  OR_RETURN(argInt(info, 1, "queued", 0, mqc::kMaxId, &q));
  OR_RETURN(argFinite(info, 2, "aggressiveness", &a));
  if (!(a > 0 && a <= 1)) return throwRange(info.Env(), "aggressiveness must be in (0, 1]"), info.Env().Undefined();
  return Num(info, mqc::connectionGoal(static_cast<uint32_t>(m), static_cast<uint64_t>(q), a));
}

Napi::Value CounterNames(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env());
  for (uint32_t i = 0; i < mqc::kFixedCounters; ++i) a.Set(i, Napi::String::New(info.Env(), mqc::counterName(i)));
  return a;
}

// The crossing floor for benchmarks: a module-level function that does nothing.
Napi::Value Noop(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* registry = new CoreRegistry();
  // The registry lives exactly as long as this environment (main thread or worker).
  napi_status st = napi_set_instance_data(
      env, registry,
      [](napi_env, void* data, void*) {
        delete static_cast<CoreRegistry*>(data);
      },
      nullptr);
  if (st != napi_ok) {
    delete registry;
    Napi::Error::New(env, "mail-queue-core: could not set instance data").ThrowAsJavaScriptException();
    return exports;
  }
  struct Entry { const char* name; Napi::Function::Callback fn; };
  static const Entry entries[] = {
      {"createCore", CreateCore}, {"destroyCore", DestroyCore}, {"addThrottle", AddThrottle},
      {"addDomain", AddDomain}, {"setSuspended", SetSuspended}, {"enqueue", Enqueue},
      {"enqueueBatch", EnqueueBatch}, {"cancel", Cancel}, {"countersBuffer", CountersBuffer}, {"cancelBatch", CancelBatch}, {"locate", Locate},
      {"activeSize", ActiveSize}, {"delayedSize", DelayedSize}, {"peekActive", PeekActive},
      {"peekDelayed", PeekDelayed}, {"removeActive", RemoveActive}, {"take", Take}, {"takeFor", TakeFor},
      {"settle", Settle}, {"settleBatch", SettleBatch}, {"defer", Defer}, {"deferBatch", DeferBatch}, {"untake", Untake}, {"dueDomains", DueDomains},
      {"computeGoal", ComputeGoal},
      {"openConnections", OpenConnections}, {"defaultMaintain", DefaultMaintain},
      {"maintainDomain", MaintainDomain}, {"maintainSlice", MaintainSlice},
      {"prepareVisit", PrepareVisit}, {"visitDefault", VisitDefault}, {"nextSlice", NextSlice}, {"unvisitSlice", UnvisitSlice}, {"reserveFor", ReserveFor},
      {"releaseConnection", ReleaseConnection}, {"drainGrants", DrainGrants},
      {"drainExpired", DrainExpired}, {"pending", Pending}, {"domainInfo", DomainInfo},
      {"groupDomainCounts", GroupDomainCounts}, {"groupCount", GroupCount},
      {"setMessageThrottle", SetMessageThrottle}, {"messageNextAllowedAt", MessageNextAllowedAt},
      {"migrateConnection", MigrateConnection}, {"nextDueAt", NextDueAt}, {"flushDomain", FlushDomain},
      {"failDomain", FailDomain}, {"retryNow", RetryNow}, {"delayedByBinding", DelayedByBinding},
      {"checkInvariants", CheckInvariants}, {"bytesReserved", BytesReserved},
      {"goalCurve", GoalCurve}, {"counterNames", CounterNames}, {"noop", Noop},
  };
  for (const Entry& e : entries) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name, registry));
  return exports;
}

}  // namespace
}  // namespace mqc_addon

static Napi::Object InitMailQueueCore(Napi::Env env, Napi::Object exports) {
  return mqc_addon::Init(env, exports);
}

NODE_API_MODULE(mail_queue_core, InitMailQueueCore)

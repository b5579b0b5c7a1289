#include "connection_ledger.hpp"

#include <cmath>
#include <utility>

namespace mqc {

namespace {
// Headroom under one limit; a count at or above its limit leaves none.
inline uint32_t room(uint32_t limit, uint32_t count) { return count >= limit ? 0 : limit - count; }
inline uint32_t minOf(uint32_t a, uint32_t b) { return a < b ? a : b; }
}  // namespace

ConnectionLedger::ConnectionLedger(LedgerConfig cfg) : cfg_(std::move(cfg)) {
  cfg_.groupOfBinding.resize(cfg_.bindings, kNoGroup);
  cfg_.bindingMax.resize(cfg_.bindings, kUnlimited);
  cfg_.groupMax.resize(cfg_.groups, kUnlimited);
  bindingCount_.assign(cfg_.bindings, 0);
  groupCount_.assign(cfg_.groups, 0);
}

int32_t ConnectionLedger::addThrottle(uint32_t count, double windowMs) {
  if (count < 1 || count > kMaxThrottleCount || !(windowMs > 0) || windowMs > 1e12) return -1;
  throttles_.emplace_back(count, windowMs);
  return static_cast<int32_t>(throttles_.size() - 1);
}

bool ConnectionLedger::validLimits(const DomainLimits& limits) const {
  if (limits.pairs.size() != cfg_.bindings || limits.groupScopeMax.size() != cfg_.groups) return false;
  for (const PairLimits& p : limits.pairs)
    if (p.throttle != kNoThrottle && (p.throttle < 0 || static_cast<size_t>(p.throttle) >= throttles_.size()))
      return false;
  return true;
}

Status ConnectionLedger::addDomain(const DomainLimits& limits, uint32_t* index) {
  if (!validLimits(limits)) return Status::BadArgument;
  if (domainTotal_.size() >= 0x7fffffffu) return Status::TooMany;
  pairLimits_.insert(pairLimits_.end(), limits.pairs.begin(), limits.pairs.end());
  pairCount_.resize(pairCount_.size() + cfg_.bindings, 0);
  groupScopeMax_.insert(groupScopeMax_.end(), limits.groupScopeMax.begin(), limits.groupScopeMax.end());
  groupDomain_.resize(groupDomain_.size() + cfg_.groups, 0);
  scopeMax_.push_back(limits.scopeMax);
  domainTotal_.push_back(0);
  *index = static_cast<uint32_t>(domainTotal_.size() - 1);
  return Status::Ok;
}

Status ConnectionLedger::setDomainLimits(uint32_t d, const DomainLimits& limits) {
  if (d >= domainTotal_.size()) return Status::BadDomain;
  if (!validLimits(limits)) return Status::BadArgument;
  for (const PairLimits& p : limits.pairs)
    if (p.messageThrottle != kNoThrottle &&
        (p.messageThrottle < 0 || static_cast<size_t>(p.messageThrottle) >= throttles_.size()))
      return Status::BadArgument;
  for (uint32_t b = 0; b < cfg_.bindings; ++b) {
    size_t pi = pairIndex(d, b);
    pairLimits_[pi] = limits.pairs[b];
    lowered_ = lowered_ || pairCount_[pi] > limits.pairs[b].maxConnections;
  }
  for (uint32_t g = 0; g < cfg_.groups; ++g) {
    size_t gi = groupIndex(d, g);
    groupScopeMax_[gi] = limits.groupScopeMax[g];
    lowered_ = lowered_ || groupDomain_[gi] > groupScopeMax_[gi];
  }
  scopeMax_[d] = limits.scopeMax;
  lowered_ = lowered_ || domainTotal_[d] > scopeMax_[d];
  return Status::Ok;
}

Status ConnectionLedger::setServerLimits(uint32_t serverMax, uint32_t serverReserve,
                                         const std::vector<uint32_t>& bindingMax,
                                         const std::vector<uint32_t>& groupMax) {
  if (bindingMax.size() != cfg_.bindings || groupMax.size() != cfg_.groups) return Status::BadArgument;
  cfg_.serverMax = serverMax;
  cfg_.serverReserve = serverReserve;
  cfg_.bindingMax = bindingMax;
  cfg_.groupMax = groupMax;
  lowered_ = lowered_ || static_cast<uint64_t>(total_) > static_cast<uint64_t>(serverMax) + serverReserve;
  for (uint32_t b = 0; b < cfg_.bindings; ++b) lowered_ = lowered_ || bindingCount_[b] > bindingMax[b];
  for (uint32_t g = 0; g < cfg_.groups; ++g) lowered_ = lowered_ || groupCount_[g] > groupMax[g];
  return Status::Ok;
}

Status ConnectionLedger::setThrottleRate(int32_t throttle, uint32_t count, double windowMs) {
  if (throttle < 0 || static_cast<size_t>(throttle) >= throttles_.size()) return Status::BadArgument;
  if (count < 1 || count > kMaxThrottleCount || !(windowMs > 0) || windowMs > 1e12) return Status::BadArgument;
  throttles_[static_cast<size_t>(throttle)].setRate(count, windowMs);
  return Status::Ok;
}

bool ConnectionLedger::leaseExcess(double connectionId, uint32_t excess[kExcessScopes]) const {
  const Grant* g = lease(connectionId);
  if (g == nullptr) return false;
  auto over = [](uint64_t count, uint64_t limit) { return static_cast<uint32_t>(count > limit ? count - limit : 0); };
  size_t pi = pairIndex(g->domain, g->binding);
  excess[0] = over(pairCount_[pi], pairLimits_[pi].maxConnections);
  excess[1] = over(domainTotal_[g->domain], scopeMax_[g->domain]);
  excess[2] = excess[3] = 0;
  int32_t grp = cfg_.groupOfBinding[g->binding];
  if (grp != kNoGroup) {
    size_t gi = groupIndex(g->domain, static_cast<uint32_t>(grp));
    excess[2] = over(groupDomain_[gi], groupScopeMax_[gi]);
    excess[3] = over(groupCount_[grp], cfg_.groupMax[grp]);
  }
  excess[4] = over(bindingCount_[g->binding], cfg_.bindingMax[g->binding]);
  excess[5] = over(total_, static_cast<uint64_t>(cfg_.serverMax) + cfg_.serverReserve);
  return true;
}

uint32_t ConnectionLedger::headroom(uint32_t d, uint32_t b, uint32_t reserve, double now) const {
  size_t pi = pairIndex(d, b);
  const PairLimits& pl = pairLimits_[pi];
  if (pl.suspended) return 0;
  uint32_t want = room(pl.maxConnections, pairCount_[pi]);  // binding::domain
  if (want == 0) return 0;
  want = minOf(want, room(scopeMax_[d], domainTotal_[d]));  // Global::Domain scope cap
  int32_t g = cfg_.groupOfBinding[b];
  if (g != kNoGroup) {
    size_t gi = groupIndex(d, static_cast<uint32_t>(g));
    want = minOf(want, room(groupScopeMax_[gi], groupDomain_[gi]));  // Binding_Group::Domain
    want = minOf(want, room(cfg_.groupMax[g], groupCount_[g]));      // the group's server max
  }
  want = minOf(want, room(cfg_.bindingMax[b], bindingCount_[b]));  // server max for the binding
  want = minOf(want, serverRoom(reserve));
  if (want == 0) return 0;
  if (pl.throttle != kNoThrottle) want = minOf(want, throttles_[pl.throttle].available(now));
  return want;
}

uint32_t ConnectionLedger::serverRoom(uint32_t reserve) const {
  // The seed's rule: the total stays at or below (server_max + server_reserve) - reserve.
  uint64_t ceiling = static_cast<uint64_t>(cfg_.serverMax) + cfg_.serverReserve;
  uint64_t limit = ceiling > reserve ? ceiling - reserve : 0;
  uint64_t left = limit > total_ ? limit - total_ : 0;
  if (reserve < cfg_.serverReserve) {
    // A call that may dip into the reserve takes at most one connection from it: the reserve is
    // there so that a pair with no connection is not starved when the busy ones have filled
    // server_max, not to give a busy pair extra capacity (one such pair would use it all up).
    uint64_t normal = cfg_.serverMax;
    uint64_t normalLeft = normal > total_ ? normal - total_ : 0;
    if (left > normalLeft + 1) left = normalLeft + 1;
  }
  return left > 0xffffffffull ? 0xffffffffu : static_cast<uint32_t>(left);
}

Refusal ConnectionLedger::limitingScope(uint32_t d, uint32_t b, uint32_t reserve, double now) const {
  size_t pi = pairIndex(d, b);
  const PairLimits& pl = pairLimits_[pi];
  if (pl.suspended) return Refusal::Suspended;
  Refusal why = Refusal::Pair;
  uint32_t least = room(pl.maxConnections, pairCount_[pi]);
  auto consider = [&](uint32_t r, Refusal scope) {
    if (r < least) {
      least = r;
      why = scope;
    }
  };
  consider(room(scopeMax_[d], domainTotal_[d]), Refusal::Domain);
  int32_t g = cfg_.groupOfBinding[b];
  if (g != kNoGroup) {
    size_t gi = groupIndex(d, static_cast<uint32_t>(g));
    consider(room(groupScopeMax_[gi], groupDomain_[gi]), Refusal::GroupDomain);
    consider(room(cfg_.groupMax[g], groupCount_[g]), Refusal::Group);
  }
  consider(room(cfg_.bindingMax[b], bindingCount_[b]), Refusal::Binding);
  consider(serverRoom(reserve), Refusal::Server);
  // The throttle only when headroom() asked it too (every other limit had room): asking it
  // records `now` as the latest time it has seen, which must not differ from a plain headroom().
  if (least > 0 && pl.throttle != kNoThrottle) consider(throttles_[pl.throttle].available(now), Refusal::Throttle);
  return why;
}

Status ConnectionLedger::setMessageThrottle(uint32_t d, uint32_t b, int32_t throttle) {
  if (throttle != kNoThrottle && (throttle < 0 || static_cast<size_t>(throttle) >= throttles_.size()))
    return Status::BadArgument;
  pairLimits_[pairIndex(d, b)].messageThrottle = throttle;
  return Status::Ok;
}

uint32_t ConnectionLedger::messageAllowance(uint32_t d, uint32_t b, double now) const {
  int32_t t = pairLimits_[pairIndex(d, b)].messageThrottle;
  return t == kNoThrottle ? kUnlimited : throttles_[t].available(now);
}

void ConnectionLedger::consumeMessages(uint32_t d, uint32_t b, uint32_t k, double now) {
  int32_t t = pairLimits_[pairIndex(d, b)].messageThrottle;
  if (t != kNoThrottle && k > 0) throttles_[t].consume(now, k);
}

double ConnectionLedger::messageNextAllowedAt(uint32_t d, uint32_t b, double now) const {
  int32_t t = pairLimits_[pairIndex(d, b)].messageThrottle;
  return t == kNoThrottle ? now : throttles_[t].nextAllowedAt(now);
}

Status ConnectionLedger::migrate(double connectionId, uint32_t to, Grant* moved) {
  if (!issued(connectionId)) return Status::UnknownConnection;
  Grant* found = leases_.find(static_cast<uint64_t>(connectionId));
  if (found == nullptr) return Status::UnknownConnection;
  if (to >= domainTotal_.size()) return Status::BadDomain;
  Grant& g = *found;
  uint32_t b = g.binding;
  if (g.domain != to) {
    size_t dst = pairIndex(to, b), src = pairIndex(g.domain, b);
    const PairLimits& pl = pairLimits_[dst];
    int32_t grp = cfg_.groupOfBinding[b];
    size_t dstG = grp == kNoGroup ? 0 : groupIndex(to, static_cast<uint32_t>(grp));
    bool room = !pl.suspended && pairCount_[dst] < pl.maxConnections && domainTotal_[to] < scopeMax_[to] &&
                (grp == kNoGroup || groupDomain_[dstG] < groupScopeMax_[dstG]);
    if (!room) return Status::TooMany;
    --pairCount_[src];
    --domainTotal_[g.domain];
    ++pairCount_[dst];
    ++domainTotal_[to];
    if (grp != kNoGroup) {
      --groupDomain_[groupIndex(g.domain, static_cast<uint32_t>(grp))];
      ++groupDomain_[dstG];
    }
    g.domain = to;
  }
  if (moved != nullptr) *moved = g;
  return Status::Ok;
}

uint32_t ConnectionLedger::acquire(uint32_t d, uint32_t b, uint32_t want, uint32_t reserve, double now,
                                   std::vector<Grant>* out) {
  uint32_t n = minOf(want, headroom(d, b, reserve, now));
  if (n < want) lastRefusal_ = limitingScope(d, b, reserve, now);
  if (n == 0) return 0;
  size_t pi = pairIndex(d, b);
  pairCount_[pi] += n;
  domainTotal_[d] += n;
  int32_t g = cfg_.groupOfBinding[b];
  if (g != kNoGroup) {
    groupDomain_[groupIndex(d, static_cast<uint32_t>(g))] += n;
    groupCount_[g] += n;
  }
  bindingCount_[b] += n;
  total_ += n;
  opened_ += n;
  int32_t th = pairLimits_[pi].throttle;
  if (th != kNoThrottle) throttles_[th].consume(now, n);
  for (uint32_t i = 0; i < n; ++i) {
    Grant gr{nextConnectionId_, d, b};
    nextConnectionId_ += 1;
    leases_.insert(gr);
    if (out != nullptr) out->push_back(gr);
  }
  return n;
}

bool ConnectionLedger::issued(double connectionId) const {
  // Ids are whole numbers from 1; anything else names no connection (and must not be cast).
  return connectionId >= 1 && connectionId < nextConnectionId_ && std::floor(connectionId) == connectionId;
}

const Grant* ConnectionLedger::lease(double connectionId) const {
  return issued(connectionId) ? leases_.find(static_cast<uint64_t>(connectionId)) : nullptr;
}

Status ConnectionLedger::release(double connectionId, Grant* released) {
  if (!issued(connectionId)) return Status::UnknownConnection;
  Grant gr;
  if (!leases_.erase(static_cast<uint64_t>(connectionId), &gr)) return Status::UnknownConnection;
  --pairCount_[pairIndex(gr.domain, gr.binding)];
  --domainTotal_[gr.domain];
  int32_t g = cfg_.groupOfBinding[gr.binding];
  if (g != kNoGroup) {
    --groupDomain_[groupIndex(gr.domain, static_cast<uint32_t>(g))];
    --groupCount_[g];
  }
  --bindingCount_[gr.binding];
  --total_;
  ++released_;
  if (released != nullptr) *released = gr;
  return Status::Ok;
}

bool ConnectionLedger::checkInvariants() const {
  std::vector<uint32_t> binding(cfg_.bindings, 0), group(cfg_.groups, 0);
  size_t nd = domainTotal_.size();
  std::vector<uint32_t> pair(nd * cfg_.bindings, 0);
  bool leasesOk = true;
  leases_.forEach([&](const Grant& g) {
    if (g.domain >= nd || g.binding >= cfg_.bindings)
      leasesOk = false;
    else
      ++pair[pairIndex(g.domain, g.binding)];
  });
  if (!leasesOk) return false;
  if (pairLimits_.size() != nd * cfg_.bindings || pairCount_.size() != nd * cfg_.bindings ||
      groupScopeMax_.size() != nd * cfg_.groups || groupDomain_.size() != nd * cfg_.groups || scopeMax_.size() != nd)
    return false;
  uint32_t total = 0;
  for (uint32_t d = 0; d < nd; ++d) {
    std::vector<uint32_t> gd(cfg_.groups, 0);
    uint32_t dt = 0;
    for (uint32_t b = 0; b < cfg_.bindings; ++b) {
      size_t pi = pairIndex(d, b);
      if (pairCount_[pi] != pair[pi]) return false;
      if (!lowered_ && pairCount_[pi] > pairLimits_[pi].maxConnections) return false;
      dt += pairCount_[pi];
      binding[b] += pairCount_[pi];
      int32_t g = cfg_.groupOfBinding[b];
      if (g != kNoGroup) {
        gd[g] += pairCount_[pi];
        group[g] += pairCount_[pi];
      }
    }
    if (dt != domainTotal_[d] || (!lowered_ && dt > scopeMax_[d])) return false;
    for (uint32_t g = 0; g < cfg_.groups; ++g)
      if (gd[g] != groupDomain_[groupIndex(d, g)] || (!lowered_ && gd[g] > groupScopeMax_[groupIndex(d, g)]))
        return false;
    total += dt;
  }
  for (uint32_t b = 0; b < cfg_.bindings; ++b)
    if (binding[b] != bindingCount_[b] || (!lowered_ && binding[b] > cfg_.bindingMax[b])) return false;
  for (uint32_t g = 0; g < cfg_.groups; ++g)
    if (group[g] != groupCount_[g] || (!lowered_ && group[g] > cfg_.groupMax[g])) return false;
  uint64_t ceiling = static_cast<uint64_t>(cfg_.serverMax) + cfg_.serverReserve;
  return total == total_ && (lowered_ || total <= ceiling) && leases_.size() == total_;
}

}  // namespace mqc

#include "connection_ledger.hpp"

#include <algorithm>
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

Status ConnectionLedger::checkLimits(const DomainLimits& limits) const {
  if (limits.pairs.size() != cfg_.bindings || limits.groupScopeMax.size() != cfg_.groups) return Status::BadArgument;
  for (const PairLimits& p : limits.pairs)
    if (p.throttle != kNoThrottle && (p.throttle < 0 || static_cast<size_t>(p.throttle) >= throttles_.size()))
      return Status::BadArgument;
  return Status::Ok;
}

Status ConnectionLedger::reuseDomain(uint32_t d, const DomainLimits& limits) {
  if (d >= domainTotal_.size()) return Status::BadDomain;
  Status s = checkLimits(limits);
  if (s != Status::Ok) return s;
  if (domainTotal_[d] != 0) return Status::DomainInUse;  // every pair and group::domain count is 0 too
  std::copy(limits.pairs.begin(), limits.pairs.end(), pairLimits_.begin() + pairIndex(d, 0));
  std::copy(limits.groupScopeMax.begin(), limits.groupScopeMax.end(), groupScopeMax_.begin() + groupIndex(d, 0));
  scopeMax_[d] = limits.scopeMax;
  // The Host scope: the slot's new domain has not been taught its MX set yet. A fleet's held caps
  // are the old domain's: the new one is not cluster-capped until lib/cluster says so.
  if (d < domainHosts_.size()) domainHosts_[d].clear();
  std::fill(heldPair_.begin() + pairIndex(d, 0), heldPair_.begin() + pairIndex(d, 0) + cfg_.bindings, kUnlimited);
  heldDomain_[d] = kUnlimited;
  std::fill(clusterThrottles_.begin() + pairIndex(d, 0), clusterThrottles_.begin() + pairIndex(d, 0) + cfg_.bindings,
            ClusterThrottles{});
  return Status::Ok;
}

Status ConnectionLedger::addDomain(const DomainLimits& limits, uint32_t* index) {
  Status s = checkLimits(limits);
  if (s != Status::Ok) return s;
  if (domainTotal_.size() >= 0x7fffffffu) return Status::TooMany;
  pairLimits_.insert(pairLimits_.end(), limits.pairs.begin(), limits.pairs.end());
  pairCount_.resize(pairCount_.size() + cfg_.bindings, 0);
  heldPair_.resize(heldPair_.size() + cfg_.bindings, kUnlimited);
  heldDomain_.push_back(kUnlimited);
  clusterThrottles_.resize(clusterThrottles_.size() + cfg_.bindings);
  groupScopeMax_.insert(groupScopeMax_.end(), limits.groupScopeMax.begin(), limits.groupScopeMax.end());
  groupDomain_.resize(groupDomain_.size() + cfg_.groups, 0);
  scopeMax_.push_back(limits.scopeMax);
  domainTotal_.push_back(0);
  *index = static_cast<uint32_t>(domainTotal_.size() - 1);
  return Status::Ok;
}

Status ConnectionLedger::setDomainLimits(uint32_t d, const DomainLimits& limits) {
  if (d >= domainTotal_.size()) return Status::BadDomain;
  if (checkLimits(limits) != Status::Ok) return Status::BadArgument;
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
  want = minOf(want, clusterRoom(d, pi));
  if (want == 0) return 0;  // before the Host scope's sum over the MX set, and the throttle
  if (hostScope()) want = minOf(want, hostHeadroom(d, b));  // the Host scope (MX hosts)
  if (want == 0) return 0;
  if (pl.throttle != kNoThrottle) want = minOf(want, throttles_[pl.throttle].available(now));
  if (clusterThrottled_ && want > 0) want = minOf(want, clusterThrottleRoom(pi, now));
  return want;
}

uint32_t ConnectionLedger::clusterThrottleRoom(size_t pi, double now) const {
  int32_t t = clusterThrottles_[pi].connections;
  return t == kNoThrottle ? kUnlimited : throttles_[t].available(now);
}

Status ConnectionLedger::setClusterThrottles(uint32_t d, uint32_t b, int32_t connections, int32_t messages) {
  if (d >= domainTotal_.size()) return Status::BadDomain;
  if (b >= cfg_.bindings || !validBucket(connections) || !validBucket(messages)) return Status::BadArgument;
  size_t pi = pairIndex(d, b);
  // The pair's own bucket would be charged twice for one grant.
  if ((connections != kNoThrottle && connections == pairLimits_[pi].throttle) ||
      (messages != kNoThrottle && messages == pairLimits_[pi].messageThrottle))
    return Status::BadArgument;
  clusterThrottles_[pi] = ClusterThrottles{connections, messages};
  clusterThrottled_ = clusterThrottled_ || connections != kNoThrottle || messages != kNoThrottle;
  return Status::Ok;
}

ClusterThrottles ConnectionLedger::clusterThrottles(uint32_t d, uint32_t b) const {
  return clusterThrottles_[pairIndex(d, b)];
}

Status ConnectionLedger::setThrottleAllowance(int32_t throttle, uint32_t allowance) {
  if (throttle < 0 || static_cast<size_t>(throttle) >= throttles_.size()) return Status::BadArgument;
  RateThrottle& t = throttles_[static_cast<size_t>(throttle)];
  if (allowance > t.count()) return Status::BadArgument;
  t.setAllowance(allowance);
  return Status::Ok;
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

uint32_t ConnectionLedger::clusterRoom(uint32_t d, size_t pi) const {
  return minOf(minOf(room(heldPair_[pi], pairCount_[pi]), room(heldDomain_[d], domainTotal_[d])),
               room(heldServer_, total_));
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
  if (hostScope()) consider(hostHeadroom(d, b), Refusal::Host);
  consider(clusterRoom(d, pi), Refusal::Cluster);
  // The throttle only when headroom() asked it too (every other limit had room): asking it
  // records `now` as the latest time it has seen, which must not differ from a plain headroom().
  if (least > 0 && pl.throttle != kNoThrottle) consider(throttles_[pl.throttle].available(now), Refusal::Throttle);
  if (least > 0 && clusterThrottled_) consider(clusterThrottleRoom(pi, now), Refusal::Cluster);
  return why;
}

Status ConnectionLedger::setMessageThrottle(uint32_t d, uint32_t b, int32_t throttle) {
  if (throttle != kNoThrottle && (throttle < 0 || static_cast<size_t>(throttle) >= throttles_.size()))
    return Status::BadArgument;
  pairLimits_[pairIndex(d, b)].messageThrottle = throttle;
  return Status::Ok;
}

uint32_t ConnectionLedger::messageAllowance(uint32_t d, uint32_t b, double now) const {
  size_t pi = pairIndex(d, b);
  int32_t t = pairLimits_[pi].messageThrottle;
  uint32_t allowed = t == kNoThrottle ? kUnlimited : throttles_[t].available(now);
  // A fleet-wide message throttle (lib/cluster) beside the pair's own.
  int32_t c = clusterThrottled_ && allowed > 0 ? clusterThrottles_[pi].messages : kNoThrottle;
  return c == kNoThrottle ? allowed : minOf(allowed, throttles_[c].available(now));
}

void ConnectionLedger::consumeMessages(uint32_t d, uint32_t b, uint32_t k, double now) {
  if (k == 0) return;  // nothing started: the pair's settings are not read
  size_t pi = pairIndex(d, b);
  int32_t t = pairLimits_[pi].messageThrottle;
  if (t != kNoThrottle) throttles_[t].consume(now, k);
  int32_t c = clusterThrottled_ ? clusterThrottles_[pi].messages : kNoThrottle;
  if (c != kNoThrottle) throttles_[c].consume(now, k);
}

double ConnectionLedger::messageNextAllowedAt(uint32_t d, uint32_t b, double now) const {
  size_t pi = pairIndex(d, b);
  int32_t t = pairLimits_[pi].messageThrottle;
  double at = t == kNoThrottle ? now : throttles_[t].nextAllowedAt(now);
  int32_t c = clusterThrottled_ ? clusterThrottles_[pi].messages : kNoThrottle;
  return c == kNoThrottle ? at : std::max(at, throttles_[c].nextAllowedAt(now));
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
                (grp == kNoGroup || groupDomain_[dstG] < groupScopeMax_[dstG]) && pairCount_[dst] < heldPair_[dst] &&
                domainTotal_[to] < heldDomain_[to];
    if (!room) return Status::TooMany;
    --pairCount_[src];
    --domainTotal_[g.domain];
    ++pairCount_[dst];
    ++domainTotal_[to];
    if (grp != kNoGroup) {
      --groupDomain_[groupIndex(g.domain, static_cast<uint32_t>(grp))];
      ++groupDomain_[dstG];
    }
    // A sibling has the same MX set: the lease keeps its host charge, and a sibling whose set the
    // ledger has not learned yet gets the set of the domain it came from.
    if (hostScope() && domainHosts(to).empty() && !domainHosts(g.domain).empty()) {
      if (domainHosts_.size() <= to) domainHosts_.resize(static_cast<size_t>(to) + 1);
      domainHosts_[to] = domainHosts_[g.domain];
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
  int32_t cth = clusterThrottled_ ? clusterThrottles_[pi].connections : kNoThrottle;
  if (cth != kNoThrottle) throttles_[cth].consume(now, n);
  const std::vector<uint32_t>* mx = hostScope() ? &domainHosts(d) : nullptr;
  for (uint32_t i = 0; i < n; ++i) {
    Grant gr{nextConnectionId_, d, b};
    nextConnectionId_ += 1;
    leases_.insert(gr);
    // Charged to the first host of the MX set with room (headroom() counted the set's room).
    if (mx != nullptr)
      for (uint32_t h : *mx)
        if (hostRoom(h, b) > 0) {
          chargeHost(h, b, true);
          leaseHost_[static_cast<uint64_t>(gr.connectionId)] = h;
          break;
        }
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
  if (hostScope()) {
    auto it = leaseHost_.find(static_cast<uint64_t>(connectionId));
    if (it != leaseHost_.end()) {
      chargeHost(it->second, gr.binding, false);
      leaseHost_.erase(it);
    }
  }
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
      groupScopeMax_.size() != nd * cfg_.groups || groupDomain_.size() != nd * cfg_.groups || scopeMax_.size() != nd ||
      heldPair_.size() != nd * cfg_.bindings || heldDomain_.size() != nd ||
      clusterThrottles_.size() != nd * cfg_.bindings)
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
  return total == total_ && (lowered_ || total <= ceiling) && leases_.size() == total_ && checkHostInvariants();
}

// ---- the Host scope ------------------------------------------------------------------------------

Status ConnectionLedger::addHost(uint32_t maxConnections, const std::vector<uint32_t>& bindingMax, uint32_t* index) {
  if (bindingMax.size() != cfg_.bindings) return Status::BadArgument;
  if (hostMax_.size() >= 0x7fffffffu) return Status::TooMany;
  hostMax_.push_back(maxConnections);
  hostCount_.push_back(0);
  hostBindingMax_.insert(hostBindingMax_.end(), bindingMax.begin(), bindingMax.end());
  hostBindingCount_.resize(hostBindingCount_.size() + cfg_.bindings, 0);
  *index = static_cast<uint32_t>(hostMax_.size() - 1);
  return Status::Ok;
}

Status ConnectionLedger::setDomainHosts(uint32_t d, const std::vector<uint32_t>& hosts) {
  if (d >= domainTotal_.size()) return Status::BadDomain;
  if (hosts.size() > kMaxDomainHosts) return Status::BadArgument;
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (hosts[i] >= hostMax_.size()) return Status::BadArgument;
    for (size_t j = 0; j < i; ++j)
      if (hosts[j] == hosts[i]) return Status::BadArgument;  // a host twice would count its room twice
  }
  if (domainHosts_.size() <= d) domainHosts_.resize(static_cast<size_t>(d) + 1);
  domainHosts_[d] = hosts;
  return Status::Ok;
}

const std::vector<uint32_t>& ConnectionLedger::domainHosts(uint32_t d) const {
  static const std::vector<uint32_t> kUnknown;  // immutable: no mutable global state
  return d < domainHosts_.size() ? domainHosts_[d] : kUnknown;
}

uint32_t ConnectionLedger::hostRoom(uint32_t h, uint32_t b) const {
  size_t hi = hostIndex(h, b);
  return minOf(room(hostMax_[h], hostCount_[h]), room(hostBindingMax_[hi], hostBindingCount_[hi]));
}

uint32_t ConnectionLedger::hostHeadroom(uint32_t d, uint32_t b) const {
  const std::vector<uint32_t>& mx = domainHosts(d);
  // Not known yet: one connection at a time, whose session learns the set and charges a host.
  if (mx.empty()) return domainTotal_[d] == 0 ? 1 : 0;
  uint64_t sum = 0;
  for (uint32_t h : mx) sum += hostRoom(h, b);
  return sum >= kUnlimited ? kUnlimited : static_cast<uint32_t>(sum);
}

void ConnectionLedger::chargeHost(uint32_t h, uint32_t b, bool add) {
  size_t hi = hostIndex(h, b);
  if (add) {
    ++hostCount_[h];
    ++hostBindingCount_[hi];
  } else {
    --hostCount_[h];
    --hostBindingCount_[hi];
  }
}

Status ConnectionLedger::claimHost(double connectionId, uint32_t h) {
  const Grant* g = lease(connectionId);
  if (g == nullptr) return Status::UnknownConnection;
  if (h >= hostMax_.size()) return Status::BadArgument;
  uint64_t id = static_cast<uint64_t>(connectionId);
  auto it = leaseHost_.find(id);
  if (it != leaseHost_.end() && it->second == h) return Status::Ok;
  if (hostRoom(h, g->binding) == 0) return Status::TooMany;
  if (it != leaseHost_.end()) {
    chargeHost(it->second, g->binding, false);
    it->second = h;
  } else {
    leaseHost_.emplace(id, h);
  }
  chargeHost(h, g->binding, true);
  return Status::Ok;
}

uint32_t ConnectionLedger::leaseHost(double connectionId) const {
  if (!issued(connectionId)) return kNoHost;
  auto it = leaseHost_.find(static_cast<uint64_t>(connectionId));
  return it == leaseHost_.end() ? kNoHost : it->second;
}

bool ConnectionLedger::checkHostInvariants() const {
  size_t nh = hostMax_.size();
  if (hostCount_.size() != nh || hostBindingMax_.size() != nh * cfg_.bindings ||
      hostBindingCount_.size() != nh * cfg_.bindings || leaseHost_.size() > leases_.size())
    return false;
  std::vector<uint32_t> host(nh, 0), hostBinding(nh * cfg_.bindings, 0);
  for (const auto& [id, h] : leaseHost_) {
    const Grant* g = leases_.find(id);
    if (g == nullptr || h >= nh) return false;
    ++host[h];
    ++hostBinding[hostIndex(h, g->binding)];
  }
  for (size_t h = 0; h < nh; ++h)
    if (host[h] != hostCount_[h] || host[h] > hostMax_[h]) return false;
  for (size_t i = 0; i < hostBinding.size(); ++i)
    if (hostBinding[i] != hostBindingCount_[i] || hostBinding[i] > hostBindingMax_[i]) return false;
  for (const std::vector<uint32_t>& mx : domainHosts_)
    for (uint32_t h : mx)
      if (h >= nh) return false;
  return domainHosts_.size() <= domainTotal_.size();
}

}  // namespace mqc

// ConnectionLedger: every limit of docs/architecture.md §7, checked with counts computed in the test from
// the leases it was handed, over random configurations and random acquire/release sequences.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "connection_ledger.hpp"
#include "test_support.hpp"

using namespace mqc;
using namespace test_support;

namespace {

Setup randomSetup(Rng& rng) {
  Setup s;
  LedgerConfig& c = s.cfg;
  c.bindings = static_cast<uint32_t>(rng.range(1, 5));
  c.groups = static_cast<uint32_t>(rng.range(0, 3));
  c.groupOfBinding.resize(c.bindings);
  for (auto& g : c.groupOfBinding) g = c.groups == 0 ? kNoGroup : static_cast<int32_t>(rng.range(-1, c.groups - 1));
  c.serverMax = static_cast<uint32_t>(rng.range(0, 30));
  c.serverReserve = static_cast<uint32_t>(rng.range(0, 8));
  c.bindingMax.resize(c.bindings);
  for (auto& m : c.bindingMax) m = limitOrUnlimited(rng, 0.5, 0, 15);
  c.groupMax.resize(c.groups);
  for (auto& m : c.groupMax) m = limitOrUnlimited(rng, 0.5, 0, 15);
  int nt = static_cast<int>(rng.range(0, 3));
  const double windows[] = {100, 250, 1000};
  for (int i = 0; i < nt; ++i) s.throttles.push_back({static_cast<uint32_t>(rng.range(1, 6)), windows[rng.below(3)]});
  int nd = static_cast<int>(rng.range(1, 5));
  for (int d = 0; d < nd; ++d) {
    DomainLimits dl;
    dl.scopeMax = limitOrUnlimited(rng, 0.5, 0, 20);
    dl.groupScopeMax.resize(c.groups);
    for (auto& m : dl.groupScopeMax) m = limitOrUnlimited(rng, 0.5, 0, 10);
    dl.pairs.resize(c.bindings);
    for (auto& p : dl.pairs) {
      p.maxConnections = rng.chance(0.1) ? 0 : static_cast<uint32_t>(rng.range(1, 10));
      p.throttle =
          (nt > 0 && rng.chance(0.3)) ? static_cast<int32_t>(rng.below(static_cast<uint64_t>(nt))) : kNoThrottle;
      p.suspended = rng.chance(0.1);
    }
    s.domains.push_back(dl);
  }
  return s;
}

// The test's own bookkeeping: the leases it holds and the grant times of each throttle.
struct Model {
  const Setup* s;
  std::map<double, std::pair<uint32_t, uint32_t>> leases;  // connection id -> (domain, binding)
  std::vector<std::vector<double>> throttleGrants;
  std::vector<std::vector<bool>> suspended;
  uint64_t opened = 0, released = 0;

  uint32_t pair(uint32_t d, uint32_t b) const {
    uint32_t n = 0;
    for (const auto& kv : leases) n += kv.second.first == d && kv.second.second == b;
    return n;
  }
  uint32_t domain(uint32_t d) const {
    uint32_t n = 0;
    for (const auto& kv : leases) n += kv.second.first == d;
    return n;
  }
  uint32_t groupDomain(int32_t g, uint32_t d) const {
    uint32_t n = 0;
    for (const auto& kv : leases) n += kv.second.first == d && s->cfg.groupOfBinding[kv.second.second] == g;
    return n;
  }
  uint32_t binding(uint32_t b) const {
    uint32_t n = 0;
    for (const auto& kv : leases) n += kv.second.second == b;
    return n;
  }
  uint32_t group(int32_t g) const {
    uint32_t n = 0;
    for (const auto& kv : leases) n += s->cfg.groupOfBinding[kv.second.second] == g;
    return n;
  }
  uint32_t total() const { return static_cast<uint32_t>(leases.size()); }

  // The clips of docs/architecture.md §7, smallest first, computed from the leases.
  uint32_t headroom(uint32_t d, uint32_t b, uint32_t reserve, double now) const {
    if (suspended[d][b]) return 0;
    const DomainLimits& dl = s->domains[d];
    auto room = [](uint64_t limit, uint64_t count) -> uint64_t { return count >= limit ? 0 : limit - count; };
    uint64_t h = room(dl.pairs[b].maxConnections, pair(d, b));
    h = std::min(h, room(dl.scopeMax, domain(d)));
    int32_t g = s->cfg.groupOfBinding[b];
    if (g != kNoGroup) {
      h = std::min(h, room(dl.groupScopeMax[g], groupDomain(g, d)));
      h = std::min(h, room(s->cfg.groupMax[g], group(g)));
    }
    h = std::min(h, room(s->cfg.bindingMax[b], binding(b)));
    uint64_t ceiling = static_cast<uint64_t>(s->cfg.serverMax) + s->cfg.serverReserve;
    h = std::min(h, room(ceiling > reserve ? ceiling - reserve : 0, total()));
    // A call that may dip into the reserve takes at most one connection beyond server_max.
    if (reserve < s->cfg.serverReserve) h = std::min<uint64_t>(h, room(s->cfg.serverMax, total()) + 1);
    int32_t t = dl.pairs[b].throttle;
    if (t != kNoThrottle) {
      uint64_t inWindow = 0;
      for (double at : throttleGrants[t]) inWindow += at > now - s->throttles[t].second;
      h = std::min(h, room(s->throttles[t].first, inWindow));
    }
    return static_cast<uint32_t>(h);
  }
};

// Empty when every count of the ledger equals the model's and none is above its limit.
std::string checkCounts(const ConnectionLedger& l, const Model& m) {
  std::ostringstream os;
  const Setup& s = *m.s;
  for (uint32_t d = 0; d < s.domains.size(); ++d) {
    const DomainLimits& dl = s.domains[d];
    for (uint32_t b = 0; b < s.cfg.bindings; ++b) {
      uint32_t n = m.pair(d, b);
      if (l.pairCount(d, b) != n)
        os << "pairCount(" << d << "," << b << ") " << l.pairCount(d, b) << " vs " << n << "; ";
      if (n > dl.pairs[b].maxConnections) os << "pair (" << d << "," << b << ") " << n << " above max; ";
    }
    uint32_t n = m.domain(d);
    if (l.domainCount(d) != n) os << "domainCount(" << d << ") " << l.domainCount(d) << " vs " << n << "; ";
    if (n > dl.scopeMax) os << "domain " << d << " " << n << " above scopeMax " << dl.scopeMax << "; ";
    for (uint32_t g = 0; g < s.cfg.groups; ++g) {
      uint32_t gd = m.groupDomain(static_cast<int32_t>(g), d);
      if (l.groupDomainCount(g, d) != gd)
        os << "groupDomainCount(" << g << "," << d << ") " << l.groupDomainCount(g, d) << " vs " << gd << "; ";
      if (gd > dl.groupScopeMax[g]) os << "group " << g << " domain " << d << " " << gd << " above its scope max; ";
    }
  }
  for (uint32_t b = 0; b < s.cfg.bindings; ++b) {
    uint32_t n = m.binding(b);
    if (l.bindingCount(b) != n) os << "bindingCount(" << b << ") " << l.bindingCount(b) << " vs " << n << "; ";
    if (n > s.cfg.bindingMax[b]) os << "binding " << b << " " << n << " above its server max; ";
  }
  for (uint32_t g = 0; g < s.cfg.groups; ++g) {
    uint32_t n = m.group(static_cast<int32_t>(g));
    if (l.groupCount(g) != n) os << "groupCount(" << g << ") " << l.groupCount(g) << " vs " << n << "; ";
    if (n > s.cfg.groupMax[g]) os << "group " << g << " " << n << " above its server max; ";
  }
  if (l.total() != m.total()) os << "total " << l.total() << " vs " << m.total() << "; ";
  if (static_cast<uint64_t>(m.total()) > static_cast<uint64_t>(s.cfg.serverMax) + s.cfg.serverReserve)
    os << "total " << m.total() << " above server_max + server_reserve; ";
  if (l.openedEver() != m.opened) os << "openedEver " << l.openedEver() << " vs " << m.opened << "; ";
  if (l.releasedEver() != m.released) os << "releasedEver " << l.releasedEver() << " vs " << m.released << "; ";
  return os.str();
}

// Every count the ledger reports, for "nothing changed" comparisons.
std::vector<uint64_t> snapshot(const ConnectionLedger& l) {
  std::vector<uint64_t> v{l.total(), l.openedEver(), l.releasedEver()};
  for (uint32_t d = 0; d < l.domains(); ++d) {
    v.push_back(l.domainCount(d));
    for (uint32_t b = 0; b < l.bindings(); ++b) v.push_back(l.pairCount(d, b));
    for (uint32_t g = 0; g < l.groups(); ++g) v.push_back(l.groupDomainCount(g, d));
  }
  for (uint32_t b = 0; b < l.bindings(); ++b) v.push_back(l.bindingCount(b));
  for (uint32_t g = 0; g < l.groups(); ++g) v.push_back(l.groupCount(g));
  return v;
}

void randomRun(uint64_t seed, int steps) {
  Rng rng(seed);
  Setup s = randomSetup(rng);
  ConnectionLedger l(s.cfg);
  for (const auto& t : s.throttles) l.addThrottle(t.first, t.second);
  ENSURE(l.throttleCount() == s.throttles.size());
  for (const DomainLimits& dl : s.domains) {
    uint32_t index = 12345;
    ENSURE(l.addDomain(dl, &index) == Status::Ok);
    ENSURE(index == l.domains() - 1);
  }
  Model m;
  m.s = &s;
  m.throttleGrants.resize(s.throttles.size());
  for (const DomainLimits& dl : s.domains) {
    m.suspended.emplace_back();
    for (const PairLimits& p : dl.pairs) m.suspended.back().push_back(p.suspended);
  }
  std::set<double> everIssued;
  std::vector<double> releasedIds;
  double now = 1000;
  const uint32_t nd = static_cast<uint32_t>(s.domains.size());
  for (int step = 0; step < steps; ++step) {
    INFO("seed " << seed << " step " << step << " bindings " << s.cfg.bindings << " groups " << s.cfg.groups
                 << " serverMax " << s.cfg.serverMax << " reserve " << s.cfg.serverReserve);
    if (rng.chance(0.3)) now += static_cast<double>(rng.below(300));
    uint64_t r = rng.below(100);
    if (r < 50) {
      uint32_t d = static_cast<uint32_t>(rng.below(nd)), b = static_cast<uint32_t>(rng.below(s.cfg.bindings));
      uint32_t want = rng.chance(0.05) ? 0xffffffffu : static_cast<uint32_t>(rng.below(13));
      uint64_t rr = rng.below(3);
      uint32_t reserve = rr == 0   ? 0
                         : rr == 1 ? s.cfg.serverReserve
                                   : static_cast<uint32_t>(rng.below(s.cfg.serverReserve + 4));
      uint32_t room = m.headroom(d, b, reserve, now);
      INFO("acquire d " << d << " b " << b << " want " << want << " reserve " << reserve);
      ENSURE_MSG(l.headroom(d, b, reserve, now) == room,
                 "headroom " << l.headroom(d, b, reserve, now) << ", model " << room);
      std::vector<Grant> out(2, Grant{-1, 99, 99});  // acquire appends
      uint32_t n = l.acquire(d, b, want, reserve, now, &out);
      uint32_t expect = std::min(want, room);
      ENSURE_MSG(n == expect, "acquired " << n << ", model " << expect);
      ENSURE(out.size() == 2 + static_cast<size_t>(n));
      ENSURE(out[0].connectionId == -1 && out[1].connectionId == -1);
      for (size_t i = 2; i < out.size(); ++i) {
        const Grant& g = out[i];
        ENSURE(g.domain == d && g.binding == b);
        ENSURE_MSG(
            std::floor(g.connectionId) == g.connectionId && g.connectionId >= 0 && g.connectionId <= 9007199254740991.0,
            "connection id " << g.connectionId << " is not a safe integer");
        ENSURE_MSG(everIssued.insert(g.connectionId).second, "connection id " << g.connectionId << " issued twice");
        m.leases[g.connectionId] = {d, b};
        int32_t t = s.domains[d].pairs[b].throttle;
        if (t != kNoThrottle) m.throttleGrants[t].push_back(now);
      }
      m.opened += n;
    } else if (r < 80) {
      if (m.leases.empty()) continue;
      auto it = std::next(m.leases.begin(), static_cast<std::ptrdiff_t>(rng.below(m.leases.size())));
      Grant g{-1, 77, 77};
      ENSURE(l.release(it->first, &g) == Status::Ok);
      ENSURE(g.connectionId == it->first && g.domain == it->second.first && g.binding == it->second.second);
      releasedIds.push_back(it->first);
      m.leases.erase(it);
      ++m.released;
    } else if (r < 90) {
      // An id that was never issued, or one already released: refused, nothing changes.
      double id;
      if (releasedIds.empty() || rng.chance(0.4)) {
        id = static_cast<double>(1000000 + rng.below(1000000));
        if (everIssued.count(id)) continue;
      } else {
        id = releasedIds[rng.below(releasedIds.size())];
      }
      std::vector<uint64_t> before = snapshot(l);
      Grant g{-1, 5, 5};
      ENSURE(l.release(id, &g) == Status::UnknownConnection);
      ENSURE(l.release(id, nullptr) == Status::UnknownConnection);
      ENSURE(snapshot(l) == before);
      ENSURE(g.connectionId == -1 && g.domain == 5 && g.binding == 5);
    } else {
      uint32_t d = static_cast<uint32_t>(rng.below(nd)), b = static_cast<uint32_t>(rng.below(s.cfg.bindings));
      bool sus = rng.chance(0.4);
      l.setSuspended(d, b, sus);
      m.suspended[d][b] = sus;
      ENSURE(l.pairLimits(d, b).suspended == sus);
    }
    ENSURE(l.checkInvariants());
    std::string diff = checkCounts(l, m);
    ENSURE_MSG(diff.empty(), diff);
  }
  for (size_t t = 0; t < s.throttles.size(); ++t) {
    size_t worst = maxInAnyWindow(m.throttleGrants[t], s.throttles[t].second);
    CHECK_MESSAGE(worst <= s.throttles[t].first, "throttle " << t << ": " << worst << " grants in one window");
  }
  // Release everything: every count returns to zero.
  for (const auto& kv : m.leases) ENSURE(l.release(kv.first, nullptr) == Status::Ok);
  m.released += m.leases.size();
  m.leases.clear();
  ENSURE(l.total() == 0u);
  ENSURE(l.checkInvariants());
  std::string diff = checkCounts(l, m);
  ENSURE_MSG(diff.empty(), diff);
}

}  // namespace

TEST_CASE("ConnectionLedger: random configurations and acquire/release sequences keep every limit") {
  for (uint64_t seed = 1; seed <= 60; ++seed) randomRun(seed, 600);
}

TEST_CASE(
    "ConnectionLedger: reserve = server_reserve stops at server_max; reserve = 0 reaches server_max + server_reserve") {
  ConnectionLedger l(plainConfig(1, 10, 3));
  uint32_t d[4];
  for (auto& i : d) REQUIRE(l.addDomain(plainDomain(1, 0, 100), &i) == Status::Ok);
  std::vector<Grant> g;
  CHECK(l.acquire(d[0], 0, 100, 3, 0, &g) == 10u);
  CHECK(l.total() == 10u);
  CHECK(l.acquire(d[1], 0, 5, 3, 0, &g) == 0u);  // the reserve is kept back
  CHECK(l.headroom(d[1], 0, 3, 0) == 0u);
  CHECK(l.headroom(d[1], 0, 0, 0) == 1u);        // one connection from the reserve per call
  CHECK(l.acquire(d[1], 0, 1, 0, 0, &g) == 1u);  // a pair without connections may use it
  CHECK(l.acquire(d[2], 0, 5, 0, 0, &g) == 1u);  // one connection from the reserve per call
  CHECK(l.acquire(d[2], 0, 5, 0, 0, &g) == 1u);
  CHECK(l.total() == 13u);
  CHECK(l.acquire(d[3], 0, 1, 0, 0, &g) == 0u);  // server_max + server_reserve reached
  CHECK(l.acquire(d[3], 0, 1, 1, 0, &g) == 0u);
  REQUIRE(g.size() == 13u);
  CHECK(l.release(g[0].connectionId, nullptr) == Status::Ok);
  CHECK(l.acquire(d[3], 0, 1, 3, 0, &g) == 0u);  // 12 open: still above server_max
  CHECK(l.acquire(d[3], 0, 5, 0, 0, &g) == 1u);
  // A reserve larger than the whole ceiling leaves nothing.
  ConnectionLedger small(plainConfig(1, 2, 1));
  uint32_t sd;
  REQUIRE(small.addDomain(plainDomain(1, 0, 10), &sd) == Status::Ok);
  CHECK(small.headroom(sd, 0, 4, 0) == 0u);
  CHECK(small.acquire(sd, 0, 5, 4, 0, nullptr) == 0u);
  CHECK(small.acquire(sd, 0, 5, 0, 0, nullptr) == 3u);  // no out vector: counts still kept
  CHECK(small.total() == 3u);
  CHECK(small.checkInvariants());
  CHECK(l.checkInvariants());
}

TEST_CASE("ConnectionLedger: scope caps; group and binding server maxima") {
  LedgerConfig c;
  c.bindings = 3;
  c.groups = 1;
  c.groupOfBinding = {0, 0, kNoGroup};
  c.groupMax = {5};
  c.bindingMax = {3, kUnlimited, kUnlimited};
  c.serverMax = 1000;
  c.serverReserve = 0;
  ConnectionLedger l(c);
  DomainLimits d0 = plainDomain(3, 1, 10);
  d0.scopeMax = 6;         // global::domain
  d0.groupScopeMax = {4};  // binding_group::domain
  DomainLimits d1 = plainDomain(3, 1, 10);
  uint32_t i0, i1;
  REQUIRE(l.addDomain(d0, &i0) == Status::Ok);
  REQUIRE(l.addDomain(d1, &i1) == Status::Ok);
  CHECK(l.acquire(i0, 0, 10, 0, 0, nullptr) == 3u);  // binding 0's server max
  CHECK(l.acquire(i0, 1, 10, 0, 0, nullptr) == 1u);  // the group's cap in this domain (4)
  CHECK(l.acquire(i0, 2, 10, 0, 0, nullptr) == 2u);  // the domain's scope cap (6)
  CHECK(l.domainCount(i0) == 6u);
  CHECK(l.groupDomainCount(0, i0) == 4u);
  CHECK(l.acquire(i1, 1, 10, 0, 0, nullptr) == 1u);   // the group's server max (5) across domains
  CHECK(l.acquire(i1, 0, 10, 0, 0, nullptr) == 0u);   // binding 0 is at its server max
  CHECK(l.acquire(i1, 2, 10, 0, 0, nullptr) == 10u);  // not in the group: only max_outbound_connections
  CHECK(l.groupCount(0) == 5u);
  CHECK(l.bindingCount(0) == 3u);
  CHECK(l.bindingCount(1) == 2u);
  CHECK(l.bindingCount(2) == 12u);
  CHECK(l.total() == 17u);
  CHECK(l.checkInvariants());
}

TEST_CASE("ConnectionLedger: a suspended pair and a zero limit open nothing") {
  LedgerConfig c;
  c.bindings = 2;
  ConnectionLedger l(c);
  DomainLimits dl = plainDomain(2, 0, 10);
  dl.pairs[1].maxConnections = 0;
  uint32_t d;
  REQUIRE(l.addDomain(dl, &d) == Status::Ok);
  l.setSuspended(d, 0, true);
  CHECK(l.headroom(d, 0, 0, 0) == 0u);
  CHECK(l.acquire(d, 0, 5, 0, 0, nullptr) == 0u);
  CHECK(l.acquire(d, 1, 5, 0, 0, nullptr) == 0u);
  l.setSuspended(d, 0, false);
  CHECK(l.acquire(d, 0, 5, 0, 0, nullptr) == 5u);
  CHECK(l.acquire(d, 0, 0, 0, 0, nullptr) == 0u);
  CHECK(l.total() == 5u);
}

TEST_CASE("ConnectionLedger: a throttle is shared by reference by every pair that names it") {
  LedgerConfig c;
  c.bindings = 2;
  ConnectionLedger l(c);
  int32_t t = l.addThrottle(3, 1000);
  DomainLimits dl = plainDomain(2, 0, 10);
  dl.pairs[0].throttle = t;
  dl.pairs[1].throttle = t;
  uint32_t a, b;
  REQUIRE(l.addDomain(dl, &a) == Status::Ok);
  REQUIRE(l.addDomain(dl, &b) == Status::Ok);
  CHECK(l.acquire(a, 0, 2, 0, 100, nullptr) == 2u);
  CHECK(l.acquire(b, 1, 5, 0, 200, nullptr) == 1u);  // one bucket for both domains and bindings
  CHECK(l.acquire(a, 1, 5, 0, 900, nullptr) == 0u);
  CHECK(l.throttle(t).nextAllowedAt(900) == 1100.0);
  CHECK(l.acquire(a, 1, 5, 0, 1100, nullptr) == 2u);  // the two grants at 100 left the window
  CHECK(l.total() == 5u);
}

TEST_CASE("ConnectionLedger: release of an unknown or already released id changes nothing") {
  LedgerConfig c;
  c.bindings = 1;
  ConnectionLedger l(c);
  uint32_t d;
  REQUIRE(l.addDomain(plainDomain(1, 0, 10), &d) == Status::Ok);
  CHECK(l.release(1, nullptr) == Status::UnknownConnection);  // nothing issued yet
  std::vector<Grant> g;
  REQUIRE(l.acquire(d, 0, 3, 0, 0, &g) == 3u);
  Grant out{};
  CHECK(l.release(g[1].connectionId, &out) == Status::Ok);
  CHECK(out.connectionId == g[1].connectionId);
  std::vector<uint64_t> before = snapshot(l);
  CHECK(l.release(g[1].connectionId, &out) == Status::UnknownConnection);
  double biggest = std::max(g[0].connectionId, g[2].connectionId);
  CHECK(l.release(biggest + 1, nullptr) == Status::UnknownConnection);
  CHECK(l.release(biggest + 1000, nullptr) == Status::UnknownConnection);
  CHECK(snapshot(l) == before);
  CHECK(l.total() == 2u);
  CHECK(l.releasedEver() == 1u);
  CHECK(l.checkInvariants());
}

// Regression: connection ids are looked up only when they are whole numbers from 1 (1.5 once
// released connection 1; NaN or 1e300 were an undefined cast).
TEST_CASE("ConnectionLedger: release of a non-integral connection id is refused") {
  LedgerConfig c;
  c.bindings = 1;
  ConnectionLedger l(c);
  uint32_t d;
  REQUIRE(l.addDomain(plainDomain(1, 0, 10), &d) == Status::Ok);
  std::vector<Grant> g;
  REQUIRE(l.acquire(d, 0, 3, 0, 0, &g) == 3u);
  std::vector<uint64_t> before = snapshot(l);
  for (double bad : {g[0].connectionId + 0.5, g[0].connectionId + 1e-9, std::nextafter(g[0].connectionId, 1e9)}) {
    CAPTURE(bad);
    CHECK(l.release(bad, nullptr) != Status::Ok);
  }
  CHECK(snapshot(l) == before);
}

// Regression, kept apart: under -fsanitize=float-cast-overflow a bad cast aborts the executable.
TEST_CASE("ConnectionLedger: release of NaN; negative; infinite or huge ids is refused") {
  LedgerConfig c;
  c.bindings = 1;
  ConnectionLedger l(c);
  uint32_t d;
  REQUIRE(l.addDomain(plainDomain(1, 0, 10), &d) == Status::Ok);
  REQUIRE(l.acquire(d, 0, 3, 0, 0, nullptr) == 3u);
  std::vector<uint64_t> before = snapshot(l);
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), -1.0, -0.5, std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity(), 1e300, 18446744073709551616.0 + 2.0 * 4096.0}) {
    CAPTURE(bad);
    CHECK(l.release(bad, nullptr) != Status::Ok);
  }
  CHECK(snapshot(l) == before);
}

TEST_CASE("ConnectionLedger: addDomain refuses limits that do not match the configuration") {
  LedgerConfig c;
  c.bindings = 2;
  c.groups = 1;
  c.groupOfBinding = {0, kNoGroup};
  ConnectionLedger l(c);
  l.addThrottle(1, 1000);
  uint32_t index = 777;
  DomainLimits wrongPairs = plainDomain(3, 1, 10);
  CHECK(l.addDomain(wrongPairs, &index) == Status::BadArgument);
  DomainLimits wrongGroups = plainDomain(2, 2, 10);
  CHECK(l.addDomain(wrongGroups, &index) == Status::BadArgument);
  DomainLimits badThrottle = plainDomain(2, 1, 10);
  badThrottle.pairs[1].throttle = 1;  // only throttle 0 exists
  CHECK(l.addDomain(badThrottle, &index) == Status::BadArgument);
  badThrottle.pairs[1].throttle = -2;
  CHECK(l.addDomain(badThrottle, &index) == Status::BadArgument);
  CHECK(index == 777u);
  CHECK(l.domains() == 0u);
  badThrottle.pairs[1].throttle = 0;
  CHECK(l.addDomain(badThrottle, &index) == Status::Ok);
  CHECK(index == 0u);
  CHECK(l.domains() == 1u);
}

TEST_CASE("ConnectionLedger: a clipped acquire names the limit that held the rest back") {
  // Two bindings in group 0; binding 0 capped at 6, the group at 5, the server at 4 (+0 reserve).
  LedgerConfig c;
  c.bindings = 2;
  c.groups = 1;
  c.groupOfBinding = {0, kNoGroup};
  c.serverMax = 20;
  c.serverReserve = 0;
  c.bindingMax = {6, kUnlimited};
  c.groupMax = {5};
  ConnectionLedger l(c);
  int32_t th = l.addThrottle(2, 1000);
  DomainLimits dl;
  dl.scopeMax = 9;
  dl.groupScopeMax = {7};
  dl.pairs.resize(2);
  dl.pairs[0].maxConnections = 8;
  dl.pairs[1].maxConnections = 3;
  auto add = [&](const DomainLimits& x) {
    uint32_t d = 0;
    REQUIRE(l.addDomain(x, &d) == Status::Ok);
    return d;
  };
  const uint32_t d0 = add(dl);
  std::vector<Grant> out;
  // Pair (d0, 1): its own max (3) is the least room.
  CHECK(l.acquire(d0, 1, 5, 0, 0, &out) == 3u);
  CHECK(l.lastRefusal() == Refusal::Pair);
  // (d0, 0): pair 8, domain 9 - 3 = 6, group::domain 7, group 5, binding 6: the group's 5.
  CHECK(l.acquire(d0, 0, 8, 0, 0, &out) == 5u);
  CHECK(l.lastRefusal() == Refusal::Group);
  // A second domain: domain scope 1 is the least.
  DomainLimits one = dl;
  one.scopeMax = 1;
  one.groupScopeMax = {kUnlimited};
  const uint32_t d1 = add(one);
  CHECK(l.acquire(d1, 1, 2, 0, 0, &out) == 1u);
  CHECK(l.lastRefusal() == Refusal::Domain);
  // group::domain: a domain whose group scope allows 0 on group 0.
  DomainLimits gd = dl;
  gd.groupScopeMax = {0};
  const uint32_t d2 = add(gd);
  CHECK(l.acquire(d2, 0, 1, 0, 0, &out) == 0u);
  // group::domain (0 of 0) and the group (5 of 5) tie at 0: the first in headroom()'s order.
  CHECK(l.lastRefusal() == Refusal::GroupDomain);
  // The server: 20 - 9 = 11 left; a pair with room for 3 on binding 1 of a fresh domain, asking 3,
  // is not clipped; then the total is raised to the ceiling.
  DomainLimits big = dl;
  big.scopeMax = kUnlimited;
  big.groupScopeMax = {kUnlimited};
  big.pairs[1].maxConnections = 50;
  const uint32_t d3 = add(big);
  CHECK(l.acquire(d3, 1, 30, 0, 0, &out) == 11u);
  CHECK(l.lastRefusal() == Refusal::Server);
  // The binding's own cap, a throttle and a suspension, in a ledger without groups.
  LedgerConfig c2 = c;
  c2.groupOfBinding = {kNoGroup, kNoGroup};
  c2.groups = 0;
  c2.groupMax = {};
  c2.bindingMax = {2, kUnlimited};
  ConnectionLedger l2(c2);
  int32_t th2 = l2.addThrottle(2, 1000);
  DomainLimits p = dl;
  p.groupScopeMax = {};
  p.pairs[1].throttle = th2;
  uint32_t e0 = 0;
  REQUIRE(l2.addDomain(p, &e0) == Status::Ok);
  CHECK(l2.acquire(e0, 0, 4, 0, 0, &out) == 2u);
  CHECK(l2.lastRefusal() == Refusal::Binding);
  CHECK(l2.acquire(e0, 1, 3, 0, 0, &out) == 2u);
  CHECK(l2.lastRefusal() == Refusal::Throttle);
  DomainLimits sus = p;
  sus.pairs[0].suspended = true;
  uint32_t e1 = 0;
  REQUIRE(l2.addDomain(sus, &e1) == Status::Ok);
  CHECK(l2.acquire(e1, 0, 1, 0, 0, &out) == 0u);
  CHECK(l2.lastRefusal() == Refusal::Suspended);
  (void)th;
  CHECK(l.checkInvariants());
  CHECK(l2.checkInvariants());
}

TEST_CASE("ConnectionLedger: naming the limit of a clipped acquire asks no throttle headroom() did not ask") {
  // A throttle remembers the latest time it was asked about (a stale `now` counts as that one), so
  // asking it only to name a refusal would move its clock: a pair with max 0 clipped at t = 1000
  // must leave a later pass at a stale t = 750 seeing the grant of t = 0 still in its window.
  LedgerConfig c;
  c.bindings = 1;
  c.groupOfBinding = {kNoGroup};
  c.serverMax = 10;
  c.serverReserve = 0;
  c.bindingMax = {kUnlimited};
  ConnectionLedger l(c);
  int32_t th = l.addThrottle(1, 1000);
  DomainLimits open;
  open.pairs.resize(1);
  open.pairs[0].maxConnections = 5;
  open.pairs[0].throttle = th;
  DomainLimits closed = open;
  closed.pairs[0].maxConnections = 0;
  uint32_t a = 0, b = 0;
  REQUIRE(l.addDomain(open, &a) == Status::Ok);
  REQUIRE(l.addDomain(closed, &b) == Status::Ok);
  std::vector<Grant> out;
  CHECK(l.acquire(a, 0, 1, 0, 0, &out) == 1u);
  CHECK(l.acquire(b, 0, 1, 0, 1000, &out) == 0u);
  CHECK(l.lastRefusal() == Refusal::Pair);
  CHECK(l.headroom(a, 0, 0, 750) == 0u);
}

TEST_CASE("ConnectionLedger: held caps of a fleet (pair, domain, server) limit new connections only") {
  LedgerConfig c = plainConfig(2, 1000, 0);
  ConnectionLedger l(c);
  uint32_t d0, d1;
  REQUIRE(l.addDomain(plainDomain(2, 0, 10), &d0) == Status::Ok);
  REQUIRE(l.addDomain(plainDomain(2, 0, 10), &d1) == Status::Ok);
  CHECK(l.heldPair(d0, 0) == kUnlimited);
  CHECK(l.heldDomain(d0) == kUnlimited);
  CHECK(l.heldServer() == kUnlimited);
  l.setHeldPair(d0, 0, 0);  // cluster-capped, no slot yet: nothing opens
  CHECK(l.headroom(d0, 0, 0, 0) == 0u);
  CHECK(l.acquire(d0, 0, 3, 0, 0, nullptr) == 0u);
  CHECK(l.lastRefusal() == Refusal::Cluster);
  CHECK(l.acquire(d0, 1, 3, 0, 0, nullptr) == 3u);  // the other binding is not capped
  l.setHeldPair(d0, 0, 2);
  CHECK(l.acquire(d0, 0, 3, 0, 0, nullptr) == 2u);
  CHECK(l.lastRefusal() == Refusal::Cluster);
  l.setHeldDomain(d0, 6);  // 5 open to d0: one more across its bindings
  l.setHeldPair(d0, 0, kUnlimited);
  CHECK(l.headroom(d0, 0, 0, 0) == 1u);
  CHECK(l.acquire(d0, 1, 4, 0, 0, nullptr) == 1u);
  CHECK(l.lastRefusal() == Refusal::Cluster);
  // A held cap lowered below the open count (leases lost): open connections stay, none opens, and
  // releasing them does not make a count negative or break the invariants.
  l.setHeldDomain(d0, 1);
  CHECK(l.headroom(d0, 0, 0, 0) == 0u);
  CHECK(l.checkInvariants());
  std::vector<Grant> g;
  CHECK(l.acquire(d1, 0, 2, 0, 0, &g) == 2u);
  l.setHeldServer(l.total());  // server-wide: exactly full
  CHECK(l.acquire(d1, 1, 1, 0, 0, nullptr) == 0u);
  CHECK(l.lastRefusal() == Refusal::Cluster);
  REQUIRE(l.release(g[0].connectionId, nullptr) == Status::Ok);
  CHECK(l.acquire(d1, 1, 5, 0, 0, nullptr) == 1u);
  // A connection migrates only where the target's held caps leave room.
  l.setHeldPair(d1, 0, l.pairCount(d1, 0));
  Grant moved;
  CHECK(l.migrate(g[1].connectionId, d1, &moved) == Status::Ok);  // same domain: nothing to check
  l.setHeldServer(kUnlimited);
  std::vector<Grant> g0;
  l.setHeldDomain(d0, kUnlimited);
  REQUIRE(l.acquire(d0, 0, 1, 0, 0, &g0) == 1u);
  CHECK(l.migrate(g0[0].connectionId, d1, &moved) == Status::TooMany);  // d1's pair 0 holds no spare slot
  l.setHeldPair(d1, 0, kUnlimited);
  CHECK(l.migrate(g0[0].connectionId, d1, &moved) == Status::Ok);
  CHECK(l.checkInvariants());
}

// Live reconfiguration: limits set in place leave the counts alone; a count above a lowered limit
// means no new grant until it falls below, and leaseExcess() says by how much it is above.
TEST_CASE("ConnectionLedger: setDomainLimits lowers and raises a pair's cap in place") {
  LedgerConfig c;
  c.bindings = 2;
  c.groups = 1;
  c.groupOfBinding = {0, kNoGroup};
  ConnectionLedger l(c);
  uint32_t d;
  REQUIRE(l.addDomain(plainDomain(2, 1, 8), &d) == Status::Ok);
  std::vector<Grant> g;
  REQUIRE(l.acquire(d, 0, 8, 0, 0, &g) == 8u);
  DomainLimits lower = plainDomain(2, 1, 8);
  lower.pairs[0].maxConnections = 3;
  REQUIRE(l.setDomainLimits(d, lower) == Status::Ok);
  CHECK(l.pairCount(d, 0) == 8u);  // nothing closed from this side
  CHECK(l.pairLimits(d, 0).maxConnections == 3u);
  CHECK(l.headroom(d, 0, 0, 0) == 0u);
  CHECK(l.acquire(d, 0, 1, 0, 0, nullptr) == 0u);
  CHECK(l.lastRefusal() == Refusal::Pair);
  uint32_t ex[kExcessScopes];
  REQUIRE(l.leaseExcess(g[0].connectionId, ex));
  CHECK(ex[0] == 5u);
  CHECK(ex[1] + ex[2] + ex[3] + ex[4] + ex[5] == 0u);
  CHECK(l.checkInvariants());  // a count above a lowered limit is not a broken ledger
  for (int i = 0; i < 5; ++i) REQUIRE(l.release(g[i].connectionId, nullptr) == Status::Ok);
  REQUIRE(l.leaseExcess(g[5].connectionId, ex));
  CHECK(ex[0] == 0u);
  CHECK(l.acquire(d, 0, 1, 0, 0, nullptr) == 0u);  // at the cap: still nothing
  REQUIRE(l.release(g[5].connectionId, nullptr) == Status::Ok);
  CHECK(l.acquire(d, 0, 5, 0, 0, nullptr) == 1u);        // below it: back up to 3, no further
  CHECK(l.leaseExcess(g[0].connectionId, ex) == false);  // released: unknown
  lower.pairs[0].maxConnections = 6;
  REQUIRE(l.setDomainLimits(d, lower) == Status::Ok);
  CHECK(l.acquire(d, 0, 5, 0, 0, nullptr) == 3u);  // a raised cap lets the count rise again
  CHECK(l.pairCount(d, 0) == 6u);
}

TEST_CASE("ConnectionLedger: setDomainLimits sets the domain and group::domain caps; refuses a bad shape") {
  LedgerConfig c;
  c.bindings = 2;
  c.groups = 1;
  c.groupOfBinding = {0, 0};
  ConnectionLedger l(c);
  int32_t t = l.addThrottle(5, 1000);
  uint32_t d;
  REQUIRE(l.addDomain(plainDomain(2, 1, 10), &d) == Status::Ok);
  std::vector<Grant> g;
  REQUIRE(l.acquire(d, 0, 3, 0, 0, &g) == 3u);
  REQUIRE(l.acquire(d, 1, 3, 0, 0, &g) == 3u);
  DomainLimits dl = plainDomain(2, 1, 10);
  dl.scopeMax = 4;
  dl.groupScopeMax = {5};
  REQUIRE(l.setDomainLimits(d, dl) == Status::Ok);
  uint32_t ex[kExcessScopes];
  REQUIRE(l.leaseExcess(g[0].connectionId, ex));
  CHECK(ex[1] == 2u);  // domain: 6 of 4
  CHECK(ex[2] == 1u);  // group::domain: 6 of 5
  CHECK(l.acquire(d, 1, 1, 0, 0, nullptr) == 0u);
  CHECK(l.lastRefusal() == Refusal::Domain);
  std::vector<uint64_t> before = snapshot(l);
  DomainLimits bad = plainDomain(3, 1, 1);  // three pairs for two bindings
  CHECK(l.setDomainLimits(d, bad) == Status::BadArgument);
  bad = plainDomain(2, 1, 1);
  bad.pairs[1].throttle = t + 1;
  CHECK(l.setDomainLimits(d, bad) == Status::BadArgument);
  bad.pairs[1].throttle = kNoThrottle;
  bad.pairs[0].messageThrottle = -7;
  CHECK(l.setDomainLimits(d, bad) == Status::BadArgument);
  CHECK(l.setDomainLimits(d + 1, plainDomain(2, 1, 1)) == Status::BadDomain);
  CHECK(snapshot(l) == before);
  CHECK(l.pairLimits(d, 0).maxConnections == 10u);  // nothing changed by a refusal
}

TEST_CASE("ConnectionLedger: setServerLimits lowers the binding, group and server maxima in place") {
  LedgerConfig c;
  c.bindings = 2;
  c.groups = 1;
  c.groupOfBinding = {0, kNoGroup};
  c.serverMax = 100;
  c.serverReserve = 0;
  ConnectionLedger l(c);
  uint32_t d;
  REQUIRE(l.addDomain(plainDomain(2, 1, 10), &d) == Status::Ok);
  std::vector<Grant> g;
  REQUIRE(l.acquire(d, 0, 4, 0, 0, &g) == 4u);
  REQUIRE(l.acquire(d, 1, 4, 0, 0, &g) == 4u);
  CHECK(l.setServerLimits(6, 1, {kUnlimited}, {3}) == Status::BadArgument);  // one binding short
  CHECK(l.setServerLimits(6, 1, {kUnlimited, kUnlimited}, {}) == Status::BadArgument);
  REQUIRE(l.setServerLimits(6, 1, {kUnlimited, 2}, {3}) == Status::Ok);
  uint32_t ex[kExcessScopes];
  REQUIRE(l.leaseExcess(g[0].connectionId, ex));  // binding 0, in the group
  CHECK(ex[3] == 1u);                             // group: 4 of 3
  CHECK(ex[4] == 0u);
  CHECK(ex[5] == 1u);                             // server: 8 of 6 + 1
  REQUIRE(l.leaseExcess(g[4].connectionId, ex));  // binding 1
  CHECK(ex[3] == 0u);
  CHECK(ex[4] == 2u);  // binding: 4 of 2
  CHECK(l.acquire(d, 1, 1, 0, 0, nullptr) == 0u);
  CHECK(l.config().serverMax == 6u);
  CHECK(l.checkInvariants());
}

TEST_CASE("ConnectionLedger: setThrottleRate keeps the grants a bucket has recorded") {
  LedgerConfig c;
  c.bindings = 1;
  ConnectionLedger l(c);
  int32_t t = l.addThrottle(4, 1000);
  DomainLimits dl = plainDomain(1, 0, 100);
  dl.pairs[0].throttle = t;
  uint32_t d;
  REQUIRE(l.addDomain(dl, &d) == Status::Ok);
  REQUIRE(l.acquire(d, 0, 3, 0, 100, nullptr) == 3u);  // three grants at 100
  REQUIRE(l.setThrottleRate(t, 2, 1000) == Status::Ok);
  CHECK(l.acquire(d, 0, 5, 0, 200, nullptr) == 0u);  // the history is there: 2 of 2 used
  CHECK(l.throttle(t).nextAllowedAt(200) == 1100.0);
  REQUIRE(l.setThrottleRate(t, 5, 1000) == Status::Ok);  // raised: 2 kept grants of 5
  CHECK(l.acquire(d, 0, 5, 0, 300, nullptr) == 3u);
  REQUIRE(l.setThrottleRate(t, 5, 100) == Status::Ok);  // a shorter window: all left it by 400
  CHECK(l.acquire(d, 0, 10, 0, 400, nullptr) == 5u);
  CHECK(l.setThrottleRate(t + 1, 1, 1000) == Status::BadArgument);
  CHECK(l.setThrottleRate(t, 0, 1000) == Status::BadArgument);
  CHECK(l.setThrottleRate(t, 1, 0) == Status::BadArgument);
  CHECK(l.throttle(t).count() == 5u);
}

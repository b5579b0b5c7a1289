// ConnectionLedger's Host scope (decision 47): per MX host caps and per (binding, host) caps,
// counted by the host each lease is charged to; a domain's MX set learned on demand; charges that
// move with the session (claimHost), go back once at release and stay put through migration.
#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "connection_ledger.hpp"
#include "test_support.hpp"

using namespace mqc;
using namespace test_support;

namespace {

uint32_t addHost(ConnectionLedger& l, uint32_t max, std::vector<uint32_t> perBinding) {
  uint32_t h = kNoHost;
  REQUIRE(l.addHost(max, perBinding, &h) == Status::Ok);
  return h;
}

uint32_t addDomain(ConnectionLedger& l, uint32_t maxConnections) {
  uint32_t d = 0;
  REQUIRE(l.addDomain(plainDomain(l.bindings(), l.groups(), maxConnections), &d) == Status::Ok);
  return d;
}

}  // namespace

TEST_CASE("Host scope: a host cap bounds every domain routed to the host together") {
  ConnectionLedger l(plainConfig(1, 1000, 0));
  uint32_t a = addHost(l, 3, {kUnlimited});
  std::vector<uint32_t> d;
  for (int i = 0; i < 4; ++i) {
    d.push_back(addDomain(l, 10));
    REQUIRE(l.setDomainHosts(d.back(), {a}) == Status::Ok);
  }
  std::vector<Grant> out;
  CHECK(l.acquire(d[0], 0, 2, 0, 0, &out) == 2u);
  CHECK(l.acquire(d[1], 0, 10, 0, 0, &out) == 1u);
  CHECK(l.lastRefusal() == Refusal::Host);
  CHECK(l.acquire(d[2], 0, 1, 0, 0, &out) == 0u);
  CHECK(l.lastRefusal() == Refusal::Host);
  CHECK(l.headroom(d[3], 0, 0, 0) == 0u);
  CHECK(l.hostCount(a) == 3u);
  for (const Grant& g : out) CHECK(l.leaseHost(g.connectionId) == a);
  CHECK(l.checkInvariants());
  // A release gives the host its room back, once.
  REQUIRE(l.release(out[0].connectionId, nullptr) == Status::Ok);
  CHECK(l.release(out[0].connectionId, nullptr) == Status::UnknownConnection);
  CHECK(l.hostCount(a) == 2u);
  CHECK(l.leaseHost(out[0].connectionId) == kNoHost);
  CHECK(l.acquire(d[3], 0, 5, 0, 0, nullptr) == 1u);
  CHECK(l.hostCount(a) == 3u);
  CHECK(l.checkInvariants());
}

TEST_CASE("Host scope: a (binding, host) cap bounds one binding at the host") {
  ConnectionLedger l(plainConfig(2, 1000, 0));
  uint32_t a = addHost(l, kUnlimited, {2, kUnlimited});
  uint32_t d0 = addDomain(l, 10), d1 = addDomain(l, 10);
  REQUIRE(l.setDomainHosts(d0, {a}) == Status::Ok);
  REQUIRE(l.setDomainHosts(d1, {a}) == Status::Ok);
  CHECK(l.acquire(d0, 0, 5, 0, 0, nullptr) == 2u);
  CHECK(l.acquire(d1, 0, 5, 0, 0, nullptr) == 0u);
  CHECK(l.lastRefusal() == Refusal::Host);
  CHECK(l.acquire(d1, 1, 5, 0, 0, nullptr) == 5u);
  CHECK(l.hostBindingCount(a, 0) == 2u);
  CHECK(l.hostBindingCount(a, 1) == 5u);
  CHECK(l.hostCount(a) == 7u);
  CHECK(l.checkInvariants());
}

TEST_CASE("Host scope: grants go to the MX set's hosts in order, each while it has room") {
  ConnectionLedger l(plainConfig(1, 1000, 0));
  uint32_t a = addHost(l, 2, {kUnlimited});
  uint32_t b = addHost(l, 1, {kUnlimited});
  uint32_t c = addHost(l, kUnlimited, {kUnlimited});
  uint32_t d = addDomain(l, 32);
  REQUIRE(l.setDomainHosts(d, {a, b}) == Status::Ok);
  CHECK(l.headroom(d, 0, 0, 0) == 3u);
  std::vector<Grant> out;
  CHECK(l.acquire(d, 0, 5, 0, 0, &out) == 3u);
  REQUIRE(out.size() == 3u);
  CHECK(l.leaseHost(out[0].connectionId) == a);
  CHECK(l.leaseHost(out[1].connectionId) == a);
  CHECK(l.leaseHost(out[2].connectionId) == b);
  // An uncapped host in the set leaves the domain to its other limits.
  REQUIRE(l.setDomainHosts(d, {a, b, c}) == Status::Ok);
  CHECK(l.acquire(d, 0, 100, 0, 0, &out) == 29u);
  CHECK(l.lastRefusal() == Refusal::Pair);
  CHECK(l.hostCount(c) == 29u);
  CHECK(l.checkInvariants());
}

TEST_CASE("Host scope: a domain whose MX set is not known gets one connection at a time; claimHost charges it") {
  ConnectionLedger l(plainConfig(1, 1000, 0));
  uint32_t a = addHost(l, 1, {kUnlimited});
  uint32_t b = addHost(l, 1, {kUnlimited});
  uint32_t d = addDomain(l, 10), other = addDomain(l, 10);
  std::vector<Grant> out;
  CHECK(l.acquire(d, 0, 5, 0, 0, &out) == 1u);
  CHECK(l.lastRefusal() == Refusal::Host);
  CHECK(l.acquire(d, 0, 5, 0, 0, &out) == 0u);
  REQUIRE(out.size() == 1u);
  double id = out[0].connectionId;
  CHECK(l.leaseHost(id) == kNoHost);
  CHECK(l.claimHost(id, a) == Status::Ok);
  CHECK(l.claimHost(id, a) == Status::Ok);  // already there: no second charge
  CHECK(l.hostCount(a) == 1u);
  // Another domain's probe cannot take the full host, but may take the free one.
  CHECK(l.setDomainHosts(d, {a, b}) == Status::Ok);
  CHECK(l.acquire(other, 0, 1, 0, 0, &out) == 1u);
  double probe = out.back().connectionId;
  CHECK(l.claimHost(probe, a) == Status::TooMany);
  CHECK(l.leaseHost(probe) == kNoHost);
  CHECK(l.claimHost(probe, b) == Status::Ok);
  CHECK(l.headroom(d, 0, 0, 0) == 0u);  // both hosts of its set are full
  // The session falls back from a to... nothing free: a move to a full host is refused and the
  // charge stays where it was.
  CHECK(l.claimHost(id, b) == Status::TooMany);
  CHECK(l.leaseHost(id) == a);
  REQUIRE(l.release(probe, nullptr) == Status::Ok);
  CHECK(l.claimHost(id, b) == Status::Ok);  // MX fallback: the charge moves with the session
  CHECK(l.hostCount(a) == 0u);
  CHECK(l.hostCount(b) == 1u);
  CHECK(l.checkInvariants());
  REQUIRE(l.release(id, nullptr) == Status::Ok);
  CHECK(l.hostCount(b) == 0u);
  CHECK(l.checkInvariants());
}

TEST_CASE("Host scope: migration keeps the host charge and teaches the sibling the MX set") {
  ConnectionLedger l(plainConfig(1, 1000, 0));
  uint32_t a = addHost(l, 2, {kUnlimited});
  uint32_t d0 = addDomain(l, 10), d1 = addDomain(l, 10);
  REQUIRE(l.setDomainHosts(d0, {a}) == Status::Ok);
  std::vector<Grant> out;
  CHECK(l.acquire(d0, 0, 2, 0, 0, &out) == 2u);
  CHECK(l.domainHosts(d1).empty());
  Grant moved;
  REQUIRE(l.migrate(out[0].connectionId, d1, &moved) == Status::Ok);
  CHECK(moved.domain == d1);
  CHECK(l.leaseHost(out[0].connectionId) == a);
  CHECK(l.hostCount(a) == 2u);
  CHECK(l.domainHosts(d1) == std::vector<uint32_t>{a});
  CHECK(l.headroom(d1, 0, 0, 0) == 0u);  // the host is full: the sibling gets no probe either
  CHECK(l.checkInvariants());
  REQUIRE(l.release(out[0].connectionId, nullptr) == Status::Ok);
  CHECK(l.hostCount(a) == 1u);
  CHECK(l.checkInvariants());
}

TEST_CASE("Host scope: bad arguments change nothing") {
  ConnectionLedger l(plainConfig(2, 1000, 0));
  uint32_t h = 0;
  CHECK(l.addHost(1, {1}, &h) == Status::BadArgument);  // one cap per binding
  CHECK(!l.hostScope());
  uint32_t a = addHost(l, 1, {kUnlimited, kUnlimited});
  CHECK(l.hostScope());
  uint32_t d = addDomain(l, 10);
  CHECK(l.setDomainHosts(d, {a, a}) == Status::BadArgument);
  CHECK(l.setDomainHosts(d, {a + 1}) == Status::BadArgument);
  CHECK(l.setDomainHosts(d + 1, {a}) == Status::BadDomain);
  CHECK(l.setDomainHosts(d, std::vector<uint32_t>(kMaxDomainHosts + 1, a)) == Status::BadArgument);
  CHECK(l.domainHosts(d).empty());
  std::vector<Grant> out;
  REQUIRE(l.acquire(d, 0, 1, 0, 0, &out) == 1u);
  CHECK(l.claimHost(out[0].connectionId, a + 1) == Status::BadArgument);
  CHECK(l.claimHost(out[0].connectionId + 1, a) == Status::UnknownConnection);
  CHECK(l.claimHost(0.5, a) == Status::UnknownConnection);
  CHECK(l.leaseHost(-1) == kNoHost);
  CHECK(l.hostCount(a) == 0u);
  CHECK(l.checkInvariants());
}

TEST_CASE("Host scope: random acquire, claim, migrate and release keep every host count within its caps") {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Rng rng(seed);
    LedgerConfig c = plainConfig(static_cast<uint32_t>(rng.range(1, 3)), 1000, 0);
    ConnectionLedger l(c);
    uint32_t nh = static_cast<uint32_t>(rng.range(1, 4));
    std::vector<uint32_t> cap(nh), bcap(nh * c.bindings);
    for (uint32_t h = 0; h < nh; ++h) {
      cap[h] = limitOrUnlimited(rng, 0.2, 0, 5);
      std::vector<uint32_t> per(c.bindings);
      for (uint32_t b = 0; b < c.bindings; ++b) per[b] = bcap[h * c.bindings + b] = limitOrUnlimited(rng, 0.6, 0, 3);
      addHost(l, cap[h], per);
    }
    uint32_t nd = static_cast<uint32_t>(rng.range(1, 5));
    for (uint32_t i = 0; i < nd; ++i) addDomain(l, static_cast<uint32_t>(rng.range(0, 8)));
    std::vector<Grant> open;
    for (int step = 0; step < 300; ++step) {
      uint32_t d = static_cast<uint32_t>(rng.below(nd));
      uint32_t b = static_cast<uint32_t>(rng.below(c.bindings));
      switch (rng.below(5)) {
        case 0: {  // learn a set: distinct hosts in random order
          std::vector<uint32_t> set;
          for (uint32_t h = 0; h < nh; ++h)
            if (rng.chance(0.5)) set.insert(set.begin() + static_cast<long>(rng.below(set.size() + 1)), h);
          REQUIRE(l.setDomainHosts(d, set) == Status::Ok);
          break;
        }
        case 1:
          l.acquire(d, b, static_cast<uint32_t>(rng.range(1, 6)), 0, 0, &open);
          break;
        case 2:
          if (!open.empty())
            l.claimHost(open[rng.below(open.size())].connectionId, static_cast<uint32_t>(rng.below(nh)));
          break;
        case 3:
          if (!open.empty()) l.migrate(open[rng.below(open.size())].connectionId, d, nullptr);
          break;
        default:
          if (!open.empty()) {
            size_t i = rng.below(open.size());
            REQUIRE(l.release(open[i].connectionId, nullptr) == Status::Ok);
            open.erase(open.begin() + static_cast<long>(i));
          }
      }
      // The test's own tally from the leases it holds, against the caps it configured.
      std::vector<uint32_t> host(nh, 0), hostBinding(nh * c.bindings, 0);
      for (const Grant& g : open) {
        uint32_t h = l.leaseHost(g.connectionId);
        if (h == kNoHost) continue;
        REQUIRE(h < nh);
        ++host[h];
        ++hostBinding[h * c.bindings + g.binding];
      }
      for (uint32_t h = 0; h < nh; ++h) {
        CHECK(host[h] == l.hostCount(h));
        CHECK(host[h] <= cap[h]);
        for (uint32_t bb = 0; bb < c.bindings; ++bb)
          CHECK(hostBinding[h * c.bindings + bb] <= bcap[h * c.bindings + bb]);
      }
      REQUIRE(l.checkInvariants());
    }
  }
}

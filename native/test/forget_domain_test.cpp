// Core::forgetDomain and domain slot reuse: what refuses a forget (mail in any place, a connection, a
// suspension, a grant or expired message not drained), what a forget resets (queues, rotation,
// limits, counts), what a reused slot starts from, and the places that hold a domain index across
// calls (sliced pass, prepareVisit, migration targets, idle notes).
#include <doctest/doctest.h>

#include <vector>

#include "core.hpp"
#include "test_support.hpp"

using namespace mqc;
using namespace test_support;

namespace {

std::vector<uint32_t> drainIdleAll(Core& c) {
  std::vector<uint32_t> out(c.domains() + 8);
  out.resize(c.drainIdle(out.data(), out.size()));
  return out;
}

std::vector<double> drainGrantsAll(Core& c) {
  std::vector<double> out(3 * (c.pendingGrants() + 1));
  out.resize(3 * c.drainGrants(out.data(), c.pendingGrants() + 1));
  return out;
}

}  // namespace

TEST_CASE("forgetDomain: refused while the domain holds a message, in any place") {
  Core c(plainConfig(2));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(2), &d) == Status::Ok);
  const double* k = c.counters();
  CHECK(k[kDomains] == 1);
  SUBCASE("active") {
    REQUIRE(c.enqueue(d, 1, 1, 0, 0, kNever, 0) == Status::Ok);
    CHECK(c.forgetDomain(d) == Status::DomainInUse);
    CHECK(c.cancel(1) == Status::Ok);
  }
  SUBCASE("delayed") {
    REQUIRE(c.enqueue(d, 0, 1, 0, 500, kNever, 0) == Status::Ok);
    CHECK(c.forgetDomain(d) == Status::DomainInUse);
    CHECK(c.cancel(1) == Status::Ok);
  }
  SUBCASE("in flight") {
    REQUIRE(c.enqueue(d, 0, 1, 0, 0, kNever, 0) == Status::Ok);
    double out[1];
    REQUIRE(c.take(d, 0, 1, 0, out) == 1u);
    CHECK(c.forgetDomain(d) == Status::DomainInUse);
    CHECK(c.settle(1) == Status::Ok);
  }
  SUBCASE("in flight, settled in a batch") {
    REQUIRE(c.enqueue(d, 0, 1, 0, 0, kNever, 0) == Status::Ok);
    REQUIRE(c.enqueue(d, 1, 2, 0, 0, kNever, 0) == Status::Ok);
    double out[1];
    REQUIRE(c.take(d, 0, 1, 0, out) == 1u);
    REQUIRE(c.take(d, 1, 1, 0, out) == 1u);
    CHECK(c.forgetDomain(d) == Status::DomainInUse);
    const double ids[] = {1, 2};
    size_t at;
    CHECK(c.settleBatch(ids, 2, &at) == Status::Ok);
  }
  SUBCASE("deferred back to delayed") {
    REQUIRE(c.enqueue(d, 0, 1, 0, 0, kNever, 0) == Status::Ok);
    double out[1];
    REQUIRE(c.take(d, 0, 1, 0, out) == 1u);
    REQUIRE(c.defer(1, 100, 0) == Status::Ok);
    CHECK(c.forgetDomain(d) == Status::DomainInUse);
    CHECK(c.cancel(1) == Status::Ok);
  }
  CHECK(c.checkInvariants());
  CHECK(c.forgetDomain(d) == Status::Ok);
  CHECK(k[kDomains] == 0);
  CHECK(!c.domainLive(d));
  CHECK(c.forgetDomain(d) == Status::BadDomain);  // once only
  CHECK(c.enqueue(d, 0, 9, 0, 0, kNever, 0) == Status::BadDomain);
  CHECK(c.checkInvariants());
}

TEST_CASE("forgetDomain: refused with a connection") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 1, 0, 0, kNever, 0) == Status::Ok);
  REQUIRE(c.maintainAll(0) == 1u);
  std::vector<double> g = drainGrantsAll(c);
  REQUIRE(g.size() == 3u);
  double out[1];
  size_t taken = 0;
  REQUIRE(c.takeFor(g[0], 1, 0, out, &taken) == Status::Ok);
  REQUIRE(taken == 1u);
  // A connection holding a message, then only the connection.
  CHECK(c.forgetDomain(d) == Status::DomainInUse);
  CHECK(c.settle(1) == Status::Ok);
  CHECK(c.forgetDomain(d) == Status::DomainInUse);
  CHECK(c.releaseConnection(g[0]) == Status::Ok);
  CHECK(c.checkInvariants());
  CHECK(c.forgetDomain(d) == Status::Ok);
  CHECK(c.checkInvariants());
}

TEST_CASE("forgetDomain: held while suspended") {
  Core c(plainConfig(2));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(2), &d) == Status::Ok);
  c.ledger().setSuspended(d, 1, true);
  CHECK(c.forgetDomain(d) == Status::DomainHeld);
  c.ledger().setSuspended(d, 1, false);
  CHECK(c.forgetDomain(d) == Status::Ok);
}

TEST_CASE("forgetDomain: held while a grant naming it is not drained (its connection already released)") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 1, 0, 0, kNever, 0) == Status::Ok);
  REQUIRE(c.maintainAll(0) == 1u);
  CHECK(c.cancel(1) == Status::Ok);
  CHECK(c.forgetDomain(d) == Status::DomainInUse);  // the connection
  REQUIRE(c.releaseConnection(1) == Status::Ok);
  CHECK(c.forgetDomain(d) == Status::DomainHeld);  // its grant still names d
  CHECK(drainGrantsAll(c).size() == 3u);
  CHECK(c.forgetDomain(d) == Status::Ok);
}

TEST_CASE("forgetDomain: held while an expired message of it is not drained") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 1, 0, 0, 10, 0) == Status::Ok);
  REQUIRE(c.expireActive(d, 20) == 1u);
  CHECK(c.forgetDomain(d) == Status::DomainHeld);
  double ids[2], doms[2];
  CHECK(c.drainExpired(ids, doms, 2) == 1u);
  CHECK(doms[0] == d);
  CHECK(c.forgetDomain(d) == Status::Ok);
}

TEST_CASE("forgetDomain: lazily cancelled entries are purged; a reused slot starts empty with its new limits") {
  Core c(plainConfig(2));
  uint32_t a, b;
  REQUIRE(c.addDomain(plainDomain(2, 0, 3), &a) == Status::Ok);
  REQUIRE(c.addDomain(plainDomain(2), &b) == Status::Ok);
  // Active entries cancelled lazily stay in the queue as dead entries (no purge below 64 of them
  // while one live entry remains; cancelling the last live one purges).
  for (double id = 1; id <= 5; ++id) REQUIRE(c.enqueue(a, 0, id, 0, 0, 1000, 0) == Status::Ok);
  for (double id = 1; id <= 4; ++id) REQUIRE(c.cancel(id) == Status::Ok);
  REQUIRE(c.enqueue(a, 1, 6, 1, 500, kNever, 0) == Status::Ok);  // delayed
  REQUIRE(c.promoteDue(a, 600) == 1u);
  uint32_t order[2];
  REQUIRE(c.bindingOrder(a, order) == 2u);  // moves a's binding rotation on
  CHECK(c.cancel(5) == Status::Ok);
  CHECK(c.cancel(6) == Status::Ok);
  CHECK(c.checkInvariants());
  const double* k = c.counters();
  CHECK(k[kDomains] == 2);
  REQUIRE(c.forgetDomain(a) == Status::Ok);
  CHECK(k[kDomains] == 1);
  CHECK(c.checkInvariants());
  // The id of a cancelled message can be used again anywhere.
  CHECK(c.enqueue(b, 0, 1, 0, 0, kNever, 0) == Status::Ok);

  // The slot comes back for the next domain, with the limits given now.
  DomainLimits dl = plainDomain(2, 0, 7);
  dl.scopeMax = 5;
  uint32_t again;
  REQUIRE(c.addDomain(dl, &again) == Status::Ok);
  CHECK(again == a);
  CHECK(c.domains() == 2u);
  CHECK(k[kDomains] == 2);
  CHECK(c.activeSize(again, 0) == 0u);
  CHECK(c.activeSize(again, 1) == 0u);
  CHECK(c.delayedSize(again) == 0u);
  CHECK(c.activeTotal(again) == 0u);
  CHECK(c.ledger().pairLimits(again, 0).maxConnections == 7u);
  CHECK(c.ledger().domainCount(again) == 0u);
  // Its binding rotation starts again: with mail on both bindings, binding 0 comes first.
  REQUIRE(c.enqueue(again, 0, 20, 0, 0, kNever, 0) == Status::Ok);
  REQUIRE(c.enqueue(again, 1, 21, 0, 0, kNever, 0) == Status::Ok);
  REQUIRE(c.bindingOrder(again, order) == 2u);
  CHECK(order[0] == 0u);
  // Its expiry bound starts again (the old domain's 1000 would make a sweep at 1500 look for work).
  CHECK(c.expireActive(again, 1500) == 0u);
  // The scope cap of 5 holds.
  CHECK(c.maintainDomain(again, 0, 100, -1) == 5u);
  CHECK(c.checkInvariants());
}

TEST_CASE("forgetDomain: a new domain takes the slot forgotten last; addDomain grows only without one") {
  Core c(plainConfig(1));
  uint32_t d[4];
  for (auto& x : d) REQUIRE(c.addDomain(plainDomain(1), &x) == Status::Ok);
  REQUIRE(c.forgetDomain(d[1]) == Status::Ok);
  REQUIRE(c.forgetDomain(d[3]) == Status::Ok);
  uint32_t x;
  REQUIRE(c.addDomain(plainDomain(1), &x) == Status::Ok);
  CHECK(x == d[3]);
  REQUIRE(c.addDomain(plainDomain(1), &x) == Status::Ok);
  CHECK(x == d[1]);
  REQUIRE(c.addDomain(plainDomain(1), &x) == Status::Ok);
  CHECK(x == 4u);
  // A refused addDomain leaves the free slot free.
  REQUIRE(c.forgetDomain(d[0]) == Status::Ok);
  DomainLimits bad = plainDomain(2);
  CHECK(c.addDomain(bad, &x) == Status::BadArgument);
  CHECK(!c.domainLive(d[0]));
  CHECK(c.counters()[kDomains] == 4);
  CHECK(c.checkInvariants());
}

TEST_CASE("forgetDomain: domains noted idle once each, after the last message or connection leaves") {
  Core c(plainConfig(1));
  uint32_t a, b;
  REQUIRE(c.addDomain(plainDomain(1), &a) == Status::Ok);
  REQUIRE(c.addDomain(plainDomain(1), &b) == Status::Ok);
  CHECK(drainIdleAll(c).empty());  // never had mail: not noted (the embedder made them for mail)
  REQUIRE(c.enqueue(a, 0, 1, 0, 0, kNever, 0) == Status::Ok);
  REQUIRE(c.enqueue(a, 0, 2, 0, 0, kNever, 0) == Status::Ok);
  REQUIRE(c.enqueue(b, 0, 3, 0, 100, kNever, 0) == Status::Ok);
  REQUIRE(c.maintainAll(0) >= 1u);
  std::vector<double> g = drainGrantsAll(c);
  double out[2];
  size_t taken;
  REQUIRE(c.takeFor(g[0], 2, 0, out, &taken) == Status::Ok);
  REQUIRE(taken == 2u);
  CHECK(c.settle(1) == Status::Ok);
  CHECK(c.settle(2) == Status::Ok);
  CHECK(drainIdleAll(c).empty());  // a still has its connection
  CHECK(c.cancel(3) == Status::Ok);
  CHECK(drainIdleAll(c) == std::vector<uint32_t>{b});
  for (size_t i = 0; i < g.size(); i += 3) CHECK(c.releaseConnection(g[i]) == Status::Ok);
  CHECK(drainIdleAll(c) == std::vector<uint32_t>{a});
  CHECK(drainIdleAll(c).empty());
  // Mail again, gone again: noted again.
  REQUIRE(c.enqueue(b, 0, 4, 0, 0, 50, 0) == Status::Ok);
  CHECK(c.expireActive(b, 60) == 1u);
  CHECK(drainIdleAll(c) == std::vector<uint32_t>{b});
  // A refused forget takes the note back: the next time it empties it is noted again.
  REQUIRE(c.enqueue(a, 0, 5, 0, 0, kNever, 0) == Status::Ok);
  CHECK(c.forgetDomain(a) == Status::DomainInUse);
  REQUIRE(c.removeActive(a, 0, 5) == Status::Ok);
  CHECK(drainIdleAll(c) == std::vector<uint32_t>{a});
  CHECK(c.checkInvariants());
}

TEST_CASE("forgetDomain: a sliced pass in progress and the last prepareVisit let go of the domain") {
  Core c(plainConfig(1));
  uint32_t d[4];
  for (auto& x : d) REQUIRE(c.addDomain(plainDomain(1), &x) == Status::Ok);
  for (uint32_t i = 0; i < 4; ++i) REQUIRE(c.enqueue(d[i], 0, 10 + i, 0, 0, kNever, 0) == Status::Ok);
  uint32_t out[4];
  size_t remaining;
  // The first slice: one domain of four (the rotation starts at 0 for the first pass).
  REQUIRE(c.nextSlice(0, 1, true, out, &remaining) == 1u);
  CHECK(out[0] == d[0]);
  CHECK(remaining == 3u);
  // d[2] and d[0] (visited) empty and are forgotten; a new domain takes d[0]'s slot with mail.
  REQUIRE(c.cancel(12) == Status::Ok);
  REQUIRE(c.cancel(10) == Status::Ok);
  REQUIRE(c.forgetDomain(d[2]) == Status::Ok);
  REQUIRE(c.forgetDomain(d[0]) == Status::Ok);
  CHECK(c.checkInvariants());
  uint32_t fresh;
  REQUIRE(c.addDomain(plainDomain(1), &fresh) == Status::Ok);
  REQUIRE(fresh == d[0]);
  REQUIRE(c.enqueue(fresh, 0, 20, 0, 0, kNever, 0) == Status::Ok);
  // The rest of the pass: d[1], d[3]; neither the forgotten d[2] nor the new domain in d[0]'s slot.
  REQUIRE(c.nextSlice(0, 4, false, out, &remaining) == 2u);
  CHECK(out[0] == d[1]);
  CHECK(out[1] == d[3]);
  CHECK(remaining == 0u);

  // prepareVisit's domain: visitDefault refuses once it is forgotten, not acting on a reuse.
  uint32_t order[1], reserves[1], wants[1];
  REQUIRE(c.cancel(11) == Status::Ok);
  c.prepareVisit(d[1], 0, 0, order, reserves, wants);
  REQUIRE(c.forgetDomain(d[1]) == Status::Ok);
  uint32_t again;
  REQUIRE(c.addDomain(plainDomain(1), &again) == Status::Ok);
  REQUIRE(again == d[1]);
  REQUIRE(c.enqueue(again, 0, 30, 0, 0, kNever, 0) == Status::Ok);
  uint32_t opened = 99;
  CHECK(c.visitDefault(0, 0, &opened) == Status::BadArgument);
  CHECK(opened == 0u);
  CHECK(c.counters()[kConnections] == 0);
  CHECK(c.checkInvariants());
}

TEST_CASE("forgetDomain: a connection cannot migrate to a forgotten slot; leaving a domain notes it idle") {
  Core c(plainConfig(1));
  uint32_t a, b, gone;
  REQUIRE(c.addDomain(plainDomain(1), &a) == Status::Ok);
  REQUIRE(c.addDomain(plainDomain(1), &b) == Status::Ok);
  REQUIRE(c.addDomain(plainDomain(1), &gone) == Status::Ok);
  REQUIRE(c.forgetDomain(gone) == Status::Ok);
  REQUIRE(c.enqueue(a, 0, 1, 0, 0, kNever, 0) == Status::Ok);
  REQUIRE(c.maintainAll(0) == 1u);
  std::vector<double> g = drainGrantsAll(c);
  REQUIRE(c.cancel(1) == Status::Ok);
  CHECK(c.migrateConnection(g[0], gone) == Status::BadDomain);
  CHECK(c.migrateConnection(g[0], 77) == Status::BadDomain);
  CHECK(drainIdleAll(c).empty());
  REQUIRE(c.migrateConnection(g[0], b) == Status::Ok);
  CHECK(drainIdleAll(c) == std::vector<uint32_t>{a});
  CHECK(c.forgetDomain(a) == Status::Ok);
  CHECK(c.forgetDomain(b) == Status::DomainInUse);
  REQUIRE(c.releaseConnection(g[0]) == Status::Ok);
  CHECK(c.forgetDomain(b) == Status::Ok);
  CHECK(c.counters()[kDomains] == 0);
  CHECK(c.checkInvariants());
}

TEST_CASE("forgetDomain: churn of many domains keeps the slots, the pool and the counts flat") {
  Core c(plainConfig(2));
  Rng rng(46);
  std::vector<uint32_t> live;
  double id = 1;
  size_t slotsAfterWarmup = 0, bytesAfterWarmup = 0;
  for (int round = 0; round < 2000; ++round) {
    // A few new domains with a message each, a take and settle for some, a cancel for the rest.
    for (int i = 0; i < 5; ++i) {
      uint32_t d;
      REQUIRE(c.addDomain(plainDomain(2), &d) == Status::Ok);
      uint32_t b = static_cast<uint32_t>(rng.below(2));
      REQUIRE(c.enqueue(d, b, id, 0, 0, kNever, 0) == Status::Ok);
      double out[1];
      if (rng.chance(0.5)) {
        REQUIRE(c.take(d, b, 1, 0, out) == 1u);
        REQUIRE(c.settle(id) == Status::Ok);
      } else {
        REQUIRE(c.cancel(id) == Status::Ok);
      }
      ++id;
      live.push_back(d);
    }
    std::vector<uint32_t> idle = drainIdleAll(c);
    CHECK(idle.size() == 5u);
    for (uint32_t d : idle) REQUIRE(c.forgetDomain(d) == Status::Ok);
    if (round == 10) {
      slotsAfterWarmup = c.domains();
      bytesAfterWarmup = c.bytesReserved();
    }
  }
  CHECK(c.domains() == slotsAfterWarmup);
  CHECK(c.bytesReserved() == bytesAfterWarmup);
  CHECK(c.counters()[kDomains] == 0);
  CHECK(c.checkInvariants());
}

TEST_CASE("forgetDomain under the Host scope: a reused slot has no MX set until it is taught one") {
  Core c(plainConfig(1));
  uint32_t host;
  REQUIRE(c.ledger().addHost(kUnlimited, {kUnlimited}, &host) == Status::Ok);
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  REQUIRE(c.ledger().setDomainHosts(d, {host}) == Status::Ok);
  CHECK(c.ledger().domainHosts(d).size() == 1);
  drainIdleAll(c);
  REQUIRE(c.forgetDomain(d) == Status::Ok);
  uint32_t again;
  REQUIRE(c.addDomain(plainDomain(1), &again) == Status::Ok);
  REQUIRE(again == d);
  // The new domain in the slot is not the old one: with its MX set unknown, the Host scope lets
  // it open one connection at a time until a session teaches it.
  CHECK(c.ledger().domainHosts(again).empty());
  CHECK(c.checkInvariants());
}

// Fleet-wide throttles (lib/cluster, decision 51) on the native side: a RateThrottle's allowance
// (the slots of the fleet's rate this node holds), and a pair's cluster buckets in the ledger,
// checked and charged beside the pair's own throttles.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "connection_ledger.hpp"
#include "rate_throttle.hpp"
#include "test_support.hpp"

using namespace mqc;
using namespace test_support;

namespace {

// A bucket as lib/cluster drives it: its allowance moves (0 included) while grants are taken. Each
// grant is checked against the model: when it is made, the window ending then holds at most the
// allowance in force (this grant included). `viaRate` plants the fault of carrying the allowance
// in the bucket's count instead (setRate, which keeps only the newest `count` grant times, and
// cannot go to 0: modelled as no grant while 0); *breached says whether the check caught a breach.
void allowanceRun(uint64_t seed, uint32_t count, double windowMs, int steps, bool viaRate, bool* breached) {
  *breached = false;
  Rng rng(seed);
  RateThrottle t(count, windowMs);
  std::vector<double> grants;
  uint32_t allowance = count;
  double now = 0;
  for (int step = 0; step < steps; ++step) {
    INFO("seed " << seed << " N " << count << " step " << step << " now " << now << " allowance " << allowance);
    now += static_cast<double>(rng.below(static_cast<uint64_t>(windowMs / 3) + 1));
    if (rng.chance(0.15)) {
      allowance = static_cast<uint32_t>(rng.below(count + 1));
      if (viaRate) {
        if (allowance > 0) t.setRate(allowance, windowMs);
      } else {
        t.setAllowance(allowance);
      }
      if (!viaRate) ENSURE(t.allowance() == allowance);
    }
    uint32_t avail = viaRate && allowance == 0 ? 0 : t.available(now);
    size_t used = inWindow(grants, now, windowMs);
    if (!viaRate) {
      ENSURE_MSG(avail == (allowance > used ? allowance - used : 0), "available " << avail << ", in window " << used);
      double next = t.nextAllowedAt(now);
      if (allowance == 0) {
        ENSURE(next == std::numeric_limits<double>::infinity());
      } else if (avail > 0) {
        ENSURE(next == now);
      } else {
        // The (used - allowance + 1)-th oldest grant of the window leaves it first: then one more.
        std::vector<double> in;
        for (double g : grants)
          if (g > now - windowMs) in.push_back(g);
        std::sort(in.begin(), in.end());
        ENSURE_MSG(next == in[used - allowance] + windowMs, "nextAllowedAt " << next);
      }
    }
    uint32_t take = static_cast<uint32_t>(rng.below(avail + 1));
    t.consume(now, take);
    for (uint32_t i = 0; i < take; ++i) grants.push_back(now);
    if (take > 0 && inWindow(grants, now, windowMs) > allowance) {
      *breached = true;
      return;
    }
  }
}

}  // namespace

TEST_CASE("RateThrottle: an allowance that moves (through 0) never lets more grants into a window") {
  uint64_t seed = 100;
  for (uint32_t n : {1u, 2u, 3u, 5u, 8u})
    for (int rep = 0; rep < 4; ++rep) {
      bool breached = true;
      allowanceRun(seed++, n, 1000, 2000, false, &breached);
      CHECK_FALSE(breached);
    }
}

TEST_CASE("RateThrottle: the allowance check catches a bucket that forgets grants (planted fault)") {
  // Carrying the allowance in the count (setRate) forgets the older grants of the window when it
  // is lowered; raised again within the window, it grants them a second time.
  bool caught = false;
  for (uint64_t seed = 100; seed < 120 && !caught; ++seed) allowanceRun(seed, 5, 1000, 2000, true, &caught);
  CHECK(caught);
  // The same sequence by hand: 3 grants, the allowance to 0 and back to 3 within the window.
  RateThrottle t(3, 1000);
  t.consume(0, 3);
  t.setAllowance(0);
  CHECK(t.available(100) == 0u);
  CHECK(t.nextAllowedAt(100) == std::numeric_limits<double>::infinity());
  t.setAllowance(3);
  CHECK(t.available(200) == 0u);  // the 3 grants at 0 still fill the window
  CHECK(t.nextAllowedAt(200) == 1000.0);
  CHECK(t.available(1000) == 3u);
  t.setAllowance(1);
  CHECK(t.available(1000) == 1u);
  t.setAllowance(7);  // above the count: the count holds
  CHECK(t.allowance() == 3u);
  CHECK(t.available(1000) == 3u);
}

TEST_CASE("ConnectionLedger: a pair's fleet-wide throttles are checked and charged beside its own") {
  ConnectionLedger l(plainConfig(2, 1000, 0));
  int32_t own = l.addThrottle(5, 1000);
  int32_t fleet = l.addThrottle(4, 2000);
  int32_t ownMsg = l.addThrottle(10, 1000);
  int32_t fleetMsg = l.addThrottle(6, 1000);
  REQUIRE((own >= 0 && fleet >= 0 && ownMsg >= 0 && fleetMsg >= 0));
  DomainLimits dl = plainDomain(2, 0, 10);
  dl.pairs[0].throttle = own;
  uint32_t d, e;
  REQUIRE(l.addDomain(dl, &d) == Status::Ok);
  REQUIRE(l.addDomain(plainDomain(2, 0, 10), &e) == Status::Ok);
  REQUIRE(l.setMessageThrottle(d, 0, ownMsg) == Status::Ok);
  CHECK(l.clusterThrottles(d, 0).connections == kNoThrottle);

  SUBCASE("bad arguments change nothing") {
    CHECK(l.setClusterThrottles(9, 0, fleet, kNoThrottle) == Status::BadDomain);
    CHECK(l.setClusterThrottles(d, 2, fleet, kNoThrottle) == Status::BadArgument);
    CHECK(l.setClusterThrottles(d, 0, 4, kNoThrottle) == Status::BadArgument);
    CHECK(l.setClusterThrottles(d, 0, kNoThrottle, -2) == Status::BadArgument);
    CHECK(l.setClusterThrottles(d, 0, own, kNoThrottle) == Status::BadArgument);  // its own bucket
    CHECK(l.setClusterThrottles(d, 0, kNoThrottle, ownMsg) == Status::BadArgument);
    CHECK(l.setThrottleAllowance(4, 0) == Status::BadArgument);
    CHECK(l.setThrottleAllowance(-1, 0) == Status::BadArgument);
    CHECK(l.setThrottleAllowance(fleet, 5) == Status::BadArgument);  // above its count of 4
    CHECK(l.clusterThrottles(d, 0).connections == kNoThrottle);
    CHECK(l.throttle(fleet).allowance() == 4u);
    CHECK(l.headroom(d, 0, 0, 0) == 5u);
  }

  SUBCASE("connections: the smaller room opens, both buckets are charged, Refusal::Cluster") {
    REQUIRE(l.setClusterThrottles(d, 0, fleet, kNoThrottle) == Status::Ok);
    REQUIRE(l.setClusterThrottles(d, 1, fleet, kNoThrottle) == Status::Ok);
    REQUIRE(l.setThrottleAllowance(fleet, 0) == Status::Ok);  // no slot held: nothing opens
    CHECK(l.headroom(d, 0, 0, 0) == 0u);
    CHECK(l.acquire(d, 1, 2, 0, 0, nullptr) == 0u);
    CHECK(l.lastRefusal() == Refusal::Cluster);
    CHECK(l.acquire(e, 0, 2, 0, 0, nullptr) == 2u);  // a pair without one is not held back
    REQUIRE(l.setThrottleAllowance(fleet, 3) == Status::Ok);
    CHECK(l.acquire(d, 0, 5, 0, 10, nullptr) == 3u);
    CHECK(l.lastRefusal() == Refusal::Cluster);
    CHECK(l.throttle(own).available(10) == 2u);       // the pair's own bucket was charged too
    CHECK(l.acquire(d, 1, 1, 0, 20, nullptr) == 0u);  // the fleet bucket is shared by reference
    REQUIRE(l.setThrottleAllowance(fleet, 4) == Status::Ok);
    CHECK(l.acquire(d, 1, 3, 0, 30, nullptr) == 1u);
    CHECK(l.headroom(d, 0, 0, 2009) == 0u);  // the 2 s window: the grants at 10 and 30 count yet
    CHECK(l.headroom(d, 0, 0, 2010) == 3u);  // the grants at 10 left the window, the one at 30 counts
    CHECK(l.checkInvariants());
    // A domain slot reused starts without the fleet buckets of the domain it held.
    ConnectionLedger m(plainConfig(1, 100, 0));
    int32_t f = m.addThrottle(1, 1000);
    uint32_t x;
    REQUIRE(m.addDomain(plainDomain(1), &x) == Status::Ok);
    REQUIRE(m.setClusterThrottles(x, 0, f, kNoThrottle) == Status::Ok);
    REQUIRE(m.setThrottleAllowance(f, 0) == Status::Ok);
    CHECK(m.headroom(x, 0, 0, 0) == 0u);
    REQUIRE(m.reuseDomain(x, plainDomain(1)) == Status::Ok);
    CHECK(m.clusterThrottles(x, 0).connections == kNoThrottle);
    CHECK(m.headroom(x, 0, 0, 0) == 32u);
    CHECK(m.checkInvariants());
  }

  SUBCASE("messages: the smaller allowance, both buckets charged, the later next time") {
    REQUIRE(l.setClusterThrottles(d, 0, kNoThrottle, fleetMsg) == Status::Ok);
    REQUIRE(l.setThrottleAllowance(fleetMsg, 2) == Status::Ok);
    CHECK(l.messageAllowance(d, 0, 0) == 2u);
    CHECK(l.messageAllowance(d, 1, 0) == kUnlimited);
    l.consumeMessages(d, 0, 2, 0);
    CHECK(l.messageAllowance(d, 0, 500) == 0u);
    CHECK(l.throttle(ownMsg).available(500) == 8u);
    CHECK(l.messageNextAllowedAt(d, 0, 500) == 1000.0);
    REQUIRE(l.setThrottleAllowance(fleetMsg, 0) == Status::Ok);
    CHECK(l.messageNextAllowedAt(d, 0, 1500) == std::numeric_limits<double>::infinity());
    REQUIRE(l.setThrottleAllowance(fleetMsg, 6) == Status::Ok);
    CHECK(l.messageAllowance(d, 0, 1500) == 6u);
    CHECK(l.messageNextAllowedAt(d, 0, 1500) == 1500.0);
  }
}

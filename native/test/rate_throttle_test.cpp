// RateThrottle ("N/secs"): a sliding window, at most N grants in any window of windowMs.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "rate_throttle.hpp"
#include "test_support.hpp"

using namespace mqc;
using namespace test_support;

namespace {

void randomRun(uint64_t seed, uint32_t count, double windowMs, int steps) {
  Rng rng(seed);
  RateThrottle t(count, windowMs);
  ENSURE(t.count() == count);
  ENSURE(t.windowMs() == windowMs);
  std::vector<double> grants;
  double now = static_cast<double>(rng.below(1000000));
  for (int step = 0; step < steps; ++step) {
    INFO("seed " << seed << " N " << count << " window " << windowMs << " step " << step << " now " << now);
    uint64_t r = rng.below(10);
    if (r < 3) {
      // same instant
    } else if (r < 9) {
      now += std::floor(static_cast<double>(rng.below(static_cast<uint64_t>(windowMs / 4) + 2)));
    } else {
      now += windowMs * static_cast<double>(1 + rng.below(3));
    }
    uint32_t avail = t.available(now);
    size_t used = inWindow(grants, now, windowMs);
    ENSURE_MSG(used <= count, "model has " << used << " grants in the window");
    ENSURE_MSG(avail == count - used, "available " << avail << ", model " << count - used);
    double next = t.nextAllowedAt(now);
    if (avail > 0) {
      ENSURE(next == now);
    } else {
      // Full: the oldest grant in the window leaves it first.
      double oldest = std::numeric_limits<double>::infinity();
      for (double g : grants)
        if (g > now - windowMs) oldest = std::min(oldest, g);
      ENSURE_MSG(next == oldest + windowMs, "nextAllowedAt " << next << ", model " << oldest + windowMs);
    }
    // Ask for some, sometimes more than is available: only what the window allows is recorded.
    uint32_t ask =
        rng.chance(0.2) ? avail + static_cast<uint32_t>(rng.below(3)) : static_cast<uint32_t>(rng.below(avail + 1));
    t.consume(now, ask);
    uint32_t granted = std::min(ask, avail);
    for (uint32_t i = 0; i < granted; ++i) grants.push_back(now);
    ENSURE_MSG(t.available(now) == avail - granted, "after consume(" << ask << ")");
  }
  size_t worst = maxInAnyWindow(grants, windowMs);
  CHECK_MESSAGE(worst <= count, "a window of " << windowMs << " ms holds " << worst << " grants, limit " << count);
  // The throttle is not stingy either: it granted something in most runs.
  CHECK(!grants.empty());
}

}  // namespace

TEST_CASE("RateThrottle: never more than N grants in any window (random times; model comparison)") {
  struct Cfg {
    uint32_t n;
    double w;
  };
  const Cfg cfgs[] = {{1, 1000}, {2, 1000}, {3, 1000}, {5, 250}, {10, 60000}, {7, 333.5}, {64, 1000}, {1, 1}};
  uint64_t seed = 1;
  for (const Cfg& c : cfgs)
    for (int rep = 0; rep < 3; ++rep) randomRun(seed++, c.n, c.w, 1500);
}

TEST_CASE("RateThrottle: a burst at a window edge does not let 2N through") {
  // A token bucket refilled at N/secs would allow N at t = 999 and N more at t = 1000; a receiver
  // counting its own connections would see 2N within one second.
  RateThrottle t(5, 1000);
  CHECK(t.available(0) == 5u);
  t.consume(0, 1);
  t.consume(999, 4);
  CHECK(t.available(999) == 0u);
  CHECK(t.available(1000) == 1u);  // the window is now (0, 1000]: only the grant at 0 has left it
  t.consume(1000, 1);
  CHECK(t.available(1500) == 0u);
  CHECK(t.nextAllowedAt(1500) == 1999.0);
  CHECK(t.available(1998.5) == 0u);
  CHECK(t.available(1999) == 4u);
  CHECK(t.available(2000) == 5u);
  std::vector<double> grants{0, 999, 999, 999, 999, 1000};
  CHECK(maxInAnyWindow(grants, 1000) == 5u);
}

TEST_CASE("RateThrottle: nextAllowedAt") {
  RateThrottle t(3, 1000);
  CHECK(t.nextAllowedAt(50) == 50.0);  // free now
  t.consume(100, 1);
  t.consume(300, 2);
  CHECK(t.available(300) == 0u);
  double at = t.nextAllowedAt(400);
  CHECK(at == 1100.0);  // the grant at 100 leaves first
  CHECK(t.available(at - 1) == 0u);
  CHECK(t.available(at) == 1u);
  CHECK(t.nextAllowedAt(at) == at);
  t.consume(at, 1);
  CHECK(t.nextAllowedAt(at) == 1300.0);
  CHECK(t.available(1299) == 0u);
  CHECK(t.available(1300) == 2u);
}

TEST_CASE("RateThrottle: consume past the window is clipped to what is available") {
  RateThrottle t(2, 1000);
  t.consume(0, 5);  // only 2 are recorded
  CHECK(t.available(0) == 0u);
  CHECK(t.available(999) == 0u);
  CHECK(t.available(1000) == 2u);
  t.consume(1000, 2);
  t.consume(1000, 1);  // nothing left: records nothing
  CHECK(t.available(1999) == 0u);
  CHECK(t.available(2000) == 2u);
}

TEST_CASE("RateThrottle: a clock that goes backwards is clamped to the latest time seen") {
  SUBCASE("queries before the last grant see the window at the last grant") {
    RateThrottle t(2, 1000);
    t.consume(1000, 2);
    // Unclamped, the window (-1000, 0] would be empty and allow 2 more.
    CHECK(t.available(0) == 0u);
    CHECK(t.available(999) == 0u);
    CHECK(t.nextAllowedAt(10) == 2000.0);
    CHECK(t.available(2000) == 2u);
  }
  SUBCASE("a grant with an earlier time is recorded at the latest time") {
    RateThrottle t(2, 1000);
    t.consume(1000, 1);
    CHECK(t.available(400) == 1u);
    t.consume(400, 1);  // the clock stepped back 600 ms: the grant really happened at >= 1000
    // Recorded at 400 it would have left the window at 1400.
    CHECK(t.available(1450) == 0u);
    CHECK(t.nextAllowedAt(400) == 2000.0);
    CHECK(t.available(1999) == 0u);
    CHECK(t.available(2000) == 2u);
  }
  SUBCASE("random walk with steps back: never more than N in any window of clamped times") {
    Rng rng(77);
    RateThrottle t(4, 500);
    std::vector<double> grants;  // at the clamped time, the latest time passed to consume
    double now = 10000, clock = -std::numeric_limits<double>::infinity();
    for (int i = 0; i < 3000; ++i) {
      now += static_cast<double>(rng.below(200)) - 80;  // goes back about a third of the time
      uint32_t avail = t.available(now);
      uint32_t k = static_cast<uint32_t>(rng.below(avail + 1));
      t.consume(now, k);
      clock = std::max(clock, now);
      for (uint32_t j = 0; j < k; ++j) grants.push_back(clock);
      if (t.available(now) > 4) {
        FAIL_CHECK("available above N");
        break;
      }
    }
    CHECK(maxInAnyWindow(grants, 500) <= 4u);
    CHECK(grants.size() > 100u);
  }
}

// Times are samples of one forward-moving clock: after a look-ahead query at 5000, a stale `now` of
// 100 counts as 5000, and a grant made then is placed at 5000 (when it really happened, at the
// earliest), so the window holds in real time.
TEST_CASE("RateThrottle: a stale time counts as the latest time seen") {
  RateThrottle t(1, 1000);
  t.consume(0, 1);
  CHECK(t.available(5000) == 1u);
  CHECK(t.available(100) == 1u);
  t.consume(100, 1);
  CHECK(t.available(5999) == 0u);
  CHECK(t.nextAllowedAt(100) == 6000.0);
  CHECK(t.available(6000) == 1u);
}

// A zero-count throttle (the ledger refuses one; the class copes) never allows.
TEST_CASE("RateThrottle: a zero-count throttle never allows and says so") {
  RateThrottle t(0, 1000);
  CHECK(t.available(0) == 0u);
  t.consume(0, 3);
  CHECK(t.available(10000) == 0u);
  CHECK(t.nextAllowedAt(0) == std::numeric_limits<double>::infinity());
}

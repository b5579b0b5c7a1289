// connectionGoal: Momentum's connection_allocation_aggressiveness curve (docs/architecture.md §7).
#include <doctest/doctest.h>

#include <cstdint>
#include <initializer_list>

#include "connection_goal.hpp"
#include "test_support.hpp"

using namespace mqc;
using namespace test_support;

TEST_CASE("connectionGoal: the documented curve for M = 32") {
  // Read off Momentum's figure for connection_allocation_aggressiveness (queue 0..400, M = 32).
  const uint64_t q[] = {1, 10, 50, 100, 200, 400};
  const uint32_t normal[] = {1, 3, 12, 20, 28, 32};
  const uint32_t high[] = {1, 7, 23, 29, 32, 32};
  for (int i = 0; i < 6; ++i) {
    CAPTURE(q[i]);
    CHECK(connectionGoal(32, q[i], kAggressivenessNormal) == normal[i]);
    CHECK(connectionGoal(32, q[i], kAggressivenessHigh) == high[i]);
  }
  CHECK(kAggressivenessNormal == 0.3);
  CHECK(kAggressivenessHigh == 0.75);
}

TEST_CASE("connectionGoal: nothing queued or no connections allowed gives 0") {
  CHECK(connectionGoal(32, 0, kAggressivenessNormal) == 0u);
  CHECK(connectionGoal(32, 0, kAggressivenessHigh) == 0u);
  CHECK(connectionGoal(0, 1, kAggressivenessNormal) == 0u);
  CHECK(connectionGoal(0, 1000000, kAggressivenessHigh) == 0u);
  CHECK(connectionGoal(0, 0, 1.0) == 0u);
}

TEST_CASE("connectionGoal: one queued message gets one connection; M = 1") {
  CHECK(connectionGoal(1, 1, kAggressivenessNormal) == 1u);
  CHECK(connectionGoal(1, 1000000, kAggressivenessHigh) == 1u);
  CHECK(connectionGoal(20000, 1, 0.01) == 1u);
  CHECK(connectionGoal(32, 1, 1.0) == 1u);
}

TEST_CASE("connectionGoal: within [1; M]; non-decreasing in the queue and in aggressiveness") {
  const uint32_t ms[] = {1, 2, 3, 7, 10, 32, 100, 1000, 20000, 0xffffffffu};
  const double as[] = {0.01, 0.1, 0.3, 0.5, 0.75, 1.0};
  for (uint32_t m : ms) {
    for (double a : as) {
      uint32_t prev = 0;
      bool ok = true;
      // q walks 1, 2, ... then geometrically up to 2^50.
      for (uint64_t q = 1; q <= (1ull << 50) && ok; q = q < 64 ? q + 1 : q + q / 7) {
        uint32_t g = connectionGoal(m, q, a);
        if (g < 1 || g > m || g < prev) {
          FAIL_CHECK("M " << m << " a " << a << " q " << q << ": goal " << g << " after " << prev);
          ok = false;
        }
        prev = g;
      }
      // A huge queue asks for every connection allowed.
      CHECK_MESSAGE(connectionGoal(m, 1ull << 60, a) == m, "M " << m << " a " << a);
      if (!ok) return;
    }
    for (uint64_t q : {1ull, 5ull, 50ull, 500ull, 5000ull}) {
      uint32_t prev = 0;
      for (double a : as) {
        uint32_t g = connectionGoal(m, q, a);
        CHECK_MESSAGE(g >= prev, "M " << m << " q " << q << " a " << a);
        prev = g;
      }
    }
  }
}

TEST_CASE("connectionGoal: never more connections than messages for a small queue") {
  // With a <= 1, M * (1 - exp(-a q / M)) <= a * q <= q, so rounding up never passes q.
  for (uint32_t m : {1u, 4u, 32u, 500u}) {
    for (uint64_t q = 1; q <= 64; ++q) {
      CHECK_MESSAGE(connectionGoal(m, q, 1.0) <= q, "M " << m << " q " << q);
      CHECK_MESSAGE(connectionGoal(m, q, kAggressivenessNormal) <= q, "M " << m << " q " << q);
    }
  }
}

// ActiveQueue: one skiplist per priority, urgent (1) served before normal (0), FIFO within one.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <set>
#include <tuple>
#include <vector>

#include "active_queue.hpp"
#include "run_node_pool.hpp"
#include "test_support.hpp"

using namespace mqc;
using namespace test_support;

namespace {

// Model entry ordered as the queue serves: priority descending, then time, then sequence.
struct E {
  int prio;
  double t;
  uint64_t seq;
  uint32_t h;
  bool operator<(const E& o) const { return std::make_tuple(-prio, t, seq) < std::make_tuple(-o.prio, o.t, o.seq); }
};

std::vector<uint32_t> handles(const ActiveQueue& q) {
  std::vector<uint32_t> v;
  q.forEach([&](uint8_t, const RunKey&, uint32_t h) {
    v.push_back(h);
    return true;
  });
  return v;
}

void randomWalk(uint64_t seed, int ops) {
  Rng rng(seed);
  RunNodePool pool;
  ActiveQueue q;
  std::set<E> model;
  uint64_t seq = 1;
  uint32_t out[160];
  for (int step = 0; step < ops; ++step) {
    INFO("seed " << seed << " step " << step);
    uint64_t r = rng.below(100);
    if (r < 55) {
      E e{static_cast<int>(rng.below(2)), static_cast<double>(rng.below(50)), seq++, static_cast<uint32_t>(rng.next())};
      q.insert(&pool, static_cast<uint8_t>(e.prio), RunKey{e.t, e.seq}, e.h);
      model.insert(e);
    } else if (r < 75) {
      if (model.empty()) continue;
      auto it = std::next(model.begin(), static_cast<std::ptrdiff_t>(rng.below(model.size())));
      E e = *it;
      // The wrong priority does not find it.
      ENSURE(!q.remove(static_cast<uint8_t>(1 - e.prio), RunKey{e.t, e.seq}));
      ENSURE(q.remove(static_cast<uint8_t>(e.prio), RunKey{e.t, e.seq}));
      model.erase(it);
    } else if (r < 88) {
      size_t k = rng.below(150);
      size_t got = q.popFront(out, k);
      std::vector<uint32_t> have(out, out + got), want;
      for (auto it = model.begin(); it != model.end() && want.size() < k; ++it) want.push_back(it->h);
      ENSURE_MSG(have == want, "popFront got " << fmt(have) << " want " << fmt(want));
      for (size_t i = 0; i < got; ++i) model.erase(model.begin());
    } else {
      size_t offset = rng.below(model.size() + 20), k = rng.below(150);
      size_t got = q.peek(offset, out, k);
      std::vector<uint32_t> have(out, out + got), want;
      size_t i = 0;
      for (auto it = model.begin(); it != model.end() && want.size() < k; ++it, ++i)
        if (i >= offset) want.push_back(it->h);
      ENSURE_MSG(have == want, "peek(" << offset << "," << k << ") got " << fmt(have) << " want " << fmt(want));
    }
    ENSURE(q.checkInvariants());
    ENSURE(q.size() == model.size());
    ENSURE(q.empty() == model.empty());
    if (step % 16 == 0) {
      std::vector<uint32_t> want;
      for (const E& e : model) want.push_back(e.h);
      ENSURE(handles(q) == want);
    }
  }
}

}  // namespace

TEST_CASE("ActiveQueue: priority 1 is served before priority 0; FIFO within a priority") {
  RunNodePool pool;
  ActiveQueue q;
  CHECK(q.empty());
  CHECK(q.checkInvariants());
  uint64_t seq = 1;
  // Interleave normal and urgent arrivals at one instant.
  for (uint32_t i = 0; i < 200; ++i) {
    uint8_t p = (i % 3 == 0) ? 1 : 0;
    q.insert(&pool, p, RunKey{100, seq++}, (p ? 1000 : 0) + i);
  }
  CHECK(q.size() == 200u);
  CHECK(q.checkInvariants());
  uint32_t out[200];
  size_t got = q.popFront(out, 200);
  REQUIRE(got == 200u);
  std::vector<uint32_t> have(out, out + got), want;
  for (uint32_t i = 0; i < 200; i += 3) want.push_back(1000 + i);
  for (uint32_t i = 0; i < 200; ++i)
    if (i % 3 != 0) want.push_back(i);
  CHECK_MESSAGE(have == want, "got " << fmt(have));
  CHECK(q.empty());
  CHECK(q.checkInvariants());
}

TEST_CASE("ActiveQueue: within a priority; earlier next-attempt first; then insertion order") {
  RunNodePool pool;
  ActiveQueue q;
  q.insert(&pool, 0, RunKey{50, 1}, 1);
  q.insert(&pool, 0, RunKey{10, 2}, 2);  // a retry that was due earlier goes ahead
  q.insert(&pool, 0, RunKey{50, 3}, 3);
  q.insert(&pool, 1, RunKey{90, 4}, 4);  // urgent beats every normal message whatever its time
  q.insert(&pool, 0, RunKey{10, 5}, 5);
  uint32_t out[8];
  REQUIRE(q.peek(0, out, 8) == 5u);
  std::vector<uint32_t> have(out, out + 5);
  CHECK(have == std::vector<uint32_t>{4, 2, 5, 1, 3});
  // popFront of one, then the rest.
  CHECK(q.popFront(out, 1) == 1u);
  CHECK(out[0] == 4u);
  CHECK(q.popFront(out, 8) == 4u);
  CHECK(std::vector<uint32_t>(out, out + 4) == std::vector<uint32_t>{2, 5, 1, 3});
}

TEST_CASE("ActiveQueue: remove by (priority; key)") {
  RunNodePool pool;
  ActiveQueue q;
  for (uint32_t i = 0; i < 150; ++i) q.insert(&pool, static_cast<uint8_t>(i & 1), RunKey{static_cast<double>(i), i + 1}, i);
  CHECK_FALSE(q.remove(0, RunKey{1, 2}));   // key 1 is urgent, not normal
  CHECK(q.remove(1, RunKey{1, 2}));
  CHECK_FALSE(q.remove(1, RunKey{1, 2}));   // already gone
  CHECK_FALSE(q.remove(0, RunKey{1000, 1}));
  CHECK(q.size() == 149u);
  // Remove every urgent entry: the urgent list goes, normal ones remain in order.
  for (uint32_t i = 3; i < 150; i += 2) CHECK(q.remove(1, RunKey{static_cast<double>(i), i + 1}));
  CHECK(q.size() == 75u);
  CHECK(q.checkInvariants());
  std::vector<uint32_t> want;
  for (uint32_t i = 0; i < 150; i += 2) want.push_back(i);
  CHECK(handles(q) == want);
  for (uint32_t i = 0; i < 150; i += 2) CHECK(q.remove(0, RunKey{static_cast<double>(i), i + 1}));
  CHECK(q.empty());
  CHECK(q.checkInvariants());
  // Usable again after it emptied.
  q.insert(&pool, 1, RunKey{5, 999}, 7);
  uint32_t out[1];
  CHECK(q.popFront(out, 1) == 1u);
  CHECK(out[0] == 7u);
  CHECK(pool.nodesInUse() == 0u);
}

TEST_CASE("ActiveQueue: peek across the priority boundary") {
  RunNodePool pool;
  ActiveQueue q;
  for (uint32_t i = 0; i < 70; ++i) q.insert(&pool, 1, RunKey{0, i + 1}, 100 + i);
  for (uint32_t i = 0; i < 90; ++i) q.insert(&pool, 0, RunKey{0, 200 + i}, 500 + i);
  uint32_t out[200];
  CHECK(q.peek(65, out, 10) == 10u);
  std::vector<uint32_t> want{165, 166, 167, 168, 169, 500, 501, 502, 503, 504};
  CHECK(std::vector<uint32_t>(out, out + 10) == want);
  CHECK(q.peek(70, out, 1) == 1u);
  CHECK(out[0] == 500u);
  CHECK(q.peek(159, out, 5) == 1u);
  CHECK(out[0] == 589u);
  CHECK(q.peek(160, out, 5) == 0u);
  CHECK(q.size() == 160u);
}

TEST_CASE("ActiveQueue: seeded random operations match an ordered model") {
  for (uint64_t seed = 1; seed <= 6; ++seed) randomWalk(seed, 3000);
}

// LeaseTable: open addressing over grants with backward-shift deletion, against a std::map model.
#include <doctest/doctest.h>

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "lease_table.hpp"
#include "test_support.hpp"

using namespace mqc;
using namespace test_support;

TEST_CASE("LeaseTable: random inserts and erases match a std::map, through growth and wrap-around") {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Rng rng(seed);
    LeaseTable t;
    std::map<uint64_t, Grant> model;
    uint64_t next = 1;
    for (int step = 0; step < 20000; ++step) {
      uint64_t r = rng.below(10);
      if (r < 5 || model.empty()) {
        // Ids as the ledger issues them: increasing from 1; now and then a large jump.
        if (rng.below(100) == 0) next += rng.below(1u << 30);
        Grant g{static_cast<double>(next), static_cast<uint32_t>(rng.below(1000)), static_cast<uint32_t>(rng.below(8))};
        ++next;
        t.insert(g);
        model[static_cast<uint64_t>(g.connectionId)] = g;
      } else if (r < 9) {
        // Erase a live id (oldest, newest or random) or an unknown one.
        auto it = model.begin();
        uint64_t pick = rng.below(3);
        if (pick == 1)
          it = std::prev(model.end());
        else if (pick == 2)
          std::advance(it, static_cast<long>(rng.below(model.size())));
        Grant out{};
        REQUIRE(t.erase(it->first, &out));
        CHECK(out.domain == it->second.domain);
        CHECK(out.binding == it->second.binding);
        model.erase(it);
      } else {
        Grant out{};
        CHECK_FALSE(t.erase(next + 5, &out));
        CHECK(t.find(0) == nullptr);
      }
      if (step % 997 == 0 || model.size() < 3) {
        REQUIRE(t.size() == model.size());
        for (const auto& kv : model) {
          Grant* g = t.find(kv.first);
          REQUIRE(g != nullptr);
          CHECK(g->domain == kv.second.domain);
        }
        size_t seen = 0;
        t.forEach([&](const Grant& g) {
          ++seen;
          CHECK(model.count(static_cast<uint64_t>(g.connectionId)) == 1u);
        });
        CHECK(seen == model.size());
      }
    }
  }
}

TEST_CASE("LeaseTable: sequential ids with long-lived leases among them keep probe chains short") {
  // The ledger's pattern: ids in sequence, most released soon in about the order they came, a few
  // held for a long time. A hash that keeps sequential ids in sequential slots (the bare id) piles
  // the newer ones up behind the long-lived ones: here its longest chain is 1326 slots, against 66
  // for groups of eight ids (the table's hash) and 19 for a mix of every id.
  LeaseTable t;
  std::map<uint64_t, Grant> model;
  Rng rng(7);
  uint64_t next = 1;
  std::deque<uint64_t> recent;  // erased near the front: a deque moves the few before it
  for (int step = 0; step < 200000; ++step) {
    Grant g{static_cast<double>(next++), 0, 0};
    t.insert(g);
    model[static_cast<uint64_t>(g.connectionId)] = g;
    // One lease in fifty is long-lived (kept until the end); the rest leave within a few thousand.
    if (rng.below(50) != 0) recent.push_back(static_cast<uint64_t>(g.connectionId));
    if (recent.size() > 4000) {
      Grant out{};
      size_t i = rng.below(64);  // about in order
      REQUIRE(t.erase(recent[i], &out));
      model.erase(recent[i]);
      recent.erase(recent.begin() + static_cast<long>(i));
    }
  }
  CHECK(t.size() == model.size());
  CHECK(t.size() > 4000u);
  CHECK(t.longestProbe() < 256u);
  for (const auto& kv : model) REQUIRE(t.find(kv.first) != nullptr);
}

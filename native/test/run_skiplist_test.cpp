// RunSkiplist (the unrolled skiplist behind every queue) against a plain ordered model.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "run_node_pool.hpp"
#include "run_skiplist.hpp"
#include "test_support.hpp"

using namespace mqc;
using namespace test_support;

namespace {

using ModelKey = std::pair<double, uint64_t>;  // (t, seq): lexicographic order is keyLess
using Model = std::map<ModelKey, uint32_t>;

std::vector<uint32_t> modelSlice(const Model& m, size_t offset, size_t k) {
  std::vector<uint32_t> out;
  if (offset >= m.size()) return out;
  auto it = std::next(m.begin(), static_cast<std::ptrdiff_t>(offset));
  for (; it != m.end() && out.size() < k; ++it) out.push_back(it->second);
  return out;
}

// Empty when the list holds exactly the model's entries, in order; else the first difference.
std::string compareAll(const RunSkiplist& list, const Model& m) {
  std::vector<std::pair<ModelKey, uint32_t>> got;
  list.forEach([&](const RunKey& k, uint32_t h) {
    got.push_back({{k.t, k.seq}, h});
    return true;
  });
  if (got.size() != m.size() || list.size() != m.size()) {
    std::ostringstream os;
    os << "size: forEach " << got.size() << ", size() " << list.size() << ", model " << m.size();
    return os.str();
  }
  size_t i = 0;
  for (const auto& kv : m) {
    if (got[i].first != kv.first || got[i].second != kv.second) {
      std::ostringstream os;
      os << "entry " << i << ": list (" << got[i].first.first << "," << got[i].first.second << ")->"
         << got[i].second << ", model (" << kv.first.first << "," << kv.first.second << ")->" << kv.second;
      return os.str();
    }
    ++i;
  }
  return "";
}

// One seeded random walk: the size swings between low and high water marks that cross the node
// capacity many times; every operation is checked against the model and the structure re-checked.
void randomWalk(uint64_t seed, int ops) {
  Rng rng(seed);
  RunNodePool pool;
  {
    RunSkiplist list(&pool, seed);
    Model model;
    std::vector<ModelKey> removedKeys;  // candidates for re-insertion of a key that left
    uint64_t nextSeq = 1;
    bool growing = true;
    size_t high = static_cast<size_t>(rng.range(70, 1000));
    // Style 1 grows by inserting next to random existing entries, so runs fill up in the middle
    // and split at every position; style 0 mixes appends, front and middle inserts.
    int style = static_cast<int>(rng.below(2));
    uint32_t out[200];
    size_t largest = 0, cycles = 0;
    for (int step = 0; step < ops; ++step) {
      INFO("seed " << seed << " step " << step << " size " << model.size());
      largest = std::max(largest, model.size());
      if (growing && model.size() >= high) growing = false;
      if (!growing && model.size() <= static_cast<size_t>(rng.range(0, 40))) {
        growing = true;
        ++cycles;
        high = static_cast<size_t>(rng.range(70, 1000));
        style = static_cast<int>(rng.below(2));
      }
      uint64_t r = rng.below(100);
      int insertShare = growing ? (style == 1 ? 85 : 62) : 22;
      if (r < static_cast<uint64_t>(insertShare)) {
        // Insert: FIFO append, before the head, anywhere inside (many equal times), or a key that
        // was removed earlier coming back.
        double lo = model.empty() ? 0 : model.begin()->first.first;
        double hi = model.empty() ? 0 : model.rbegin()->first.first;
        ModelKey k;
        uint64_t mode = style == 1 && !model.empty() && rng.chance(0.9) ? 10 : rng.below(10);
        if (mode == 10) {
          // Right after a random entry (same time, later sequence: after every entry of that
          // time), or between two times.
          auto it = std::next(model.begin(), static_cast<std::ptrdiff_t>(rng.below(model.size())));
          k = {it->first.first + (rng.chance(0.5) ? 0.0 : 0.5), nextSeq++};
        } else if (mode < 4) {
          k = {hi + static_cast<double>(rng.below(3)), nextSeq++};
        } else if (mode < 5) {
          k = {lo - static_cast<double>(rng.below(3)), nextSeq++};
        } else if (mode < 9 || removedKeys.empty()) {
          k = {static_cast<double>(rng.range(static_cast<int64_t>(lo) - 2, static_cast<int64_t>(hi) + 2)), nextSeq++};
        } else {
          size_t i = rng.below(removedKeys.size());
          k = removedKeys[i];
          removedKeys[i] = removedKeys.back();
          removedKeys.pop_back();
          if (model.count(k)) continue;
        }
        uint32_t h = static_cast<uint32_t>(rng.next());
        list.insert(RunKey{k.first, k.second}, h);
        model.emplace(k, h);
      } else if (r < 82) {
        // Remove a present key.
        if (model.empty()) {
          ENSURE(!list.remove(RunKey{1, 1}));
        } else {
          auto it = std::next(model.begin(), static_cast<std::ptrdiff_t>(rng.below(model.size())));
          ModelKey k = it->first;
          ENSURE_MSG(list.remove(RunKey{k.first, k.second}), "key (" << k.first << "," << k.second << ")");
          model.erase(it);
          if (removedKeys.size() < 4096) removedKeys.push_back(k);
        }
      } else if (r < 87) {
        // Remove an absent key: a fresh sequence, a present sequence with another time, or a key
        // that already left. Nothing may change.
        ModelKey k;
        uint64_t mode = rng.below(3);
        if (mode == 0 || model.empty()) {
          k = {static_cast<double>(rng.range(-5, 200)), nextSeq + 1000000 + rng.below(1000)};
        } else if (mode == 1) {
          auto it = std::next(model.begin(), static_cast<std::ptrdiff_t>(rng.below(model.size())));
          k = {it->first.first + (rng.chance(0.5) ? 0.5 : -0.5), it->first.second};
        } else {
          if (removedKeys.empty()) continue;
          k = removedKeys[rng.below(removedKeys.size())];
          if (model.count(k)) continue;
        }
        size_t before = list.size();
        ENSURE_MSG(!list.remove(RunKey{k.first, k.second}), "absent key (" << k.first << "," << k.second << ")");
        ENSURE(list.size() == before);
      } else if (r < 93) {
        // popFront: a few while growing; 0..150 (often more than one run, sometimes more than
        // the size) while shrinking.
        size_t k = static_cast<size_t>(growing ? rng.below(6) : rng.below(151));
        std::vector<uint32_t> want = modelSlice(model, 0, k);
        size_t got = list.popFront(out, k);
        std::vector<uint32_t> have(out, out + got);
        ENSURE_MSG(have == want, "popFront(" << k << ") got " << fmt(have) << " want " << fmt(want));
        for (size_t i = 0; i < got; ++i) model.erase(model.begin());
      } else {
        // peek at offsets around and past run boundaries.
        size_t offset = static_cast<size_t>(rng.below(model.size() + 70));
        size_t k = static_cast<size_t>(rng.below(151));
        std::vector<uint32_t> want = modelSlice(model, offset, k);
        size_t got = list.peek(offset, out, k);
        std::vector<uint32_t> have(out, out + got);
        ENSURE_MSG(have == want, "peek(" << offset << "," << k << ") got " << fmt(have) << " want " << fmt(want));
      }
      ENSURE(list.checkInvariants());
      ENSURE(list.size() == model.size());
      ENSURE(list.empty() == model.empty());
      if (!model.empty()) {
        ENSURE(list.frontKey().t == model.begin()->first.first);
        ENSURE(list.frontKey().seq == model.begin()->first.second);
        ENSURE(list.frontHandle() == model.begin()->second);
      }
      if (step % 8 == 0 || model.size() < 150) {
        std::string diff = compareAll(list, model);
        ENSURE_MSG(diff.empty(), diff);
      }
    }
    std::string diff = compareAll(list, model);
    ENSURE_MSG(diff.empty(), diff);
    // The walk really went through many runs' worth of entries and back, more than once.
    CHECK_MESSAGE(largest >= 4 * static_cast<size_t>(kRunCapacity), "largest size " << largest);
    CHECK_MESSAGE(cycles >= 2, "grow/shrink cycles " << cycles);
  }
  // The destructor gave every node back.
  CHECK(pool.nodesInUse() == 0);
}

}  // namespace

TEST_CASE("RunSkiplist: seeded random inserts/removes/popFront/peek match an ordered model") {
  for (uint64_t seed = 1; seed <= 12; ++seed) randomWalk(seed, 6000);
}

TEST_CASE("RunSkiplist: FIFO appends keep order and fill whole runs") {
  RunNodePool pool;
  RunSkiplist list(&pool, 7);
  Model model;
  const int n = 1000;
  for (int i = 0; i < n; ++i) {
    // Equal times are common (a batch enqueued at one instant): the sequence orders them.
    RunKey k{static_cast<double>(i / 10), static_cast<uint64_t>(i + 1)};
    list.insert(k, static_cast<uint32_t>(i));
    model.emplace(ModelKey{k.t, k.seq}, static_cast<uint32_t>(i));
    if (i % 37 == 0) REQUIRE(list.checkInvariants());
  }
  CHECK(list.checkInvariants());
  CHECK(compareAll(list, model) == "");
  // Appends only: every run but the last is full.
  size_t minimal = (n + kRunCapacity - 1) / kRunCapacity;
  CHECK(list.nodeCount() == minimal);
  uint32_t out[n];
  CHECK(list.popFront(out, n) == static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (out[i] != static_cast<uint32_t>(i)) {
      FAIL_CHECK("FIFO order broken at " << i << ": " << out[i]);
      break;
    }
  }
  CHECK(list.empty());
  CHECK(list.checkInvariants());
  CHECK(pool.nodesInUse() == 0);
}

TEST_CASE("RunSkiplist: descending inserts (always before the head) split and stay sorted") {
  RunNodePool pool;
  RunSkiplist list(&pool, 11);
  Model model;
  for (int i = 0; i < 700; ++i) {
    RunKey k{static_cast<double>(10000 - i), static_cast<uint64_t>(i + 1)};
    list.insert(k, static_cast<uint32_t>(i));
    model.emplace(ModelKey{k.t, k.seq}, static_cast<uint32_t>(i));
    if (!list.checkInvariants()) {
      FAIL_CHECK("invariants broken after " << i);
      break;
    }
  }
  CHECK(compareAll(list, model) == "");
  CHECK(list.frontHandle() == 699u);
}

TEST_CASE("RunSkiplist: a full run splits correctly whatever the insert position") {
  // Several full runs (appends fill each to capacity); then one insert lands at position p of the
  // middle run, for every p. A partly popped head (begin > 0) is covered by the second round.
  for (int popped = 0; popped <= 1; ++popped) {
    for (int p = 0; p <= kRunCapacity; ++p) {
      CAPTURE(p);
      CAPTURE(popped);
      RunNodePool pool;
      RunSkiplist list(&pool, static_cast<uint64_t>(p * 31 + 7 + popped));
      Model model;
      uint64_t seq = 1;
      const int runs = 3;
      for (int i = 0; i < runs * kRunCapacity + 1; ++i) {
        RunKey k{static_cast<double>(2 * i), seq++};
        list.insert(k, static_cast<uint32_t>(i));
        model.emplace(ModelKey{k.t, k.seq}, static_cast<uint32_t>(i));
      }
      int base = kRunCapacity;  // the second run
      if (popped) {
        // Pop the first run and 5 of the second, then refill the gap at the front of the head.
        uint32_t out[kRunCapacity + 5];
        REQUIRE(list.popFront(out, kRunCapacity + 5) == static_cast<size_t>(kRunCapacity + 5));
        for (int i = 0; i < kRunCapacity + 5; ++i) model.erase(model.begin());
        for (int i = 0; i < 5; ++i) {
          RunKey k{static_cast<double>(2 * (kRunCapacity + i)), 100000 + static_cast<uint64_t>(i)};
          list.insert(k, 7000u + static_cast<uint32_t>(i));
          model.emplace(ModelKey{k.t, k.seq}, 7000u + static_cast<uint32_t>(i));
        }
        REQUIRE(list.checkInvariants());
      }
      size_t nodesBefore = list.nodeCount();
      // Key between entries base + p - 1 and base + p of the original numbering.
      RunKey k{static_cast<double>(2 * (base + p)) - 1, seq++};
      list.insert(k, 99999);
      model.emplace(ModelKey{k.t, k.seq}, 99999u);
      CHECK(list.checkInvariants());
      CHECK(compareAll(list, model) == "");
      CHECK(list.nodeCount() <= nodesBefore + 1);
      // Everything still comes out in order.
      std::vector<uint32_t> want = modelSlice(model, 0, model.size());
      std::vector<uint32_t> out(model.size() + 1);
      out.resize(list.popFront(out.data(), out.size()));
      CHECK(out == want);
      CHECK(list.checkInvariants());
    }
  }
}

TEST_CASE("RunSkiplist: removal of absent keys returns false and changes nothing") {
  RunNodePool pool;
  RunSkiplist list(&pool, 3);
  CHECK_FALSE(list.remove(RunKey{0, 0}));
  CHECK_FALSE(list.remove(RunKey{5, 9}));
  CHECK(list.checkInvariants());
  Model model;
  for (int i = 0; i < 300; ++i) {
    RunKey k{static_cast<double>(i * 2), static_cast<uint64_t>(i + 1)};
    list.insert(k, static_cast<uint32_t>(i));
    model.emplace(ModelKey{k.t, k.seq}, static_cast<uint32_t>(i));
  }
  // Before the head, between two keys, after the tail, same time other sequence, same sequence
  // other time.
  const RunKey absent[] = {{-1, 1}, {-1, 0}, {3, 2}, {1000, 301}, {2, 1}, {2, 3}, {2, 2 + 1000}, {4.5, 3}, {598, 1}};
  for (const RunKey& k : absent) {
    CHECK_FALSE(list.remove(k));
    CHECK(list.checkInvariants());
  }
  CHECK(compareAll(list, model) == "");
  // A key removed once is absent the second time.
  CHECK(list.remove(RunKey{200, 101}));
  CHECK_FALSE(list.remove(RunKey{200, 101}));
  model.erase(ModelKey{200, 101});
  CHECK(list.checkInvariants());
  CHECK(compareAll(list, model) == "");
}

TEST_CASE("RunSkiplist: popFront across node boundaries") {
  RunNodePool pool;
  RunSkiplist list(&pool, 5);
  const int n = 5 * kRunCapacity + 17;
  for (int i = 0; i < n; ++i) list.insert(RunKey{static_cast<double>(i), static_cast<uint64_t>(i + 1)}, static_cast<uint32_t>(i));
  uint32_t out[n + 10];
  uint32_t expect = 0;
  // Pops that end just before, exactly at and just after run boundaries.
  const size_t chunks[] = {0, 1, static_cast<size_t>(kRunCapacity) - 2, 1, static_cast<size_t>(kRunCapacity) + 1,
                           static_cast<size_t>(2 * kRunCapacity) - 1, 3, 200, 50};
  for (size_t k : chunks) {
    size_t want = std::min(k, list.size());
    size_t got = list.popFront(out, k);
    CHECK(got == want);
    for (size_t i = 0; i < got; ++i) {
      if (out[i] != expect + i) {
        FAIL_CHECK("popFront chunk " << k << " entry " << i << " = " << out[i] << ", want " << expect + i);
        break;
      }
    }
    expect += static_cast<uint32_t>(got);
    CHECK(list.checkInvariants());
    CHECK(list.size() == static_cast<size_t>(n) - expect);
  }
  CHECK(list.empty());
  CHECK(list.popFront(out, 5) == 0u);
  // The list is usable again after it emptied.
  list.insert(RunKey{1, 1000}, 42);
  CHECK(list.frontHandle() == 42u);
  CHECK(list.checkInvariants());
}

TEST_CASE("RunSkiplist: a partly popped head run takes inserts at the front and in the middle") {
  RunNodePool pool;
  RunSkiplist list(&pool, 9);
  Model model;
  uint64_t seq = 1;
  for (int i = 0; i < 3 * kRunCapacity; ++i) {
    RunKey k{static_cast<double>(10 * i), seq++};
    list.insert(k, static_cast<uint32_t>(k.seq));
    model.emplace(ModelKey{k.t, k.seq}, static_cast<uint32_t>(k.seq));
  }
  uint32_t out[64];
  REQUIRE(list.popFront(out, 20) == 20u);
  for (int i = 0; i < 20; ++i) model.erase(model.begin());
  // Fill the gap the pops left at the front of the head run, then overflow that run.
  for (int i = 0; i < 90; ++i) {
    RunKey k{static_cast<double>(200 + (i % 2 == 0 ? -(i + 1) : i * 3 % 400)), seq++};
    list.insert(k, static_cast<uint32_t>(k.seq));
    model.emplace(ModelKey{k.t, k.seq}, static_cast<uint32_t>(k.seq));
    if (!list.checkInvariants()) {
      FAIL_CHECK("invariants broken at insert " << i);
      break;
    }
  }
  CHECK(compareAll(list, model) == "");
}

TEST_CASE("RunSkiplist: peek with offsets") {
  RunNodePool pool;
  RunSkiplist list(&pool, 13);
  Model model;
  const int n = 4 * kRunCapacity + 5;
  for (int i = 0; i < n; ++i) {
    RunKey k{static_cast<double>(i), static_cast<uint64_t>(i + 1)};
    list.insert(k, static_cast<uint32_t>(1000 + i));
    model.emplace(ModelKey{k.t, k.seq}, static_cast<uint32_t>(1000 + i));
  }
  // Thin some runs so that runs have different lengths and non-zero begins.
  uint32_t sink[8];
  list.popFront(sink, 3);
  for (int i = 0; i < 3; ++i) model.erase(model.begin());
  for (int i = 70; i < 90; ++i) {
    CHECK(list.remove(RunKey{static_cast<double>(i), static_cast<uint64_t>(i + 1)}));
    model.erase(ModelKey{static_cast<double>(i), static_cast<uint64_t>(i + 1)});
  }
  REQUIRE(list.checkInvariants());
  const size_t offsets[] = {0, 1, 60, 61, 62, 63, 64, 65, 100, 127, 128, 129, 200, model.size() - 1, model.size(),
                            model.size() + 3, 100000};
  const size_t ks[] = {0, 1, 2, 63, 64, 65, 300};
  uint32_t out[400];
  for (size_t offset : offsets) {
    for (size_t k : ks) {
      std::vector<uint32_t> want = modelSlice(model, offset, k);
      size_t got = list.peek(offset, out, k);
      std::vector<uint32_t> have(out, out + got);
      CHECK_MESSAGE(have == want, "peek(" << offset << "," << k << ") got " << fmt(have) << " want " << fmt(want));
    }
  }
  // peek does not consume.
  CHECK(list.size() == model.size());
  CHECK(compareAll(list, model) == "");
}

TEST_CASE("RunSkiplist: lists sharing one pool give every node back") {
  RunNodePool pool;
  {
    RunSkiplist a(&pool, 1), b(&pool, 2), c(&pool, 3);
    Rng rng(99);
    Model ma, mb, mc;
    RunSkiplist* lists[] = {&a, &b, &c};
    Model* models[] = {&ma, &mb, &mc};
    for (int i = 0; i < 3000; ++i) {
      int w = static_cast<int>(rng.below(3));
      RunKey k{static_cast<double>(rng.below(500)), static_cast<uint64_t>(i + 1)};
      lists[w]->insert(k, static_cast<uint32_t>(i));
      models[w]->emplace(ModelKey{k.t, k.seq}, static_cast<uint32_t>(i));
      if (rng.chance(0.3)) {
        uint32_t out[40];
        size_t got = lists[w]->popFront(out, 40);
        for (size_t j = 0; j < got; ++j) models[w]->erase(models[w]->begin());
      }
    }
    for (int w = 0; w < 3; ++w) {
      CHECK(lists[w]->checkInvariants());
      CHECK(compareAll(*lists[w], *models[w]) == "");
    }
    CHECK(pool.nodesInUse() == a.nodeCount() + b.nodeCount() + c.nodeCount());
    // Empty one list completely: its nodes return to the pool.
    uint32_t out[4000];
    a.popFront(out, 4000);
    CHECK(a.empty());
    CHECK(pool.nodesInUse() == b.nodeCount() + c.nodeCount());
  }
  CHECK(pool.nodesInUse() == 0u);
}

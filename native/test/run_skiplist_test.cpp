// RunSkiplist (the unrolled skiplist behind every queue) against a plain ordered model. Entries are
// bare message handles; their keys (nextAttempt, seq) live in the records of a real MessageTable.
// A node's own key is only a lower bound of its run once entries have left its front, so besides
// the model walks there are cases for inserts under such a stale key, removals that empty or merge
// nodes, equal times and the run-capacity boundaries. The last cases are about the nodes' 16-bit
// time summaries (scales, bases, merges, splits, ties, newest keys), over times of every scale.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core.hpp"
#include "message_table.hpp"
#include "run_node_pool.hpp"
#include "run_skiplist.hpp"
#include "test_support.hpp"

using namespace mqc;
using namespace test_support;

namespace {

using ModelKey = std::pair<double, uint64_t>;  // (t, seq): lexicographic order is keyLess
using Model = std::map<ModelKey, uint32_t>;    // key -> handle

ModelKey keyOf(const MessageTable& table, uint32_t h) {
  RunKey k = table.keyOf(h);
  return {k.t, k.seq};
}

std::vector<uint32_t> modelSlice(const Model& m, size_t offset, size_t k) {
  std::vector<uint32_t> out;
  if (offset >= m.size()) return out;
  auto it = std::next(m.begin(), static_cast<std::ptrdiff_t>(offset));
  for (; it != m.end() && out.size() < k; ++it) out.push_back(it->second);
  return out;
}

// Empty when the list holds exactly the model's handles, in order; else the first difference.
std::string compareAll(const RunSkiplist& list, const MessageTable& table, const Model& m) {
  std::vector<uint32_t> got;
  list.forEach([&](uint32_t h) {
    got.push_back(h);
    return true;
  });
  std::ostringstream os;
  if (got.size() != m.size() || list.size() != m.size()) {
    os << "size: forEach " << got.size() << ", size() " << list.size() << ", model " << m.size();
    return os.str();
  }
  size_t i = 0;
  for (const auto& kv : m) {
    if (got[i] != kv.second) {
      ModelKey k = keyOf(table, got[i]);
      os << "entry " << i << ": list " << got[i] << " (" << k.first << "," << k.second << "), model " << kv.second
         << " (" << kv.first.first << "," << kv.first.second << ")";
      return os.str();
    }
    ++i;
  }
  return "";
}

// One list over its own messages and pool, and the model it must match.
struct Fixture {
  KeyedMessages msgs;
  RunNodePool pool{&msgs.table};
  RunSkiplist list;
  Model model;

  explicit Fixture(uint64_t seed) : list(&pool, seed) {}

  // A new message with key (t, seq), inserted.
  uint32_t add(double t, uint64_t seq) {
    uint32_t h = msgs.add(t, seq);
    put(h);
    return h;
  }
  // Inserts a handle: a new one, or one that left and comes back with its key.
  void put(uint32_t h) {
    list.insert(h);
    model.emplace(keyOf(msgs.table, h), h);
  }
  bool remove(uint32_t h) {
    if (!list.remove(h)) return false;
    model.erase(keyOf(msgs.table, h));
    return true;
  }
  // Pops up to k entries (they leave the model too) and returns them.
  std::vector<uint32_t> pop(size_t k) {
    std::vector<uint32_t> out(k);
    out.resize(list.popFront(out.data(), k));
    for (uint32_t h : out) model.erase(keyOf(msgs.table, h));
    return out;
  }
  // n FIFO appends: entry i has key (10 i, 100 (i + 1)), so other keys fit between any two, by
  // time or by sequence. With only appends every run but the last is full.
  std::vector<uint32_t> fill(int n) {
    std::vector<uint32_t> h;
    for (int i = 0; i < n; ++i) h.push_back(add(10.0 * i, 100 * static_cast<uint64_t>(i + 1)));
    return h;
  }
  std::string diff() const { return compareAll(list, msgs.table, model); }
  // Empty when the structure is sound (checkInvariants also checks every time summary against its
  // record) and the list holds the model's entries in order; else what is wrong.
  std::string check() const {
    if (!list.checkInvariants()) return "checkInvariants failed";
    return diff();
  }
  // Keys for the summary cases, when every key comes from these two: a fresh sequence, above every
  // one inserted so far (a 'newest' key, which the list may place after equal times without
  // reading records), and an old one, below every one so far (like a key put back: not newest, it
  // goes before the entries of its time). Fresh sequences are 4 apart, which leaves room for keys
  // between two of them.
  uint64_t freshSeq = uint64_t{1} << 40;
  uint64_t oldSeq = (uint64_t{1} << 40) - 1;
  uint32_t addNew(double t) { return add(t, freshSeq += 4); }
  uint32_t addOld(double t) { return add(t, oldSeq--); }
  // Pops everything (asking for one more); empty when it came out in the model's order and left
  // the list empty and sound, with every node back in the pool; else what went wrong.
  std::string drain() {
    std::vector<uint32_t> want = modelSlice(model, 0, model.size());
    std::vector<uint32_t> got = pop(want.size() + 1);
    if (got != want) return "drained " + fmt(got) + ", want " + fmt(want);
    if (!list.empty() || !list.checkInvariants() || pool.nodesInUse() != 0) return "not empty after draining";
    return "";
  }
};

size_t runsFor(size_t n) { return (n + kRunCapacity - 1) / kRunCapacity; }

// The node layout that FIFO appends and removals give, by RunSkiplist::remove's rule: a run that
// empties goes; a run left thin (< kRunCapacity / 4) takes in the next run when both fit in
// 3/4 of a node. For scripted cases where each entry's run is known.
struct Layout {
  std::vector<std::vector<uint32_t>> runs;

  void append(uint32_t h) {
    if (runs.empty() || runs.back().size() == static_cast<size_t>(kRunCapacity)) runs.emplace_back();
    runs.back().push_back(h);
  }
  void remove(size_t r, uint32_t h) {
    auto& run = runs[r];
    run.erase(std::find(run.begin(), run.end(), h));
    if (run.empty()) {
      runs.erase(runs.begin() + static_cast<std::ptrdiff_t>(r));
    } else if (r + 1 < runs.size() && run.size() < static_cast<size_t>(kRunCapacity / 4) &&
               run.size() + runs[r + 1].size() <= static_cast<size_t>(kRunCapacity * 3 / 4)) {
      run.insert(run.end(), runs[r + 1].begin(), runs[r + 1].end());
      runs.erase(runs.begin() + static_cast<std::ptrdiff_t>(r + 1));
    }
  }
};

// A fixture whose list is FIFO appends, and its layout.
struct LaidOut {
  Fixture f;
  Layout layout;
  explicit LaidOut(uint64_t seed, int n) : f(seed) {
    for (uint32_t h : f.fill(n)) layout.append(h);
  }
  // Entries in run r (0 past the last run), so that loops over a layout that merged earlier than a
  // case expects end instead of reading past it.
  size_t runSize(size_t r) const { return r < layout.runs.size() ? layout.runs[r].size() : 0; }
  // Removes entry i of run r; the list must agree with the model and the layout after it. False
  // (and a failed check) when there is no such entry.
  bool removeAt(size_t r, size_t i) {
    if (i >= runSize(r)) {
      FAIL_CHECK("no entry " << i << " in run " << r << " of " << layout.runs.size());
      return false;
    }
    uint32_t h = layout.runs[r][i];
    CHECK(f.remove(h));
    layout.remove(r, h);
    CHECK(f.list.checkInvariants());
    CHECK(f.list.nodeCount() == layout.runs.size());
    return true;
  }
  uint32_t append(double t, uint64_t seq) {
    uint32_t h = f.add(t, seq);
    layout.append(h);
    CHECK(f.list.checkInvariants());
    CHECK(f.list.nodeCount() == layout.runs.size());
    return h;
  }
};

// One seeded random walk: the size swings between low and high water marks that cross the node
// capacity many times; every operation is checked against the model and the structure re-checked.
void randomWalk(uint64_t seed, int ops) {
  Rng rng(seed);
  KeyedMessages msgs;
  RunNodePool pool(&msgs.table);
  {
    RunSkiplist list(&pool, seed);
    Model model;
    // Handles that left but keep their records, to come back with the same key: popped and
    // removed ones (up to a limit). Others are freed, so handles are recycled with new keys.
    std::vector<uint32_t> left;
    auto retire = [&](uint32_t h, bool mayReturn) {
      if (mayReturn && left.size() < 256)
        left.push_back(h);
      else
        msgs.table.free(h);
    };
    // Fresh sequences: above every other (FIFO) or below every other (an entry that goes before
    // those of its time).
    uint64_t nextSeq = 1000000, backSeq = 999999;
    bool growing = true;
    // The high water mark and the largest pops and peeks grow with the node capacity.
    const int64_t highest = 1000 * kRunCapacity / 64;
    const uint64_t batch = 2 * kRunCapacity + 23;
    size_t high = static_cast<size_t>(rng.range(70, highest));
    // Style 1 grows by inserting next to random existing entries, so runs fill up in the middle
    // and split at every position; style 0 mixes appends, front and middle inserts.
    int style = static_cast<int>(rng.below(2));
    std::vector<uint32_t> outBuf(batch);
    uint32_t* out = outBuf.data();
    size_t largest = 0, cycles = 0, comebacks = 0;
    for (int step = 0; step < ops; ++step) {
      INFO("seed " << seed << " step " << step << " size " << model.size());
      largest = std::max(largest, model.size());
      if (growing && model.size() >= high) growing = false;
      if (!growing && model.size() <= static_cast<size_t>(rng.range(0, 40))) {
        growing = true;
        ++cycles;
        high = static_cast<size_t>(rng.range(70, highest));
        style = static_cast<int>(rng.below(2));
      }
      uint64_t r = rng.below(100);
      int insertShare = growing ? (style == 1 ? 85 : 62) : 22;
      if (r < static_cast<uint64_t>(insertShare)) {
        // Insert: FIFO append, before the head, anywhere inside (many equal times, either side of
        // the entries of that time), or a handle that left coming back.
        double lo = model.empty() ? 0 : model.begin()->first.first;
        double hi = model.empty() ? 0 : model.rbegin()->first.first;
        uint64_t mode = style == 1 && !model.empty() && rng.chance(0.9) ? 10 : rng.below(10);
        uint32_t h;
        if (mode == 9 && !left.empty()) {
          size_t i = rng.below(left.size());
          h = left[i];
          left[i] = left.back();
          left.pop_back();
          ENSURE(model.count(keyOf(msgs.table, h)) == 0);
          ++comebacks;
        } else {
          ModelKey k;
          if (mode == 10) {
            // Right after a random entry (same time, later sequence), or between two times.
            auto it = std::next(model.begin(), static_cast<std::ptrdiff_t>(rng.below(model.size())));
            k = {it->first.first + (rng.chance(0.5) ? 0.0 : 0.5), nextSeq++};
          } else if (mode < 4) {
            k = {hi + static_cast<double>(rng.below(3)), nextSeq++};
          } else if (mode < 5) {
            k = {lo - static_cast<double>(rng.below(3)), rng.chance(0.5) ? backSeq-- : nextSeq++};
          } else {
            k = {static_cast<double>(rng.range(static_cast<int64_t>(lo) - 2, static_cast<int64_t>(hi) + 2)),
                 rng.chance(0.3) ? backSeq-- : nextSeq++};
          }
          h = msgs.add(k.first, k.second);
        }
        list.insert(h);
        model.emplace(keyOf(msgs.table, h), h);
      } else if (r < 82) {
        // Remove a present entry.
        if (model.empty()) {
          uint32_t h = msgs.add(1, nextSeq++);
          ENSURE(!list.remove(h));
          msgs.table.free(h);
        } else {
          auto it = std::next(model.begin(), static_cast<std::ptrdiff_t>(rng.below(model.size())));
          uint32_t h = it->second;
          ENSURE_MSG(list.remove(h), "handle " << h << " key (" << it->first.first << "," << it->first.second << ")");
          model.erase(it);
          retire(h, true);
        }
      } else if (r < 87) {
        // Remove a handle that is not in the list: a new one with a fresh key, with a present
        // entry's sequence and another time, with a present entry's very key (another record), or
        // one that left. Nothing may change.
        uint64_t mode = model.empty() ? 0 : rng.below(4);
        uint32_t h;
        bool fresh = mode != 3;
        if (mode == 0) {
          h = msgs.add(static_cast<double>(rng.range(-5, 200)), nextSeq++);
        } else {
          auto it = std::next(model.begin(), static_cast<std::ptrdiff_t>(rng.below(model.size())));
          if (mode == 1) {
            h = msgs.add(it->first.first + (rng.chance(0.5) ? 0.5 : -0.5), it->first.second);
          } else if (mode == 2) {
            h = msgs.add(it->first.first, it->first.second);
          } else {
            if (left.empty()) continue;
            h = left[rng.below(left.size())];
          }
        }
        size_t before = list.size();
        ENSURE_MSG(!list.remove(h), "absent handle " << h << " (mode " << mode << ")");
        ENSURE(list.size() == before);
        if (fresh) msgs.table.free(h);
      } else if (r < 93) {
        // popFront: a few while growing; up to two runs and more (sometimes more than the size)
        // while shrinking.
        size_t k = static_cast<size_t>(growing ? rng.below(6) : rng.below(batch));
        std::vector<uint32_t> want = modelSlice(model, 0, k);
        size_t got = list.popFront(out, k);
        std::vector<uint32_t> have(out, out + got);
        ENSURE_MSG(have == want, "popFront(" << k << ") got " << fmt(have) << " want " << fmt(want));
        for (size_t i = 0; i < got; ++i) {
          model.erase(model.begin());
          retire(out[i], true);
        }
      } else {
        // peek at offsets around and past run boundaries.
        size_t offset = static_cast<size_t>(rng.below(model.size() + 70));
        size_t k = static_cast<size_t>(rng.below(batch));
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
        std::string diff = compareAll(list, msgs.table, model);
        ENSURE_MSG(diff.empty(), diff);
      }
    }
    std::string diff = compareAll(list, msgs.table, model);
    ENSURE_MSG(diff.empty(), diff);
    // The walk really went through many runs' worth of entries and back, more than once, and
    // handles came back.
    CHECK_MESSAGE(largest >= 4 * static_cast<size_t>(kRunCapacity), "largest size " << largest);
    CHECK_MESSAGE(cycles >= 2, "grow/shrink cycles " << cycles);
    CHECK_MESSAGE(comebacks >= 20, "handles that came back " << comebacks);
  }
  // The destructor gave every node back.
  CHECK(pool.nodesInUse() == 0);
}

}  // namespace

TEST_CASE("RunSkiplist: seeded random inserts/removes/popFront/peek match an ordered model") {
  for (uint64_t seed = 1; seed <= 12; ++seed) randomWalk(seed, 6000);
}

TEST_CASE("RunSkiplist: FIFO appends keep order and fill whole runs") {
  KeyedMessages msgs;
  RunNodePool pool(&msgs.table);
  RunSkiplist list(&pool, 7);
  Model model;
  const int n = 1000;
  std::vector<uint32_t> handles;
  for (int i = 0; i < n; ++i) {
    // Equal times are common (a batch enqueued at one instant): the sequence orders them.
    uint32_t h = msgs.add(static_cast<double>(i / 10), static_cast<uint64_t>(i + 1));
    handles.push_back(h);
    list.insert(h);
    model.emplace(keyOf(msgs.table, h), h);
    if (i % 37 == 0) REQUIRE(list.checkInvariants());
  }
  CHECK(list.checkInvariants());
  CHECK(compareAll(list, msgs.table, model) == "");
  // Appends only: every run but the last is full.
  CHECK(list.nodeCount() == runsFor(n));
  CHECK(pool.nodesInUse() == runsFor(n));
  uint32_t out[n];
  CHECK(list.popFront(out, n) == static_cast<size_t>(n));
  CHECK(std::vector<uint32_t>(out, out + n) == handles);
  CHECK(list.empty());
  CHECK(list.checkInvariants());
  CHECK(pool.nodesInUse() == 0);
}

TEST_CASE("RunSkiplist: descending inserts (always before the head) split and stay sorted") {
  Fixture f(11);
  uint32_t last = 0;
  for (int i = 0; i < 700; ++i) {
    last = f.add(static_cast<double>(10000 - i), static_cast<uint64_t>(i + 1));
    if (!f.list.checkInvariants()) {
      FAIL_CHECK("invariants broken after " << i);
      break;
    }
  }
  CHECK(f.diff() == "");
  CHECK(f.list.frontHandle() == last);
  // Descending sequences at one time go before the head too.
  for (int i = 0; i < 100; ++i) last = f.add(9000, static_cast<uint64_t>(100000 - i));
  CHECK(f.list.checkInvariants());
  CHECK(f.diff() == "");
  CHECK(f.list.frontHandle() == last);
}

TEST_CASE("RunSkiplist: equal times are ordered by sequence, whatever the insertion order") {
  // Sequences near the top of their 56 bits too: the order must not come from a narrower copy.
  const uint64_t bases[] = {1, Message::kSeqMask - 1000};
  for (uint64_t base : bases) {
    for (int n : {2, kRunCapacity - 1, kRunCapacity, kRunCapacity + 1, 2 * kRunCapacity, 2 * kRunCapacity + 1,
                  3 * kRunCapacity + 8}) {
      CAPTURE(base);
      CAPTURE(n);
      Fixture f(static_cast<uint64_t>(n) + base);
      Rng rng(static_cast<uint64_t>(n));
      // Neighbours at the times just before and after.
      f.add(6, base + 1);
      f.add(8, base);
      std::vector<uint64_t> seqs;
      for (int i = 0; i < n; ++i) seqs.push_back(base + 3 * static_cast<uint64_t>(i) + 2);
      for (size_t i = seqs.size(); i > 1; --i) std::swap(seqs[i - 1], seqs[rng.below(i)]);
      std::vector<uint32_t> at7;
      for (uint64_t s : seqs) {
        at7.push_back(f.add(7, s));
        if (!f.list.checkInvariants()) {
          FAIL_CHECK("invariants broken at seq " << s);
          break;
        }
      }
      CHECK(f.diff() == "");
      // Remove every third entry of time 7, then put new ones of time 7 between the rest.
      for (size_t i = 0; i < at7.size(); i += 3) CHECK(f.remove(at7[i]));
      for (int i = 0; i < n; i += 2) f.add(7, base + 3 * static_cast<uint64_t>(i) + 3);
      CHECK(f.list.checkInvariants());
      CHECK(f.diff() == "");
      CHECK(f.drain() == "");
    }
  }
}

TEST_CASE("RunSkiplist: runs at the capacity boundaries (C - 1, C, C + 1, 2C - 1... entries, C = kRunCapacity)") {
  for (int n : {1, kRunCapacity - 1, kRunCapacity, kRunCapacity + 1, 2 * kRunCapacity - 1, 2 * kRunCapacity,
                2 * kRunCapacity + 1, 3 * kRunCapacity}) {
    CAPTURE(n);
    {
      Fixture f(static_cast<uint64_t>(n));
      f.fill(n);
      CHECK(f.list.nodeCount() == runsFor(n));
      CHECK(f.list.checkInvariants());
      CHECK(f.diff() == "");
      uint32_t out[4 * kRunCapacity];
      for (int offset : {0, 1, kRunCapacity - 1, kRunCapacity, kRunCapacity + 1, 2 * kRunCapacity - 1, 2 * kRunCapacity,
                         2 * kRunCapacity + 1, n - 1, n, n + 1}) {
        for (int k : {1, kRunCapacity - 1, kRunCapacity, kRunCapacity + 1, n}) {
          std::vector<uint32_t> want = modelSlice(f.model, static_cast<size_t>(offset), static_cast<size_t>(k));
          size_t got = f.list.peek(static_cast<size_t>(offset), out, static_cast<size_t>(k));
          CHECK_MESSAGE(std::vector<uint32_t>(out, out + got) == want, "peek(" << offset << "," << k << ")");
        }
      }
    }
    // Pops of one less than, exactly and one more than everything; the list takes appends after.
    for (int k : {n - 1, n, n + 1}) {
      Fixture f(static_cast<uint64_t>(n + k));
      f.fill(n);
      std::vector<uint32_t> want = modelSlice(f.model, 0, static_cast<size_t>(k));
      CHECK(f.pop(static_cast<size_t>(k)) == want);
      CHECK(f.list.checkInvariants());
      CHECK(f.list.size() == static_cast<size_t>(n - static_cast<int>(want.size())));
      f.add(10.0 * n, 100 * static_cast<uint64_t>(n + 1));
      f.add(-1, 1);
      CHECK(f.list.checkInvariants());
      CHECK(f.diff() == "");
    }
    // Each position removed (once; twice is absent), then a new key at its time, a later sequence:
    // the same place.
    for (int i = 0; i < n; ++i) {
      CAPTURE(i);
      Fixture f(static_cast<uint64_t>(n * 100 + i));
      std::vector<uint32_t> h = f.fill(n);
      CHECK(f.remove(h[i]));
      CHECK_FALSE(f.list.remove(h[i]));
      CHECK(f.list.checkInvariants());
      CHECK(f.diff() == "");
      uint32_t back = f.add(10.0 * i, 100 * static_cast<uint64_t>(i + 1) + 1);
      CHECK(f.list.checkInvariants());
      CHECK(f.diff() == "");
      CHECK(f.list.nodeCount() == runsFor(n));
      std::vector<uint32_t> out(n + 1);
      out.resize(f.list.peek(static_cast<size_t>(i), out.data(), 1));
      CHECK(out == std::vector<uint32_t>{back});
    }
    // A new key before each position (and after the last).
    for (int i = 0; i <= n; ++i) {
      CAPTURE(i);
      Fixture f(static_cast<uint64_t>(n * 1000 + i));
      f.fill(n);
      size_t nodesBefore = f.list.nodeCount();
      uint32_t h = f.add(10.0 * i - 5, 7);
      CHECK(f.list.checkInvariants());
      CHECK(f.diff() == "");
      CHECK(f.list.nodeCount() <= nodesBefore + 1);
      uint32_t out[1];
      CHECK(f.list.peek(static_cast<size_t>(i), out, 1) == 1u);
      CHECK(out[0] == h);
    }
  }
}

TEST_CASE("RunSkiplist: a full run splits correctly whatever the insert position") {
  // Several full runs (appends fill each to capacity); then one insert lands at position p of the
  // middle run, for every p: a time between two entries, or the time of entry p with a later or an
  // earlier sequence. The second round has a partly popped head (begin > 0), refilled at the front
  // with equal times and later sequences; the third a middle run whose front left by removals (its
  // own key is stale), refilled the same way.
  for (int variant = 0; variant <= 2; ++variant) {
    for (int how = 0; how <= 2; ++how) {
      for (int p = 0; p <= kRunCapacity; ++p) {
        CAPTURE(variant);
        CAPTURE(how);
        CAPTURE(p);
        Fixture f(static_cast<uint64_t>(p * 31 + 7 + variant * 3 + how));
        const int runs = 3;
        std::vector<uint32_t> h = f.fill(runs * kRunCapacity + 1);
        const int base = kRunCapacity;  // the second run
        if (variant == 1) {
          // Pop the first run and 5 of the second, then refill the gap at the front of the head.
          REQUIRE(f.pop(kRunCapacity + 5).size() == static_cast<size_t>(kRunCapacity + 5));
          for (int i = 0; i < 5; ++i)
            f.add(10.0 * (kRunCapacity + i), 100 * static_cast<uint64_t>(kRunCapacity + i + 1) + 50);
        } else if (variant == 2) {
          for (int i = 0; i < 5; ++i) REQUIRE(f.remove(h[base + i]));
          for (int i = 0; i < 5; ++i) f.add(10.0 * (base + i), 100 * static_cast<uint64_t>(base + i + 1) + 50);
        }
        REQUIRE(f.list.checkInvariants());
        REQUIRE(f.diff() == "");
        size_t nodesBefore = f.list.nodeCount();
        // Around entry base + p of the original numbering (seq 100 (base + p + 1)).
        const double t = 10.0 * (base + p);
        const uint64_t seq = 100 * static_cast<uint64_t>(base + p + 1);
        uint32_t added = how == 0 ? f.add(t - 5, 1) : how == 1 ? f.add(t, seq + 10) : f.add(t, seq - 10);
        CHECK(f.list.checkInvariants());
        CHECK(f.diff() == "");
        CHECK(f.list.nodeCount() <= nodesBefore + 1);
        // Everything still comes out in order, the new entry where its key puts it.
        CHECK(f.model.count(keyOf(f.msgs.table, added)) == 1u);
        CHECK(f.drain() == "");
      }
    }
  }
}

TEST_CASE("RunSkiplist: removals at a node's front leave its key a lower bound; inserts below the first entry") {
  // Runs A B C of full appends; B loses its first three entries by removal, so its own key is
  // that of an entry gone. New keys then land between that key and B's first entry, by time and by
  // sequence at equal times, filling the gap and splitting B; a key at the same time but an earlier
  // sequence than the stale one goes to the end of A (which splits).
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    CAPTURE(seed);
    Fixture f(seed);
    std::vector<uint32_t> h = f.fill(3 * kRunCapacity);
    REQUIRE(f.list.nodeCount() == 3u);
    const int b = kRunCapacity;
    const double tb = 10.0 * b;                              // the time of B's first entry
    const uint64_t sb = 100 * static_cast<uint64_t>(b + 1);  // and its sequence
    for (int i = 0; i < 3; ++i) REQUIRE(f.remove(h[b + i]));
    CHECK(f.list.nodeCount() == 3u);
    // Keys between B's stale own key (tb, sb) and its first entry (tb + 30, ...), into the gap.
    uint32_t g1 = f.add(tb + 25, 1);
    uint32_t g2 = f.add(tb + 5, 2);
    uint32_t g3 = f.add(tb, sb + 1);  // same time, later sequence than the stale key
    CHECK(f.list.checkInvariants());
    CHECK(f.diff() == "");
    CHECK(f.list.nodeCount() == 3u);  // the gap took them
    std::vector<uint32_t> out(3);
    REQUIRE(f.list.peek(static_cast<size_t>(b), out.data(), 3) == 3u);
    CHECK(out == std::vector<uint32_t>{g3, g2, g1});
    // Same time as the first live entry, earlier sequence: before it. B is full again, so it splits.
    uint32_t g4 = f.add(tb + 30, 100 * static_cast<uint64_t>(b + 4) - 1);
    CHECK(f.list.checkInvariants());
    CHECK(f.diff() == "");
    CHECK(f.list.nodeCount() == 4u);
    // Same time as the stale key, earlier sequence: below B's own key, so after A's last entry.
    uint32_t g5 = f.add(tb, sb - 1);
    CHECK(f.list.checkInvariants());
    CHECK(f.diff() == "");
    CHECK(f.list.nodeCount() == 5u);
    REQUIRE(f.list.peek(static_cast<size_t>(b), out.data(), 3) == 3u);
    CHECK(out == std::vector<uint32_t>{g5, g3, g2});
    // The new entries leave again: from the front of B and from the end of A's upper half.
    for (uint32_t g : {g3, g2, g5, g4, g1}) {
      CHECK(f.remove(g));
      CHECK_FALSE(f.list.remove(g));
      CHECK(f.list.checkInvariants());
      CHECK(f.diff() == "");
    }
    // And B's former entries are gone for good: absent, also with the stale key as their key.
    CHECK_FALSE(f.list.remove(h[b]));
    uint32_t copy = f.msgs.add(tb, sb);
    CHECK_FALSE(f.list.remove(copy));
    CHECK(f.diff() == "");
    CHECK(f.drain() == "");
  }
}

TEST_CASE("RunSkiplist: popped handles come back (same key) before and into the head run") {
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    CAPTURE(seed);
    Fixture f(seed);
    Rng rng(seed);
    f.fill(3 * kRunCapacity + 5);
    // A few pops: the head's own key is the first popped key. They come back in reverse order (each
    // at the front), one equal to that key, and new keys go between.
    std::vector<uint32_t> popped = f.pop(5);
    for (size_t i = popped.size(); i > 0; --i) {
      f.put(popped[i - 1]);
      CHECK(f.list.checkInvariants());
      CHECK(f.diff() == "");
      CHECK(f.list.frontHandle() == popped[i - 1]);
    }
    CHECK(f.list.nodeCount() == 4u);
    popped = f.pop(3);
    f.add(5, 50);  // between the stale head key (0, 100) and the first entry (30, 400)
    f.add(0, 150);
    CHECK(f.list.checkInvariants());
    CHECK(f.diff() == "");
    // More than a run: the head node goes (and the next loses some), then everything popped comes
    // back in random order, below the new head's key.
    std::vector<uint32_t> more = f.pop(kRunCapacity + 3);
    popped.insert(popped.end(), more.begin(), more.end());
    for (size_t i = popped.size(); i > 1; --i) std::swap(popped[i - 1], popped[rng.below(i)]);
    for (uint32_t h : popped) {
      f.put(h);
      if (!f.list.checkInvariants() || f.diff() != "") {
        FAIL_CHECK("after handle " << h << " came back: " << f.diff());
        break;
      }
    }
    CHECK(f.drain() == "");
  }
}

TEST_CASE("RunSkiplist: removals that empty a node in the middle, at the head and at the tail") {
  // Four full runs; one of them loses every entry (front first, back first, or from the middle
  // outwards). Its neighbours are full, so nothing merges: the node goes with its last entry.
  for (size_t victim : {size_t{0}, size_t{1}, size_t{2}, size_t{3}}) {
    for (int order = 0; order < 3; ++order) {
      for (uint64_t seed = 1; seed <= 6; ++seed) {
        CAPTURE(victim);
        CAPTURE(order);
        CAPTURE(seed);
        LaidOut s(seed * 7 + victim, 4 * kRunCapacity);
        for (int left = kRunCapacity; left > 0; --left) {
          size_t i = order == 0 ? 0 : order == 1 ? static_cast<size_t>(left - 1) : static_cast<size_t>(left / 2);
          s.removeAt(victim, i);
          CHECK(s.f.diff() == "");
        }
        CHECK(s.f.list.nodeCount() == 3u);
        CHECK(s.f.pool.nodesInUse() == 3u);
        // The list goes on: an append (onto the tail, whichever node it is now), a key before the
        // head, and one where the gone node was.
        s.f.add(1e6, 1);
        s.f.add(-1e6, 2);
        s.f.add(10.0 * (static_cast<double>(victim) * kRunCapacity + 3) + 1, 3);
        CHECK(s.f.list.checkInvariants());
        CHECK(s.f.diff() == "");
        CHECK(s.f.drain() == "");
      }
    }
  }
}

TEST_CASE("RunSkiplist: a thin run takes in a small next run (merge): a stale-keyed run, the tail, the head") {
  // By RunSkiplist::remove's rule, with C = kRunCapacity: a removal that leaves a run with fewer
  // than C / 4 entries makes it take in the next run when both together hold at most 3C / 4.
  const size_t thin = kRunCapacity / 4;      // a run below this is thin
  const size_t most = kRunCapacity * 3 / 4;  // the most a merged run may hold
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    CAPTURE(seed);
    LaidOut s(seed, 4 * kRunCapacity);         // runs A B C D, full
    const size_t keep = kRunCapacity * 3 / 8;  // half of what a merged run may hold
    // C loses its front down to `keep` entries (its own key goes stale); it is not thin: no merge.
    while (s.runSize(2) > keep && s.removeAt(2, 0)) {
    }
    CHECK(s.f.list.nodeCount() == 4u);
    // B loses entries from its back. Once thin, C fits with it: B takes C in and C's node goes.
    while (s.layout.runs.size() == 4 && s.removeAt(1, s.runSize(1) - 1)) {
    }
    CHECK(s.f.list.nodeCount() == 3u);
    CHECK(s.runSize(1) == thin - 1 + keep);
    CHECK(s.f.diff() == "");
    // D (the tail) loses middle entries down to 5 (thin, but it has no next run); B loses its front
    // until it takes D in and is the tail itself; an append then goes onto B.
    while (s.runSize(2) > 5 && s.removeAt(2, 2)) {
    }
    CHECK(s.f.list.nodeCount() == 3u);
    while (s.layout.runs.size() == 3 && s.removeAt(1, 0)) {
    }
    CHECK(s.f.list.nodeCount() == 2u);
    CHECK(s.runSize(1) == thin - 1 + 5);
    s.append(1e6, 1);
    CHECK(s.layout.runs.size() == 2u);
    // The tail grows by appends to 3/4 of a node and 2 more; A (the head) loses its back down to 2:
    // thin all the way from C / 4 - 1, but with the tail too big to merge.
    while (s.runSize(1) < most + 2) {
      size_t at = s.runSize(1);
      s.append(1e6 + static_cast<double>(at), 10 + at);
    }
    while (s.runSize(0) > 2 && s.removeAt(0, s.runSize(0) - 1)) {
    }
    CHECK(s.f.list.nodeCount() == 2u);
    CHECK(s.runSize(0) == 2u);
    // The tail (not thin) loses middle entries down to 3/4 of a node less one; A's next removal
    // leaves it with one entry, which with the tail's is exactly 3/4 of a node: A takes it in.
    while (s.runSize(1) > most - 1 && s.removeAt(1, 4)) {
    }
    CHECK(s.f.list.nodeCount() == 2u);
    s.removeAt(0, 0);
    CHECK(s.f.list.nodeCount() == 1u);
    CHECK(s.runSize(0) == most);
    CHECK(s.f.diff() == "");
    s.append(2e6, 3);
    CHECK(s.f.diff() == "");
    CHECK(s.f.drain() == "");
  }
}

TEST_CASE("RunSkiplist: removal of absent handles returns false and changes nothing") {
  Fixture f(3);
  uint32_t stranger = f.msgs.add(0, 0);
  CHECK_FALSE(f.list.remove(stranger));
  CHECK(f.list.checkInvariants());
  std::vector<uint32_t> h;
  const int n = std::max(300, 4 * kRunCapacity);
  for (int i = 0; i < n; ++i) h.push_back(f.add(static_cast<double>(i * 2), static_cast<uint64_t>(i + 1)));
  // Records not in the list: before the head, between two keys, after the tail, same time other
  // sequence, same sequence other time, and the very keys of present entries (the head, the first
  // of the second run, the tail).
  const double last = 2.0 * (n - 1);
  const double absent[][2] = {{-1, 1},
                              {-1, 0},
                              {3, 2},
                              {last + 402, n + 1.0},
                              {2, 1},
                              {2, 3},
                              {2, n + 702.0},
                              {4.5, 3},
                              {last, 1},
                              {0, 1},
                              {2.0 * kRunCapacity, kRunCapacity + 1.0},
                              {last, 1.0 * n}};
  for (const auto& k : absent) {
    uint32_t a = f.msgs.add(k[0], static_cast<uint64_t>(k[1]));
    CHECK_FALSE(f.list.remove(a));
    CHECK(f.list.checkInvariants());
    f.msgs.table.free(a);
  }
  CHECK(f.diff() == "");
  // A handle removed once is absent the second time: inside a run, the head, and the first entry
  // of a later run (whose node keeps that key as its own: a record with the key is absent too).
  for (int i : {100, 0, 2 * kRunCapacity}) {
    CAPTURE(i);
    CHECK(f.remove(h[i]));
    CHECK_FALSE(f.list.remove(h[i]));
    uint32_t copy = f.msgs.add(static_cast<double>(i * 2), static_cast<uint64_t>(i + 1));
    CHECK_FALSE(f.list.remove(copy));
    CHECK(f.list.checkInvariants());
    CHECK(f.diff() == "");
  }
}

TEST_CASE("RunSkiplist: popFront across node boundaries") {
  Fixture f(5);
  const int n = 5 * kRunCapacity + 17;
  std::vector<uint32_t> h = f.fill(n);
  uint32_t out[n + 10];
  size_t at = 0;
  // Pops that end just before, exactly at and just after run boundaries.
  const size_t chunks[] = {0,
                           1,
                           static_cast<size_t>(kRunCapacity) - 2,
                           1,
                           static_cast<size_t>(kRunCapacity) + 1,
                           static_cast<size_t>(2 * kRunCapacity) - 1,
                           3,
                           200,
                           50};
  for (size_t k : chunks) {
    CAPTURE(k);
    size_t want = std::min(k, f.list.size());
    size_t got = f.list.popFront(out, k);
    CHECK(got == want);
    CHECK(std::vector<uint32_t>(out, out + got) == std::vector<uint32_t>(h.begin() + at, h.begin() + at + got));
    at += got;
    CHECK(f.list.checkInvariants());
    CHECK(f.list.size() == static_cast<size_t>(n) - at);
  }
  CHECK(f.list.empty());
  CHECK(f.list.popFront(out, 5) == 0u);
  CHECK(f.pool.nodesInUse() == 0u);
  // The list is usable again after it emptied, also for a handle popped from it.
  f.model.clear();
  f.put(h[7]);
  CHECK(f.list.frontHandle() == h[7]);
  uint32_t n42 = f.add(1, 1000);
  CHECK(f.list.frontHandle() == n42);
  CHECK(f.list.checkInvariants());
  CHECK(f.diff() == "");
}

TEST_CASE("RunSkiplist: a partly popped head run takes inserts at the front and in the middle") {
  Fixture f(9);
  uint64_t seq = 1;
  for (int i = 0; i < 3 * kRunCapacity; ++i) f.add(10.0 * i, seq++);
  // The first run and a quarter of the second: the head run has room at its front.
  const int popped = kRunCapacity + kRunCapacity / 4;
  REQUIRE(f.pop(popped).size() == static_cast<size_t>(popped));
  const int t0 = 10 * popped;  // the head's first time
  // Fill the gap the pops left at the front of the head run (times below the head's, each one a
  // new base), then overflow that run, with times up to past the tail.
  for (int i = 0; i < 6 * kRunCapacity; ++i) {
    f.add(static_cast<double>(t0 + (i % 2 == 0 ? -(i + 1) : i * 3 % (25 * kRunCapacity))), seq++);
    if (!f.list.checkInvariants()) {
      FAIL_CHECK("invariants broken at insert " << i);
      break;
    }
  }
  CHECK(f.diff() == "");
}

TEST_CASE("RunSkiplist: peek with offsets") {
  Fixture f(13);
  const int n = 4 * kRunCapacity + 5;
  std::vector<uint32_t> h = f.fill(n);
  // Thin some runs so that runs have different lengths and non-zero begins.
  f.pop(3);
  for (int i = 2 * kRunCapacity + 3; i < 3 * kRunCapacity + 5; ++i) CHECK(f.remove(h[i]));
  for (int i = kRunCapacity; i < kRunCapacity + 4; ++i) CHECK(f.remove(h[i]));
  REQUIRE(f.list.checkInvariants());
  const size_t c = kRunCapacity;
  const size_t offsets[] = {0,
                            1,
                            c - 4,
                            c - 3,
                            c - 2,
                            c - 1,
                            c,
                            c + 1,
                            2 * c - 1,
                            2 * c,
                            2 * c + 1,
                            3 * c,
                            f.model.size() - 1,
                            f.model.size(),
                            f.model.size() + 3,
                            100000};
  const size_t ks[] = {0, 1, 2, c - 1, c, c + 1, 300};
  uint32_t out[400];
  for (size_t offset : offsets) {
    for (size_t k : ks) {
      std::vector<uint32_t> want = modelSlice(f.model, offset, k);
      size_t got = f.list.peek(offset, out, k);
      std::vector<uint32_t> have(out, out + got);
      CHECK_MESSAGE(have == want, "peek(" << offset << "," << k << ") got " << fmt(have) << " want " << fmt(want));
    }
  }
  // peek does not consume.
  CHECK(f.diff() == "");
}

TEST_CASE("RunSkiplist: lists sharing one pool and one table give every node back") {
  KeyedMessages msgs;
  RunNodePool pool(&msgs.table);
  // The same work twice: the same seeds and keys give the same node heights, so the second time
  // every node comes from the pool's free lists (of all three size classes) and nothing is added.
  auto work = [&]() {
    RunSkiplist a(&pool, 1), b(&pool, 2), c(&pool, 3);
    Rng rng(99);
    Model ma, mb, mc;
    RunSkiplist* lists[] = {&a, &b, &c};
    Model* models[] = {&ma, &mb, &mc};
    // The amounts grow with the node capacity, so that each list has many nodes whatever it is.
    const int per = kRunCapacity / 16 > 1 ? kRunCapacity / 16 : 1;
    for (int i = 0; i < 3000 * per; ++i) {
      int w = static_cast<int>(rng.below(3));
      uint32_t h =
          msgs.add(static_cast<double>(rng.below(500 * static_cast<uint64_t>(per))), static_cast<uint64_t>(i + 1));
      lists[w]->insert(h);
      models[w]->emplace(keyOf(msgs.table, h), h);
      if (rng.chance(0.01)) {
        std::vector<uint32_t> out(40);
        size_t got = lists[w]->popFront(out.data(), out.size());
        for (size_t j = 0; j < got; ++j) models[w]->erase(models[w]->begin());
      }
    }
    for (int w = 0; w < 3; ++w) {
      CHECK(lists[w]->checkInvariants());
      CHECK(compareAll(*lists[w], msgs.table, *models[w]) == "");
    }
    for (int w = 0; w < 3; ++w) CHECK(lists[w]->nodeCount() > 20u);
    CHECK(pool.nodesInUse() == a.nodeCount() + b.nodeCount() + c.nodeCount());
    // Empty one list completely: its nodes return to the pool.
    std::vector<uint32_t> out(a.size() + 1);
    a.popFront(out.data(), out.size());
    CHECK(a.empty());
    CHECK(pool.nodesInUse() == b.nodeCount() + c.nodeCount());
  };
  work();
  CHECK(pool.nodesInUse() == 0u);
  size_t reserved = pool.bytesReserved();
  CHECK(reserved > 0u);
  work();
  CHECK(pool.nodesInUse() == 0u);
  CHECK(pool.bytesReserved() == reserved);
}

// When an entry leaves the front of a node other than the head, that node keeps the entry's key as
// its own. The same handle (same key) inserted again must go to the front of that node, not to the
// end of the node before (whose last key would then equal the next node's own key).
TEST_CASE("RunSkiplist: a handle removed from the front of a later node can go back in") {
  // With room in the node before (which must not take it) and with that node full (which must not
  // split for it): either way the key goes back to the front of its own node.
  for (bool roomBefore : {true, false}) {
    CAPTURE(roomBefore);
    Fixture f(1);
    std::vector<uint32_t> h = f.fill(2 * kRunCapacity);
    if (roomBefore) REQUIRE(f.remove(h[3]));
    REQUIRE(f.remove(h[kRunCapacity]));  // the second run's first entry: its node keeps the key
    f.put(h[kRunCapacity]);              // the same key back
    CHECK(f.diff() == "");
    CHECK(f.list.checkInvariants());
    CHECK(f.list.nodeCount() == 2u);
    // Again, and with a key just before it (same time, one sequence less): that one goes to the
    // end of the first run (or splits it when full).
    REQUIRE(f.remove(h[kRunCapacity]));
    f.put(h[kRunCapacity]);
    f.add(10.0 * kRunCapacity, 100 * static_cast<uint64_t>(kRunCapacity + 1) - 1);
    CHECK(f.check() == "");
    CHECK(f.list.nodeCount() == (roomBefore ? 2u : 3u));
    CHECK(f.drain() == "");
  }
}

// ---------------------------------------------------------------------------------------------
// Time summaries. A node keeps for each entry sums[i] = floor((t_i - base) * scale): base the time
// of the run's first entry when the node was made (or a lower time that came in at the head run's
// front), scale a power of two, 2^16 a millisecond for a new run and halved, every summary with
// it, as the run's span grows. A search inside a run compares summaries and reads records only
// among equal ones; a 'newest' key (a sequence above every one the list has had) goes after the
// entries of its time without reading them when the run is exact (whole-millisecond times, scale
// at least 1). checkInvariants verifies each summary, the base, the scale and the exact flag
// against the records: the cases below run it after every step, with the comparison to the model.
// Their times stay within +-kMaxTime, the range Core takes, which keeps the summary arithmetic far
// from overflow.

namespace {

std::string timeStr(double t) {
  std::ostringstream os;
  os.precision(17);
  os << t;
  return os.str();
}

// ENSURE that the fixture is sound and matches its model after `what`.
#define ENSURE_SOUND(f, what)                                   \
  do {                                                          \
    const std::string sound_err_ = (f).check();                 \
    ENSURE_MSG(sound_err_.empty(), what << ": " << sound_err_); \
  } while (0)

// ENSURE that a string-valued check comes back empty (else it is the message).
#define ENSURE_EMPTY(expr)                      \
  do {                                          \
    const std::string empty_err_ = (expr);      \
    ENSURE_MSG(empty_err_.empty(), empty_err_); \
  } while (0)

// A random entry of a model that is not empty.
Model::const_iterator anyEntry(const Model& m, Rng& rng) {
  return std::next(m.begin(), static_cast<std::ptrdiff_t>(rng.below(m.size())));
}

// Halfway between a random entry's time and the next entry's (its own time when it is the last).
double halfwayAfter(const Model& m, Rng& rng) {
  auto it = anyEntry(m, rng);
  auto nx = std::next(it);
  double a = it->first.first;
  double b = nx == m.end() ? a : nx->first.first;
  return a + (b - a) / 2;
}

// t, or the nearest end of the time range Core takes.
double inRange(double t) { return std::min(kMaxTime, std::max(-kMaxTime, t)); }

// 10^e ms for e from -9 to 15, times a random factor in (0, 1], whole half of the time (and then
// at least 1).
double anyMagnitude(Rng& rng) {
  double d = std::pow(10.0, static_cast<double>(rng.range(-9, 15))) * static_cast<double>(rng.range(1, 1000)) / 1000;
  return rng.chance(0.5) ? std::max(1.0, std::floor(d)) : d;
}

// Steps shared by the summary cases: each changes the fixture and says what it did, for the message
// of the check that follows. `kept` holds handles that left with their keys, to come back.

std::string keyStr(const Fixture& f, uint32_t h) {
  RunKey k = f.msgs.table.keyOf(h);
  return "(" + timeStr(k.t) + "," + std::to_string(k.seq) + ")";
}

// A fresh key (after the entries of its time) or an old one (before them) at time t.
std::string addKey(Fixture& f, double t, bool fresh) {
  if (fresh)
    f.addNew(t);
  else
    f.addOld(t);
  return std::string(fresh ? "fresh" : "old") + " key at " + timeStr(t);
}

// A random kept handle back in the list: a sequence below the list's highest, not a newest key.
std::string putBack(Fixture& f, Rng& rng, std::vector<uint32_t>& kept) {
  size_t i = static_cast<size_t>(rng.below(kept.size()));
  uint32_t h = kept[i];
  kept[i] = kept.back();
  kept.pop_back();
  f.put(h);
  return "handle " + std::to_string(h) + " back, key " + keyStr(f, h);
}

// Removes the entry at position i of the model; its handle is kept.
std::string removeKept(Fixture& f, size_t i, std::vector<uint32_t>& kept) {
  uint32_t h = std::next(f.model.begin(), static_cast<std::ptrdiff_t>(i))->second;
  std::string what = "removal of " + keyStr(f, h);
  CHECK_MESSAGE(f.remove(h), what);
  kept.push_back(h);
  return what;
}

// Pops k entries; their handles are kept.
std::string popKept(Fixture& f, size_t k, std::vector<uint32_t>& kept) {
  std::vector<uint32_t> got = f.pop(k);
  kept.insert(kept.end(), got.begin(), got.end());
  return "pop of " + std::to_string(got.size());
}

// Keys inside the list's span, each followed by check(): a fresh one halfway between a random entry
// and the next, then an old and a fresh one at a random entry's time. Empty when all were sound.
std::string keysInside(Fixture& f, Rng& rng) {
  const double at = anyEntry(f.model, rng)->first.first;
  for (int i = 0; i < 3; ++i) {
    std::string what = i == 0 ? addKey(f, halfwayAfter(f.model, rng), true) : addKey(f, at, i == 2);
    std::string err = f.check();
    if (!err.empty()) return what + ": " + err;
  }
  return "";
}

// Random steps on a fixture whose keys come from addNew / addOld, each followed by check(): a fresh
// key at a present entry's time (after the entries of that time) or halfway to the next time, an
// old key at a present time (before them), a key below the first entry (under the head run's base
// or between it and the first entry), a removal or a few pops (the handles kept), and a kept
// handle put back (an older sequence among equal times: not a newest key). New keys only while the
// list holds fewer than `most`. Empty when every step was sound; else the first failure.
std::string stir(Fixture& f, Rng& rng, int steps, size_t most, std::vector<uint32_t>& kept) {
  for (int step = 0; step < steps; ++step) {
    const uint64_t r = rng.below(100);
    const bool room = f.model.size() < most;
    std::string what;
    if (!kept.empty() && (r < 20 || f.model.empty())) {
      what = putBack(f, rng, kept);
    } else if (f.model.empty()) {
      return "";
    } else if (room && r < 50) {
      what = addKey(f, rng.chance(0.5) ? anyEntry(f.model, rng)->first.first : halfwayAfter(f.model, rng), true);
    } else if (room && r < 62) {
      what = addKey(f, anyEntry(f.model, rng)->first.first, false);
    } else if (room && r < 67) {
      what = addKey(f, inRange(f.model.begin()->first.first - anyMagnitude(rng)), rng.chance(0.5)) +
             ", below the first entry";
    } else if (r < 93) {
      what = removeKept(f, static_cast<size_t>(rng.below(f.model.size())), kept);
    } else {
      what = popKept(f, static_cast<size_t>(rng.range(1, 4)), kept);
    }
    std::string err = f.check();
    if (!err.empty()) return "step " + std::to_string(step) + " (" + what + "): " + err;
  }
  return "";
}

// Appends onto the tail at base + each offset (increasing), so the tail run's span grows and its
// scale halves, once or many times in one step; after each append, keys inside the span, placed by
// the summaries at the new scale. Then random steps, and the entries leave in random order (thin
// runs merge, entries of runs with other bases and scales).
void spanGrows(double base, const std::vector<double>& offsets, uint64_t seed) {
  Fixture f(seed);
  Rng rng(seed);
  for (double d : offsets) {
    const double t = base + d;
    f.addNew(t);
    ENSURE_SOUND(f, "append at " << timeStr(t));
    ENSURE_EMPTY(keysInside(f, rng));
  }
  std::vector<uint32_t> kept;
  ENSURE_EMPTY(stir(f, rng, 150, f.model.size() + 20, kept));
  while (!f.model.empty()) {
    uint32_t h = anyEntry(f.model, rng)->second;
    ENSURE(f.remove(h));
    ENSURE_SOUND(f, "removal of " << h);
  }
  ENSURE(f.pool.nodesInUse() == 0u);
}

// The head run (C entries from t0, `step` apart, and 5 more in a second run) takes keys below its
// base, each further down by the next of `downs`: each is a new base, the scale is back at 2^16 a
// ms and the summaries are taken again from the records. A full head run splits first (its lower
// half moves its base); else 5 pops leave room at its front, and the popped handles come back
// between the steps (above the base). Keys land inside after each step; then random steps.
void belowTheBase(double t0, double step, bool full, const std::vector<double>& downs, uint64_t seed) {
  Fixture f(seed);
  Rng rng(seed);
  for (int i = 0; i < kRunCapacity + 5; ++i) f.addNew(t0 + step * i);
  std::vector<uint32_t> kept;
  if (!full) kept = f.pop(5);
  ENSURE_SOUND(f, "setup");
  double low = t0;
  for (double d : downs) {
    low -= d;
    if (rng.chance(0.5))
      f.addNew(low);
    else
      f.addOld(low);
    ENSURE_SOUND(f, "key at " << timeStr(low) << ", below the base");
    if (!kept.empty()) {
      f.put(kept.back());
      kept.pop_back();
      ENSURE_SOUND(f, "popped handle back");
    }
    ENSURE_EMPTY(keysInside(f, rng));
  }
  ENSURE_EMPTY(stir(f, rng, 250, 3 * kRunCapacity, kept));
  ENSURE_EMPTY(f.drain());
}

// Runs A (full) and B (half a node) by appends with times ta(i) and tb(j), so each has its own base
// and scale. With `middle` a full run C follows B (B first loses its back down to half a node, not
// thin: no merge). A loses entries from its back (how 0), its front (1) or its middle (2) until it
// is thin and takes B in, whose entries then get summaries against A's base and scale. Then
// random steps among both runs' entries (the handles that left come back), and growth until the
// merged run splits.
template <class TA, class TB>
void mergeRuns(TA ta, TB tb, int how, bool middle, uint64_t seed) {
  LaidOut s(seed, 0);
  const size_t half = kRunCapacity / 2;
  for (int i = 0; i < kRunCapacity; ++i) s.append(ta(i), s.f.freshSeq += 4);
  for (int j = 0; j < (middle ? 2 * kRunCapacity : kRunCapacity / 2); ++j) s.append(tb(j), s.f.freshSeq += 4);
  std::vector<uint32_t> kept;
  while (middle && s.runSize(1) > half) {
    kept.push_back(s.layout.runs[1].back());
    if (!s.removeAt(1, s.runSize(1) - 1)) return;
  }
  ENSURE_SOUND(s.f, "setup");
  const size_t runs = s.layout.runs.size();
  ENSURE(runs == (middle ? 3u : 2u));
  while (s.layout.runs.size() == runs) {
    size_t n = s.runSize(0);
    size_t i = how == 0 ? n - 1 : how == 1 ? 0 : n / 2;
    kept.push_back(s.layout.runs[0][i]);
    if (!s.removeAt(0, i)) return;
    ENSURE_SOUND(s.f, "removal from A, " << n - 1 << " left");
  }
  // A took B in when it first became thin.
  ENSURE(s.f.list.nodeCount() == runs - 1);
  ENSURE(s.runSize(0) == static_cast<size_t>(kRunCapacity / 4 - 1) + half);
  Rng rng(seed);
  ENSURE_EMPTY(stir(s.f, rng, 300, 3 * kRunCapacity, kept));
  ENSURE_EMPTY(s.f.drain());
}

// A full run (appends at t(0) .. t(C - 1)) and 3 entries after it; one key then lands at position
// p of the full run (an old key at t(p): before it; or a fresh one halfway between t(p - 1) and
// t(p), below the base for p = 0), so the run splits there and the new node takes the run's base,
// scale and summaries. Then random steps in both halves, and appends onto the tail far away.
template <class T>
void splitRun(T t, int p, bool fresh, uint64_t seed) {
  Fixture f(seed);
  Rng rng(seed);
  for (int i = 0; i < kRunCapacity + 3; ++i) f.addNew(t(i));
  ENSURE(f.list.nodeCount() == 2u);
  double at;
  if (fresh)
    at = p == 0 ? t(0) - 0.75 : t(p - 1) + (t(p) - t(p - 1)) / 2;
  else
    at = t(p);
  uint32_t h = fresh ? f.addNew(at) : f.addOld(at);
  ENSURE_SOUND(f, "key at " << timeStr(at));
  ENSURE(f.list.nodeCount() == 3u);
  uint32_t out = 0;
  ENSURE(f.list.peek(static_cast<size_t>(p), &out, 1) == 1u);
  ENSURE(out == h);
  std::vector<uint32_t> kept;
  ENSURE_EMPTY(stir(f, rng, 40, 3 * kRunCapacity, kept));
  const double last = f.model.rbegin()->first.first;
  for (double d : {0.5, 1e3, 1e9, 1e15}) {
    f.addNew(last + d);
    ENSURE_SOUND(f, "append at " << timeStr(last + d));
  }
}

// Many entries at one time T (a node and a half, so over more than one run) between neighbours
// before T and T + 1, T + 2, T + 3 after it. variant 0: whole times, exact runs (a newest key goes
// after the entries of its time without reading them); 1: the neighbour before is at T - 0.5 and
// one after at T + 2^-20 (tied with T at 2^16 a ms), so the runs are inexact; 2: an entry at
// T + 1e6 makes the last run's scale coarse, so that T .. T + 3 share a summary. Random steps:
// newest and old keys at those times, keys between two present sequences at T, removals and pops
// whose handles come back (older sequences among equal times).
void equalTimes(int variant, uint64_t seed) {
  Fixture f(seed);
  Rng rng(seed);
  const double T = 5000;
  std::vector<double> times{variant == 1 ? T - 0.5 : T - 1, T};
  f.addNew(times[0]);
  for (int i = 0; i < kRunCapacity * 3 / 2; ++i) f.addNew(T);
  if (variant == 1) {
    times.push_back(T + 0x1p-20);
    f.addNew(T + 0x1p-20);
  }
  for (double d : {1.0, 2.0, 3.0}) {
    times.push_back(T + d);
    f.addNew(T + d);
  }
  if (variant == 2) f.addNew(T + 1e6);
  ENSURE_SOUND(f, "setup");
  std::set<uint64_t> between;  // sequences used by keys between two present ones
  std::vector<uint32_t> kept;
  for (int step = 0; step < 500; ++step) {
    const double t = times[rng.below(times.size())];
    const uint64_t r = rng.below(100);
    const bool room = f.model.size() < static_cast<size_t>(4 * kRunCapacity);
    std::string what;
    if (room && r < 35) {
      what = addKey(f, t, r < 25);
    } else if (room && r < 45) {
      // A sequence just above a present fresh one at T (fresh ones are 4 apart from 2^40; not
      // newest unless that one is the last).
      const uint64_t first = uint64_t{1} << 40;
      std::vector<uint64_t> seqs;
      for (auto it = f.model.lower_bound({T, first}); it != f.model.end() && it->first.first == T; ++it)
        if ((it->first.second - first) % 4 == 0) seqs.push_back(it->first.second);
      if (seqs.empty()) continue;
      uint64_t seq = seqs[rng.below(seqs.size())] + static_cast<uint64_t>(rng.range(1, 3));
      if (!between.insert(seq).second) continue;
      f.add(T, seq);
      what = "key at T, sequence " + std::to_string(seq);
    } else if (!kept.empty() && r < 65) {
      what = putBack(f, rng, kept);
    } else if (!f.model.empty() && r < 95) {
      what = removeKept(f, static_cast<size_t>(rng.below(f.model.size())), kept);
    } else {
      what = popKept(f, static_cast<size_t>(rng.range(1, 3)), kept);
    }
    ENSURE_SOUND(f, "step " << step << ": " << what);
  }
  ENSURE_EMPTY(f.drain());
}

// Times that differ but share a summary, inserted in random order with fresh and old sequences,
// removed, popped and put back. variant 0: at the finest scale, 2^-20 ms apart (16 times to a
// summary step); 1: a run spanning 1e9 ms (steps of 2^14 ms) with clusters of whole and tenth
// milliseconds; 2: a day at the epoch's scale (steps of 2^11 ms) with fractional times. In 1 and
// 2 the first two entries bound every later time, so every node descends from the first run by
// splits (and merges) and keeps its coarse scale.
void tiedTimes(int variant, uint64_t seed) {
  Fixture f(seed);
  Rng rng(seed);
  auto timeOf = [&]() -> double {
    if (variant == 0) return 1 + static_cast<double>(rng.below(256)) * 0x1p-20;
    double step = rng.chance(0.5) ? 1 : 0.1;
    if (variant == 1) return static_cast<double>(rng.range(1, 8)) * 16384 + static_cast<double>(rng.below(100)) * step;
    return 1.7e12 + static_cast<double>(rng.range(1, 6)) * 1e7 + static_cast<double>(rng.below(3000)) * step * 0.7;
  };
  if (variant == 1) {
    f.addNew(0);
    f.addNew(1e9);
  } else if (variant == 2) {
    f.addNew(1.7e12);
    f.addNew(1.7e12 + 8.64e7);
  }
  std::vector<uint32_t> kept;
  for (int step = 0; step < 700; ++step) {
    const uint64_t r = rng.below(100);
    const bool room = f.model.size() < static_cast<size_t>(4 * kRunCapacity);
    std::string what;
    if (room && r < 55) {
      what = addKey(f, rng.chance(0.3) && !f.model.empty() ? anyEntry(f.model, rng)->first.first : timeOf(),
                    rng.chance(0.6));
    } else if (!kept.empty() && r < 70) {
      what = putBack(f, rng, kept);
    } else if (f.model.size() > 2 && r < 96) {
      // Not the bounding entries of variants 1 and 2 (the first and the last).
      what = removeKept(f, static_cast<size_t>(1 + rng.below(f.model.size() - 2)), kept);
    } else if (variant == 0) {
      what = popKept(f, static_cast<size_t>(rng.range(1, 3)), kept);
    } else {
      continue;
    }
    ENSURE_SOUND(f, "step " << step << ": " << what);
  }
  ENSURE_EMPTY(f.drain());
}

// A seeded walk over keys of every scale: near a random entry (the same time, or 10^e ms either
// side, e from -9 to 15, whole or not), below the head, past the tail, or anywhere around the
// epoch, 0 and +-1e15; fresh and old sequences; removals, pops and handles put back; the size
// swings between low and high water marks. check() after every step.
void summaryWalk(uint64_t seed, int ops) {
  Fixture f(seed);
  Rng rng(seed);
  std::vector<uint32_t> kept;
  const double anchors[] = {0, 1.7e12, -1e15, 1e15};
  bool growing = true;
  size_t high = static_cast<size_t>(rng.range(2 * kRunCapacity, 6 * kRunCapacity));
  size_t largest = 0, cycles = 0;
  for (int step = 0; step < ops; ++step) {
    largest = std::max(largest, f.model.size());
    if (growing && f.model.size() >= high) growing = false;
    if (!growing && f.model.size() <= static_cast<size_t>(rng.range(0, kRunCapacity / 2))) {
      growing = true;
      ++cycles;
      high = static_cast<size_t>(rng.range(2 * kRunCapacity, 6 * kRunCapacity));
    }
    const uint64_t r = rng.below(100);
    std::string what;
    if (r < (growing ? 65u : 20u) || f.model.empty()) {
      double t;
      const uint64_t mode = f.model.empty() ? 4 : rng.below(5);
      if (mode == 0)
        t = anyEntry(f.model, rng)->first.first;
      else if (mode == 1)
        t = anyEntry(f.model, rng)->first.first + (rng.chance(0.5) ? 1 : -1) * anyMagnitude(rng);
      else if (mode == 2)
        t = f.model.begin()->first.first - anyMagnitude(rng);
      else if (mode == 3)
        t = f.model.rbegin()->first.first + anyMagnitude(rng);
      else
        t = anchors[rng.below(4)] + (rng.chance(0.5) ? 1 : -1) * anyMagnitude(rng);
      what = addKey(f, inRange(t), rng.chance(0.7));
    } else if (!kept.empty() && r < 75) {
      what = putBack(f, rng, kept);
    } else if (r < 93) {
      what = removeKept(f, static_cast<size_t>(rng.below(f.model.size())), kept);
    } else {
      // A few while growing; up to a run and more while shrinking.
      what = popKept(f, static_cast<size_t>(growing ? rng.range(1, 3) : rng.below(kRunCapacity + 10)), kept);
    }
    ENSURE_SOUND(f, "seed " << seed << " step " << step << ": " << what);
  }
  ENSURE_EMPTY(f.drain());
  // The walk went through several runs' worth of entries and back, more than once.
  CHECK_MESSAGE(largest >= 2 * static_cast<size_t>(kRunCapacity), "largest size " << largest);
  CHECK_MESSAGE(cycles >= 2, "grow/shrink cycles " << cycles);
}

// Variants 0, 1 and 2 of a case, four seeds each.
void eachVariant(void (*run)(int variant, uint64_t seed)) {
  for (int variant = 0; variant < 3; ++variant) {
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      CAPTURE(variant);
      CAPTURE(seed);
      run(variant, seed * 10 + static_cast<uint64_t>(variant));
    }
  }
}

}  // namespace

TEST_CASE("RunSkiplist summaries: a run's span grows from below a microsecond to days, years and 2e15 ms") {
  // Doubling spans: past 1 ms, every append halves the scale once.
  const std::vector<double> doubling = [] {
    std::vector<double> v{0};
    for (int e = -24; e <= 51; ++e) v.push_back(std::ldexp(1.0, e));
    return v;
  }();
  const std::vector<double> decades{0,     1e-9,  0x1p-17, 1e-5,  0.001,  0.1,     0.3,       1,    1.5,  59.9, 1000,
                                    65535, 65536, 65537,   3.6e6, 8.64e7, 6.048e8, 3.1536e10, 1e12, 1e15, 2e15};
  // Whole milliseconds: the run is exact until its scale drops below 1.
  const std::vector<double> whole{0, 1, 2, 1000, 32767, 32768, 65535, 65536, 1e6, 8.64e7, 1e12, 2e15};
  // From 2^16 a ms to 2^-35 in one append (a shift by 51: every earlier summary becomes 0).
  const std::vector<double> sudden{0, 1e-6, 0.1, 0.3, 2e15, 2e15 + 0.5};
  const double bases[] = {0, 0.1, 1.7e12 + 0.3, -1e15, 1e15 + 0.5};
  uint64_t seed = 1;
  for (double base : bases) {
    for (const std::vector<double>* offsets : {&doubling, &decades, &whole, &sudden}) {
      CAPTURE(timeStr(base));
      CAPTURE(fmt(*offsets));
      spanGrows(base, *offsets, seed++);
    }
  }
}

TEST_CASE("RunSkiplist summaries: keys below the head run's base move the base (whole and fractional)") {
  const std::vector<double> wholeDowns{1, 1, 7, 1000, 65536, 8.64e7, 1e12, 1e15, 1};
  const std::vector<double> fracDowns{1e-9, 0.1, 0.25, 0.3, 1, 1000.5, 8.64e7, 1e15, 0.5};
  const std::vector<double> tinyDowns{0x1p-20, 0x1p-20, 0x1p-18, 0x1p-16, 0x1p-14, 0x1p-12};
  // (first time, spacing) of the head run: whole and exact, whole with a coarse scale (below 1),
  // fractional at the epoch, far below 0, and 1/8 ms apart at 1e15 (one unit in the last place).
  const double heads[][2] = {{0, 1}, {0, 1e9}, {1.7e12 + 0.3, 0.1}, {-1e15, 1e12}, {1e15, 0.125}};
  uint64_t seed = 100;
  for (const auto& head : heads) {
    for (bool full : {false, true}) {
      for (const std::vector<double>* downs : {&wholeDowns, &fracDowns, &tinyDowns}) {
        CAPTURE(timeStr(head[0]));
        CAPTURE(head[1]);
        CAPTURE(full);
        CAPTURE(fmt(*downs));
        belowTheBase(head[0], head[1], full, *downs, seed++);
      }
    }
  }
}

TEST_CASE(
    "RunSkiplist summaries: a run that takes in the next (merge) summarizes its entries against its own base and "
    "scale") {
  uint64_t seed = 200;
  int pair = 0;
  auto each = [&](auto ta, auto tb) {
    ++pair;
    for (int how = 0; how < 3; ++how) {
      for (bool middle : {false, true}) {
        CAPTURE(pair);
        CAPTURE(how);
        CAPTURE(middle);
        mergeRuns(ta, tb, how, middle, seed++);
      }
    }
  };
  // 1: a fine fractional A, a coarse B; 2: a coarse A, B below A's summary step; 3: an exact A, a
  // fractional B; 4: a fractional A, an exact B; 5: A near -1e15, B near 1e15; 6: every time equal
  // (exact); 7: an exact fine A, B whole but far, so the merged run's scale drops below 1 (inexact).
  each([](int i) { return 0.1 + i * 1e-4; }, [](int j) { return 1e9 + j * 1e7; });
  each([](int i) { return i * 1e10; }, [](int j) { return 1e12 + 0.5 + j * 0x1p-20; });
  each([](int i) { return 1000.0 + i; }, [](int j) { return 2000.5 + j; });
  each([](int i) { return i + 0.5; }, [](int j) { return 1000.0 + j; });
  each([](int i) { return -1e15 + i * 1000.0; }, [](int j) { return 1e15 + j; });
  each([](int) { return 5000.0; }, [](int) { return 5000.0; });
  each([](int i) { return 1000.0 + i; }, [](int j) { return 1e6 + j * 3.0; });
}

TEST_CASE("RunSkiplist summaries: a split node keeps the run's base, scale and summaries, at every position") {
  uint64_t seed = 300;
  int shape = 0;
  auto each = [&](auto t) {
    ++shape;
    for (int p = 0; p <= kRunCapacity; ++p) {
      for (bool fresh : {false, true}) {
        CAPTURE(shape);
        CAPTURE(p);
        CAPTURE(fresh);
        splitRun(t, p, fresh, seed++);
      }
    }
  };
  // 1: clusters of 8 tenths of a ms, 1e9 ms apart, at the epoch (coarse: a cluster shares a
  // summary); 2: clusters of whole ms 1e6 apart (scale below 1); 3: whole, 100 ms apart (exact);
  // 4: 2^-20 ms apart (16 to a summary step at the finest scale).
  each([](int i) { return 1.7e12 + (i / 8) * 1e9 + (i % 8) * 0.1; });
  each([](int i) { return (i / 8) * 1e6 + (i % 8); });
  each([](int i) { return 100.0 * i; });
  each([](int i) { return 1 + i * 0x1p-20; });
}

TEST_CASE("RunSkiplist summaries: newest keys and keys put back among equal times, in exact and inexact runs") {
  eachVariant(equalTimes);
}

TEST_CASE("RunSkiplist summaries: different times with equal summaries (finer than the scale)") {
  eachVariant(tiedTimes);
}

TEST_CASE("RunSkiplist summaries: seeded random walk over times of every scale") {
  for (uint64_t seed = 1; seed <= 6; ++seed) summaryWalk(seed, 2500);
}

// Times are within +-kMaxTime (Core refuses others), so a run spans at most 2 kMaxTime and its
// summary arithmetic stays far from overflow. Both ends of the range in one run, brought together
// by an append (path 0), by a key below the head run's base (1) and by a merge into a run at the
// finest scale (2); then keys in between, and removals in random order.
TEST_CASE("RunSkiplist summaries: both ends of the time range in one run") {
  for (int path = 0; path < 3; ++path) {
    CAPTURE(path);
    LaidOut s(static_cast<uint64_t>(path + 1), 0);
    if (path == 0) {
      s.append(-kMaxTime, 1);
      s.append(kMaxTime, 2);
    } else if (path == 1) {
      s.append(kMaxTime, 2);
      s.append(-kMaxTime, 1);  // one run: the layout's order does not matter
    } else {
      for (int i = 0; i < kRunCapacity; ++i) s.append(-kMaxTime, static_cast<uint64_t>(i + 1));  // scale 2^16
      s.append(kMaxTime, 1000);  // a run of its own; the first then thins and takes it in
      while (s.layout.runs.size() == 2 && s.removeAt(0, 0)) {
      }
    }
    CHECK(s.f.list.nodeCount() == 1u);
    CHECK(s.f.check() == "");
    Rng rng(static_cast<uint64_t>(path + 1));
    s.f.freshSeq = 2000;
    s.f.oldSeq = 0;  // no old keys here
    for (int i = 0; i < 2 * kRunCapacity; ++i) {
      const double t = halfwayAfter(s.f.model, rng);
      s.f.addNew(t);
      if (!s.f.list.checkInvariants() || s.f.diff() != "") {
        FAIL_CHECK("fresh key at " << timeStr(t) << ": " << s.f.check());
        break;
      }
    }
    while (!s.f.model.empty()) {
      uint32_t h = anyEntry(s.f.model, rng)->second;
      CHECK(s.f.remove(h));
      if (s.f.check() != "") {
        FAIL_CHECK("removal of " << keyStr(s.f, h) << ": " << s.f.check());
        break;
      }
    }
  }
}

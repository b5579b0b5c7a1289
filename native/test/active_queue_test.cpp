// ActiveQueue: one skiplist per priority, urgent (1) served before normal (0), FIFO within one.
// Entries are bare message handles whose keys (nextAttempt, seq) live in a real MessageTable.
// Cancelled entries stay in place as dead ones (the caller says which through isDead) until a pop
// meets them or a purge drops them.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "active_queue.hpp"
#include "message_table.hpp"
#include "run_node_pool.hpp"
#include "test_support.hpp"

using namespace mqc;
using namespace test_support;

namespace {

// Model order is the queue's: priority descending, then time, then sequence.
using Order = std::tuple<int, double, uint64_t>;  // (-priority, t, seq)

std::vector<uint32_t> handles(const ActiveQueue& q) {
  std::vector<uint32_t> v;
  q.forEach([&](uint8_t, uint32_t h) {
    v.push_back(h);
    return true;
  });
  return v;
}

// A queue over its own messages and pool, with the model it must match: every entry (dead ones
// too) in queue order, and which are dead. Handles that leave for good are freed, so they are
// recycled with new keys and priorities.
struct Fixture {
  KeyedMessages msgs;
  RunNodePool pool{&msgs.table};
  ActiveQueue q;
  std::map<Order, uint32_t> model;
  std::set<uint32_t> dead;
  std::vector<uint32_t> dropped;  // what onDead was given, in order

  Order orderOf(uint32_t h) const {
    RunKey k = msgs.table.keyOf(h);
    return Order{-static_cast<int>(msgs.table.at(h).priority()), k.t, k.seq};
  }
  uint32_t add(uint8_t prio, double t, uint64_t seq) {
    uint32_t h = msgs.add(t, seq);
    msgs.table.at(h).setPriority(prio);
    q.insert(&pool, prio, h);
    model.emplace(orderOf(h), h);
    return h;
  }
  bool remove(uint32_t h) {
    if (!q.remove(msgs.table.at(h).priority(), h)) return false;
    model.erase(orderOf(h));
    msgs.table.free(h);
    return true;
  }
  void cancel(uint32_t h) {
    dead.insert(h);
    q.markDead();
  }
  auto isDead() const {
    return [this](uint32_t h) { return dead.count(h) != 0; };
  }
  auto onDead() {
    return [this](uint32_t h) { dropped.push_back(h); };
  }
  // Takes an entry the queue let go of (popped or dropped) out of the model and frees it.
  void gone(uint32_t h) {
    model.erase(orderOf(h));
    dead.erase(h);
    msgs.table.free(h);
  }

  std::vector<uint32_t> all() const {
    std::vector<uint32_t> v;
    for (const auto& kv : model) v.push_back(kv.second);
    return v;
  }
  std::vector<uint32_t> live() const {
    std::vector<uint32_t> v;
    for (const auto& kv : model)
      if (!dead.count(kv.second)) v.push_back(kv.second);
    return v;
  }
  // What popFront(k) must return and drop: the first k live entries, and every dead entry before
  // the k-th (all of them when fewer than k are live).
  void expectPop(size_t k, std::vector<uint32_t>* got, std::vector<uint32_t>* drops) const {
    for (const auto& kv : model) {
      if (got->size() == k) break;
      (dead.count(kv.second) ? drops : got)->push_back(kv.second);
    }
  }
  std::vector<uint32_t> pop(size_t k) {
    std::vector<uint32_t> out(k);
    dropped.clear();
    out.resize(q.popFront(out.data(), k, isDead(), onDead()));
    for (uint32_t h : out) gone(h);
    for (uint32_t h : dropped) gone(h);
    return out;
  }
  std::vector<uint32_t> peek(size_t offset, size_t k) const {
    std::vector<uint32_t> out(k);
    out.resize(q.peek(offset, out.data(), k, isDead()));
    return out;
  }
  void purge() {
    dropped.clear();
    q.purge(&pool, isDead(), onDead());
    for (uint32_t h : dropped) gone(h);
  }
  bool needsPurgeByRule() const {
    size_t live = model.size() - dead.size();
    return !dead.empty() && (live == 0 || dead.size() > 2 * live + 64);
  }
  // The queue's counts, structure and order against the model.
  bool matches() const {
    return q.checkInvariants() && q.size() == model.size() - dead.size() && q.dead() == dead.size() &&
           handles(q) == all() && q.needsPurge() == needsPurgeByRule();
  }
};

void randomWalk(uint64_t seed, int ops) {
  Rng rng(seed);
  Fixture f;
  uint64_t seq = 1000000, backSeq = 999999;  // fresh sequences after and before every other
  size_t purges = 0, dropsByPop = 0;
  for (int step = 0; step < ops; ++step) {
    INFO("seed " << seed << " step " << step << " entries " << f.model.size() << " dead " << f.dead.size());
    uint64_t r = rng.below(100);
    // A burst of cancels now and then, so the dead outnumber the live enough to need a purge.
    bool burst = step % 500 >= 420;
    if (burst || r < 12) {
      if (f.model.size() == f.dead.size()) continue;
      std::vector<uint32_t> live = f.live();
      f.cancel(live[rng.below(live.size())]);
      if (f.q.needsPurge()) {
        ENSURE(f.needsPurgeByRule());
        std::set<uint32_t> wantDropped = f.dead;
        std::vector<uint32_t> want = f.live();
        f.purge();
        ++purges;
        ENSURE(std::set<uint32_t>(f.dropped.begin(), f.dropped.end()) == wantDropped);
        ENSURE(f.dropped.size() == wantDropped.size());
        ENSURE(handles(f.q) == want);
      }
    } else if (r < 55) {
      uint8_t prio = static_cast<uint8_t>(rng.below(2));
      f.add(prio, static_cast<double>(rng.below(50)), rng.chance(0.2) ? backSeq-- : seq++);
    } else if (r < 67) {
      std::vector<uint32_t> live = f.live();
      if (live.empty()) continue;
      uint32_t h = live[rng.below(live.size())];
      uint8_t prio = f.msgs.table.at(h).priority();
      // The wrong priority does not find it.
      ENSURE(!f.q.remove(static_cast<uint8_t>(1 - prio), h));
      ENSURE(f.remove(h));
    } else if (r < 82) {
      size_t k = rng.below(150);
      std::vector<uint32_t> want, wantDrops;
      f.expectPop(k, &want, &wantDrops);
      std::vector<uint32_t> have = f.pop(k);
      ENSURE_MSG(have == want, "popFront(" << k << ") got " << fmt(have) << " want " << fmt(want));
      ENSURE_MSG(f.dropped == wantDrops, "dropped " << fmt(f.dropped) << " want " << fmt(wantDrops));
      dropsByPop += wantDrops.size();
    } else if (r < 95) {
      std::vector<uint32_t> live = f.live();
      size_t offset = rng.below(live.size() + 20), k = rng.below(150);
      std::vector<uint32_t> want;
      for (size_t i = offset; i < live.size() && want.size() < k; ++i) want.push_back(live[i]);
      std::vector<uint32_t> have = f.peek(offset, k);
      ENSURE_MSG(have == want, "peek(" << offset << "," << k << ") got " << fmt(have) << " want " << fmt(want));
    } else {
      // A purge whenever the caller likes (nothing to do without dead entries).
      std::vector<uint32_t> want = f.live();
      f.purge();
      ENSURE(handles(f.q) == want);
      ENSURE(f.q.dead() == 0);
    }
    ENSURE(f.matches());
  }
  CHECK_MESSAGE(purges >= 3, "purges " << purges);
  CHECK_MESSAGE(dropsByPop >= 20, "dead entries dropped by popFront " << dropsByPop);
}

}  // namespace

TEST_CASE("ActiveQueue: priority 1 is served before priority 0; FIFO within a priority") {
  Fixture f;
  CHECK(f.q.empty());
  CHECK(f.q.checkInvariants());
  uint64_t seq = 1;
  // Interleave normal and urgent arrivals at one instant.
  std::vector<uint32_t> urgent, normal;
  for (uint32_t i = 0; i < 200; ++i) {
    uint8_t p = (i % 3 == 0) ? 1 : 0;
    (p ? urgent : normal).push_back(f.add(p, 100, seq++));
  }
  CHECK(f.q.size() == 200u);
  CHECK(f.matches());
  std::vector<uint32_t> want = urgent;
  want.insert(want.end(), normal.begin(), normal.end());
  CHECK(f.pop(200) == want);
  CHECK(f.q.empty());
  CHECK(f.q.checkInvariants());
  CHECK(f.pool.nodesInUse() == 0u);
}

TEST_CASE("ActiveQueue: within a priority, earlier next-attempt first, then insertion order") {
  Fixture f;
  uint32_t a = f.add(0, 50, 10);
  uint32_t b = f.add(0, 10, 20);  // a retry that was due earlier goes ahead
  uint32_t c = f.add(0, 50, 30);
  uint32_t d = f.add(1, 90, 40);  // urgent beats every normal message whatever its time
  uint32_t e = f.add(0, 10, 50);
  // Equal times, sequences out of order (not appends): the sequence decides.
  uint32_t g = f.add(0, 50, 5);
  uint32_t h = f.add(0, 10, 15);
  uint32_t i = f.add(1, 90, 35);
  uint32_t j = f.add(0, 10, 25);  // between two of its time
  CHECK(f.peek(0, 10) == std::vector<uint32_t>{i, d, h, b, j, e, g, a, c});
  CHECK(f.matches());
  // popFront of one, then the rest.
  CHECK(f.pop(1) == std::vector<uint32_t>{i});
  CHECK(f.pop(10) == std::vector<uint32_t>{d, h, b, j, e, g, a, c});
  CHECK(f.q.empty());
}

TEST_CASE("ActiveQueue: remove by (priority, handle)") {
  Fixture f;
  std::vector<uint32_t> h;
  for (uint32_t i = 0; i < 150; ++i) h.push_back(f.add(static_cast<uint8_t>(i & 1), static_cast<double>(i), i + 1));
  CHECK_FALSE(f.q.remove(0, h[1]));  // h[1] is urgent, not normal
  CHECK(f.q.remove(1, h[1]));
  CHECK_FALSE(f.q.remove(1, h[1]));  // already gone
  f.gone(h[1]);
  uint32_t stranger = f.msgs.add(1000, 1);
  CHECK_FALSE(f.q.remove(0, stranger));
  CHECK_FALSE(f.q.remove(1, stranger));
  CHECK(f.q.size() == 149u);
  CHECK(f.matches());
  // Remove every urgent entry: the urgent list goes, normal ones remain in order.
  for (uint32_t i = 3; i < 150; i += 2) CHECK(f.remove(h[i]));
  CHECK(f.q.size() == 75u);
  CHECK(f.matches());
  for (uint32_t i = 0; i < 150; i += 2) CHECK(f.remove(h[i]));
  CHECK(f.q.empty());
  CHECK(f.q.checkInvariants());
  CHECK(f.pool.nodesInUse() == 0u);
  // Usable again after it emptied, with a recycled handle.
  uint32_t again = f.add(1, 5, 999);
  CHECK(f.pop(1) == std::vector<uint32_t>{again});
  CHECK(f.pool.nodesInUse() == 0u);
}

TEST_CASE("ActiveQueue: peek across the priority boundary") {
  Fixture f;
  std::vector<uint32_t> urgent, normal;
  for (uint32_t i = 0; i < 70; ++i) urgent.push_back(f.add(1, 0, i + 1));
  for (uint32_t i = 0; i < 90; ++i) normal.push_back(f.add(0, 0, 200 + i));
  std::vector<uint32_t> want(urgent.begin() + 65, urgent.end());
  want.insert(want.end(), normal.begin(), normal.begin() + 5);
  CHECK(f.peek(65, 10) == want);
  CHECK(f.peek(70, 1) == std::vector<uint32_t>{normal[0]});
  CHECK(f.peek(159, 5) == std::vector<uint32_t>{normal[89]});
  CHECK(f.peek(160, 5).empty());
  CHECK(f.peek(3, 0).empty());
  CHECK(f.q.size() == 160u);
  CHECK(f.matches());
}

TEST_CASE(
    "ActiveQueue: lists at the capacity boundaries (C - 1, C, C + 1, 2C, 2C + 1 entries per priority, C = "
    "kRunCapacity)") {
  for (int n : {kRunCapacity - 1, kRunCapacity, kRunCapacity + 1, 2 * kRunCapacity, 2 * kRunCapacity + 1}) {
    CAPTURE(n);
    // Urgent and normal entries interleaved in time; pops in chunks that end around run and
    // priority boundaries.
    for (int chunk : {1, kRunCapacity - 1, kRunCapacity, kRunCapacity + 1, n, 2 * n}) {
      CAPTURE(chunk);
      Fixture f;
      for (int i = 0; i < n; ++i) {
        f.add(1, 2.0 * i + 1, static_cast<uint64_t>(2 * i + 2));
        f.add(0, 2.0 * i, static_cast<uint64_t>(2 * i + 1));
      }
      CHECK(f.matches());
      for (size_t offset : {size_t(n) - 1, size_t(n), size_t(n) + 1}) {
        std::vector<uint32_t> live = f.live();
        std::vector<uint32_t> want(live.begin() + static_cast<std::ptrdiff_t>(offset),
                                   live.begin() + static_cast<std::ptrdiff_t>(std::min(live.size(), offset + 3)));
        CHECK(f.peek(offset, 3) == want);
      }
      while (!f.q.empty()) {
        std::vector<uint32_t> want, drops;
        f.expectPop(static_cast<size_t>(chunk), &want, &drops);
        if (f.pop(static_cast<size_t>(chunk)) != want) {
          FAIL_CHECK("popFront(" << chunk << ") out of order");
          break;
        }
        CHECK(f.matches());
      }
      CHECK(f.pool.nodesInUse() == 0u);
    }
    // Each urgent and each normal position removed on its own.
    for (int i = 0; i < 2 * n; ++i) {
      CAPTURE(i);
      Fixture f;
      std::vector<uint32_t> h;
      for (int j = 0; j < n; ++j) h.push_back(f.add(1, 5, static_cast<uint64_t>(j + 1)));
      for (int j = 0; j < n; ++j) h.push_back(f.add(0, 5, static_cast<uint64_t>(n + j + 1)));
      uint8_t prio = i < n ? 1 : 0;
      CHECK_FALSE(f.q.remove(static_cast<uint8_t>(1 - prio), h[i]));
      CHECK(f.q.remove(prio, h[i]));
      CHECK_FALSE(f.q.remove(prio, h[i]));
      f.gone(h[i]);
      CHECK(f.matches());
    }
  }
}

TEST_CASE("ActiveQueue: dead entries are skipped by peek, dropped by popFront as it meets them, and purged") {
  Fixture f;
  std::vector<uint32_t> u, n;
  for (uint32_t i = 0; i < 20; ++i) u.push_back(f.add(1, 10, i + 1));
  for (uint32_t i = 0; i < 40; ++i) n.push_back(f.add(0, 10, 100 + i));
  // Cancel urgent 0-2 (the front), 10, the last urgent one (the priority boundary) and normal 0,
  // 5 and 6.
  for (uint32_t h : {u[0], u[1], u[2], u[10], u[19], n[0], n[5], n[6]}) f.cancel(h);
  CHECK(f.q.size() == 52u);
  CHECK(f.q.dead() == 8u);
  CHECK_FALSE(f.q.needsPurge());
  CHECK(f.matches());
  // peek counts live entries only, across the boundary and its dead entries.
  CHECK(f.peek(0, 2) == std::vector<uint32_t>{u[3], u[4]});
  CHECK(f.peek(14, 4) == std::vector<uint32_t>{u[18], n[1], n[2], n[3]});
  CHECK(f.peek(52, 4).empty());
  CHECK(f.q.dead() == 8u);
  // popFront(2) drops the three dead at the front; the entry after the second live one stays.
  CHECK(f.pop(2) == std::vector<uint32_t>{u[3], u[4]});
  CHECK(f.dropped == std::vector<uint32_t>{u[0], u[1], u[2]});
  CHECK(f.matches());
  // Up to u[18] exactly: u[10] goes, u[19] (dead, right after) stays.
  CHECK(f.pop(13).back() == u[18]);
  CHECK(f.dropped == std::vector<uint32_t>{u[10]});
  CHECK(f.matches());
  // Across the boundary: u[19] and n[0] are dropped on the way to n[1].
  CHECK(f.pop(1) == std::vector<uint32_t>{n[1]});
  CHECK(f.dropped == std::vector<uint32_t>{u[19], n[0]});
  CHECK(f.matches());
  // A purge drops n[5] and n[6] and keeps the rest in order.
  std::vector<uint32_t> live = f.live();
  f.purge();
  CHECK(f.dropped == std::vector<uint32_t>{n[5], n[6]});
  CHECK(f.q.dead() == 0u);
  CHECK(handles(f.q) == live);
  CHECK(f.matches());
  // The rebuilt list takes inserts at the front and the back; the urgent list comes back.
  f.add(0, 5, 1);
  f.add(0, 10, 1000);
  f.add(1, 10, 2000);
  CHECK(f.matches());
  // When every live entry is cancelled a purge is due at once; it drops every list.
  for (uint32_t h : f.live()) f.cancel(h);
  CHECK(f.q.empty());
  CHECK(f.q.needsPurge());
  f.purge();
  CHECK(f.matches());
  CHECK(f.model.empty());
  CHECK(f.pool.nodesInUse() == 0u);
}

TEST_CASE("ActiveQueue: a purge is due when nothing is live or the dead outnumber the live by 2 to 1 plus 64") {
  for (size_t live : {size_t{0}, size_t{1}, size_t{10}, size_t{100}}) {
    CAPTURE(live);
    Fixture f;
    Rng rng(live + 1);
    const size_t threshold = 2 * live + 64;
    // Entries of both priorities and interleaved times; all but `live` of them (at random places)
    // get cancelled. Exactly at the threshold no purge is due yet (unless nothing is live).
    std::vector<uint32_t> hs;
    uint64_t seq = 1;
    for (size_t i = 0; i < live + threshold; ++i)
      hs.push_back(f.add(static_cast<uint8_t>(i % 2), static_cast<double>(i % 7), seq++));
    for (size_t i = hs.size(); i > 1; --i) std::swap(hs[i - 1], hs[rng.below(i)]);
    for (size_t i = live; i < hs.size(); ++i) {
      f.cancel(hs[i]);
      bool due = live == 0 && i + 1 == hs.size();
      if (f.q.needsPurge() != due) {
        FAIL_CHECK("needsPurge " << f.q.needsPurge() << " with " << f.q.dead() << " dead, " << f.q.size() << " live");
        break;
      }
    }
    CHECK(f.q.size() == live);
    CHECK(f.q.dead() == threshold);
    CHECK(f.matches());
    if (live > 0) {
      // One more dead entry (a new one, cancelled) with as many live: now it is due.
      f.cancel(f.add(0, 3, seq++));
      CHECK(f.q.size() == live);
      CHECK(f.q.dead() == threshold + 1);
      CHECK(f.q.needsPurge());
    }
    std::vector<uint32_t> want = f.live();
    size_t dead = f.dead.size();
    f.purge();
    CHECK(f.dropped.size() == dead);
    CHECK(handles(f.q) == want);
    CHECK_FALSE(f.q.needsPurge());
    CHECK(f.matches());
    if (live == 0) CHECK(f.pool.nodesInUse() == 0u);
  }
}

TEST_CASE("ActiveQueue: queues sharing one pool and one table give every node back") {
  KeyedMessages msgs;
  RunNodePool pool(&msgs.table);
  std::vector<ActiveQueue> queues(16);
  Rng rng(5);
  std::vector<std::vector<uint32_t>> in(queues.size());
  uint64_t seq = 1;
  for (int i = 0; i < 6000; ++i) {
    size_t w = rng.below(queues.size());
    uint8_t prio = static_cast<uint8_t>(rng.below(2));
    uint32_t h = msgs.add(static_cast<double>(rng.below(100)), seq++);
    msgs.table.at(h).setPriority(prio);
    queues[w].insert(&pool, prio, h);
    in[w].push_back(h);
    if (rng.chance(0.2)) {
      uint32_t out[40];
      size_t got = queues[w].popFront(out, 40);
      for (size_t j = 0; j < got; ++j) {
        in[w].erase(std::find(in[w].begin(), in[w].end(), out[j]));
        msgs.table.free(out[j]);
      }
    }
  }
  CHECK(pool.nodesInUse() > queues.size());
  for (size_t w = 0; w < queues.size(); ++w) {
    CHECK(queues[w].checkInvariants());
    CHECK(queues[w].size() == in[w].size());
  }
  // Drain half the queues by pops and cancel-and-purge the other half: every node comes back.
  for (size_t w = 0; w < queues.size(); ++w) {
    if (w % 2 == 0) {
      std::vector<uint32_t> out(in[w].size() + 1);
      CHECK(queues[w].popFront(out.data(), out.size()) == in[w].size());
    } else {
      for (size_t j = 0; j < in[w].size(); ++j) queues[w].markDead();
      size_t drops = 0;
      queues[w].purge(
          &pool, [](uint32_t) { return true; }, [&](uint32_t) { ++drops; });
      CHECK(drops == in[w].size());
    }
    CHECK(queues[w].empty());
    CHECK(queues[w].dead() == 0u);
    CHECK(queues[w].checkInvariants());
  }
  CHECK(pool.nodesInUse() == 0u);
  CHECK(pool.listsInUse() == 0u);
  // The lists' storage is kept for reuse: after a first round that may need more of it, filling and
  // draining every queue again, many times, reserves nothing more.
  size_t reserved = 0;
  for (int round = 0; round < 50; ++round) {
    if (round == 1) reserved = pool.bytesReserved();
    for (size_t w = 0; w < queues.size(); ++w)
      for (uint8_t prio = 0; prio < 2; ++prio) {
        uint32_t h = msgs.add(static_cast<double>(round), seq++);
        msgs.table.at(h).setPriority(prio);
        queues[w].insert(&pool, prio, h);
      }
    CHECK(pool.listsInUse() == 2 * queues.size());
    for (size_t w = 0; w < queues.size(); ++w) {
      uint32_t out[2];
      REQUIRE(queues[w].popFront(out, 2) == 2u);
      msgs.table.free(out[0]);
      msgs.table.free(out[1]);
    }
    CHECK(pool.listsInUse() == 0u);
  }
  CHECK(pool.bytesReserved() == reserved);
  // From outside the counters: a block given back is the next one handed out.
  void* block = pool.acquireList(sizeof(RunSkiplist));
  pool.releaseList(block);
  CHECK(pool.acquireList(sizeof(RunSkiplist)) == block);
  pool.releaseList(block);
}

TEST_CASE("ActiveQueue: seeded random operations, cancels and purges match an ordered model") {
  for (uint64_t seed = 1; seed <= 6; ++seed) randomWalk(seed, 3000);
}

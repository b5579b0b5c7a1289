// The active queue of one (domain, binding): messages due now, ordered by (priority desc,
// next-attempt asc, sequence asc). It is one unrolled skiplist per priority, urgent first, so each
// priority has its own tail finger and FIFO appends of either priority are O(1). Lists are made on
// first use and dropped when they empty, so the many idle (domain, binding) pairs of a large
// configuration cost a few words each.
//
// Cancel is lazy: a cancelled entry stays where it lies as a dead entry (markDead), and is dropped
// when it reaches the front (popFront) or when the queue is purged: when no live entry is left, or
// when dead entries outnumber live ones by more than two to one. The queue does not know which
// entries are dead; the caller says, through isDead(handle), and takes back each dropped handle
// through onDead(handle). size() counts live entries only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "run_skiplist.hpp"

namespace mqc {

constexpr int kPriorities = 2;

class ActiveQueue {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t dead() const { return dead_; }

  // Entries are handles ordered by their records' keys (see RunSkiplist).
  void insert(RunNodePool* pool, uint8_t priority, uint32_t handle);
  // Ask the CPU to fetch what an insert at this priority will touch: the list object, and (once
  // the list is in cache) its tail run. Hints for a batch that works a few entries ahead.
  void prefetchList(uint8_t priority) const {
    if (lists_[priority]) __builtin_prefetch(lists_[priority].get());
  }
  void prefetchTail(uint8_t priority) const {
    if (lists_[priority]) lists_[priority]->prefetchTail();
  }
  // Removes a live entry at once (O(log n)); false when absent.
  // A hint before popFront(): fetch both priorities' lists at once, then their head runs, so that a
  // take from a queue holding both waits for two misses in a row, not four.
  void prefetchHeads() const {
    for (int p = kPriorities - 1; p >= 0; --p) prefetchList(static_cast<uint8_t>(p));
    prefetchHeadRuns();
  }
  // The second half of that, for a caller that fetched the lists earlier (reads them).
  void prefetchHeadRuns() const {
    for (int p = kPriorities - 1; p >= 0; --p)
      if (lists_[p]) lists_[p]->prefetchHead();
  }
  bool remove(uint8_t priority, uint32_t handle);
  // A live entry was cancelled in place: it becomes dead.
  void markDead() {
    --size_;
    ++dead_;
  }
  // True when the dead entries should be dropped now (see above).
  bool needsPurge() const { return dead_ > 0 && (size_ == 0 || dead_ > 2 * size_ + 64); }

  // Pops up to k live entries into out, in order, dropping the dead ones it meets; returns how many.
  template <typename IsDead, typename OnDead>
  size_t popFront(uint32_t* out, size_t k, IsDead isDead, OnDead onDead);
  // Copies up to k live handles, starting at live position offset, into out; returns how many.
  template <typename IsDead>
  size_t peek(size_t offset, uint32_t* out, size_t k, IsDead isDead) const;
  // Drops every dead entry.
  template <typename IsDead, typename OnDead>
  void purge(RunNodePool* pool, IsDead isDead, OnDead onDead);

  // fn(priority, handle) in queue order, dead entries included, until it returns false.
  template <typename Fn>
  void forEach(Fn fn) const {
    bool go = true;
    for (int p = kPriorities - 1; p >= 0 && go; --p)
      if (lists_[p]) lists_[p]->forEach([&](uint32_t h) { return go = fn(static_cast<uint8_t>(p), h); });
  }
  bool checkInvariants() const;

  // The same, for a queue with no dead entries (tests).
  size_t popFront(uint32_t* out, size_t k) {
    return popFront(
        out, k, [](uint32_t) { return false; }, [](uint32_t) {});
  }
  size_t peek(size_t offset, uint32_t* out, size_t k) const {
    return peek(offset, out, k, [](uint32_t) { return false; });
  }

 private:
  // A list for a priority, made for its first handle (which seeds its level choices).
  static RunSkiplist::Ptr newList(RunNodePool* pool, uint8_t priority, uint32_t handle) {
    return RunSkiplist::make(pool, (handle + 1) * 0x9e3779b97f4a7c15ull + priority + 1);
  }

  RunSkiplist::Ptr lists_[kPriorities];  // index = priority; 1 (urgent) is served first
  size_t size_ = 0;                      // live entries
  size_t dead_ = 0;                      // cancelled entries still in the lists
};

template <typename IsDead, typename OnDead>
size_t ActiveQueue::popFront(uint32_t* out, size_t k, IsDead isDead, OnDead onDead) {
  size_t got = 0;
  for (int p = kPriorities - 1; p >= 0 && got < k; --p) {
    auto& list = lists_[p];
    while (list && got < k) {
      // Pop as many raw entries as live ones are still wanted, then squeeze out the dead.
      size_t base = got;
      size_t n = list->popFront(out + base, k - got);
      if (dead_ == 0) {
        got += n;
      } else {
        for (size_t i = 0; i < n; ++i) {
          uint32_t h = out[base + i];
          if (isDead(h)) {
            onDead(h);
            --dead_;
          } else {
            out[got++] = h;
          }
        }
      }
      if (list->empty()) list.reset();
    }
  }
  size_ -= got;
  return got;
}

template <typename IsDead>
size_t ActiveQueue::peek(size_t offset, uint32_t* out, size_t k, IsDead isDead) const {
  size_t got = 0;
  if (k == 0) return 0;
  if (dead_ == 0) {
    for (int p = kPriorities - 1; p >= 0 && got < k; --p) {
      const auto& list = lists_[p];
      if (!list) continue;
      if (offset >= list->size()) {
        offset -= list->size();
        continue;
      }
      got += list->peek(offset, out + got, k - got);
      offset = 0;
    }
    return got;
  }
  forEach([&](uint8_t, uint32_t h) {
    if (isDead(h)) return true;
    if (offset > 0) {
      --offset;
      return true;
    }
    out[got++] = h;
    return got < k;
  });
  return got;
}

template <typename IsDead, typename OnDead>
void ActiveQueue::purge(RunNodePool* pool, IsDead isDead, OnDead onDead) {
  if (dead_ == 0) return;
  std::vector<uint32_t> live;
  live.reserve(size_);
  for (int p = 0; p < kPriorities; ++p) {
    auto& list = lists_[p];
    if (!list) continue;
    live.clear();
    list->forEach([&](uint32_t h) {
      if (isDead(h))
        onDead(h);
      else
        live.push_back(h);
      return true;
    });
    list.reset();
    // In key order, so every insert is an append at the tail.
    for (uint32_t h : live) {
      if (!list) list = newList(pool, static_cast<uint8_t>(p), h);
      list->insert(h);
    }
  }
  dead_ = 0;
}

}  // namespace mqc

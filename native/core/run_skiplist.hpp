// An unrolled skiplist of message handles: each node holds a sorted run of up to kRunCapacity
// handles, ordered by the keys in the message records (RunNodePool::keyOf). Appends at the tail and
// pops at the head touch one run and read no record beyond the tail's last (O(1) amortised); search,
// insert and removal in the middle are O(log n) node steps on the nodes' own keys, then a binary
// search on the run's 16-bit time summaries (records read only where summaries tie) or, for
// removal, a scan of one run (or two) for the handle. A record's key must not change while its handle is in
// a list, and times must lie within ±kMaxTime (core.hpp; the core refuses others), so that the
// difference of two times, scaled to a summary, stays finite.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>

#include "run_key.hpp"
#include "run_node_pool.hpp"

namespace mqc {

class RunSkiplist {
 public:
  explicit RunSkiplist(RunNodePool* pool, uint64_t seed = 0x9e3779b97f4a7c15ull);
  ~RunSkiplist();
  // A list in storage from its pool (queues make and drop their lists often), given back there.
  // A Ptr must come from make(): its deleter hands the storage to the pool, not to delete.
  struct PoolDeleter {
    void operator()(RunSkiplist* list) const;
  };
  using Ptr = std::unique_ptr<RunSkiplist, PoolDeleter>;
  static Ptr make(RunNodePool* pool, uint64_t seed);
  RunSkiplist(const RunSkiplist&) = delete;
  RunSkiplist& operator=(const RunSkiplist&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Inserts a handle at the place of its record's key (keys are unique by sequence); the handle
  // must not be in the list.
  void insert(uint32_t handle);
  // A hint: fetch the tail run an append goes to (reads this object, which should be in cache).
  void prefetchTail() const {
    if (tail_ != nullptr) __builtin_prefetch(tail_);
  }
  // A hint: fetch the head run a pop reads (reads this object).
  void prefetchHead() const {
    if (head_[0] != nullptr) __builtin_prefetch(head_[0]);
  }
  // Removes the handle (found by its record's key); false when it is not in the list.
  bool remove(uint32_t handle);
  // The head entry and its key. Precondition: !empty().
  uint32_t frontHandle() const { return head_[0]->handles[head_[0]->begin]; }
  RunKey frontKey() const { return pool_->keyOf(frontHandle()); }
  // Pops up to k head entries into out (handles, in order); returns how many.
  size_t popFront(uint32_t* out, size_t k);
  // Copies up to k handles starting at position offset into out; returns how many.
  size_t peek(size_t offset, uint32_t* out, size_t k) const;
  // Calls fn(handle) for each entry in order until fn returns false.
  template <typename Fn>
  void forEach(Fn fn) const {
    for (const RunNode* n = head_[0]; n != nullptr; n = n->next(0))
      for (int i = n->begin; i < n->end; ++i)
        if (!fn(n->handles[i])) return;
  }
  // Structural self-check for tests and the fuzzer: key order (read from the records), the nodes'
  // own keys, counts, level links, tail.
  bool checkInvariants() const;
  size_t nodeCount() const;

 private:
  int randomHeight();
  // Whether k goes before the tail's last key (tail_ not null), by the summaries when they differ.
  bool beforeTailEnd(const RunKey& k) const;
  // Fills upd[l] with the link slot that points past the last node at level l whose own key is
  // < k; returns that last node at level 0 (nullptr when k precedes every node).
  RunNode* findPreds(const RunKey& k, RunNode** upd[kMaxLevel]) const;
  RunNode* newNodeAfter(RunNode* prev, int height, RunNode** upd[kMaxLevel]);
  // Unlinks and frees a node that has emptied or been merged away.
  void unlink(RunNode* n);
  // newest: k's sequence is above every sequence the list has held (maxSeq_): a fresh placement,
  // or a key put back into a list that was made again since.
  int lowerBound(const RunNode* n, const RunKey& k, bool newest) const;
  void compact(RunNode* n);
  void insertInto(RunNode* n, int pos, const RunKey& k, uint32_t handle);
  void startRun(RunNode* n, const RunKey& k, uint32_t handle);
  void summarize(RunNode* n, int from);
  void rebase(RunNode* n, double t);
  void eraseAt(RunNode* n, int pos);
  void shrinkLevel();

  RunNodePool* pool_;
  RunNode* head_[kMaxLevel];  // first node at each level
  RunNode* tail_ = nullptr;   // last node at level 0
  size_t size_ = 0;
  int level_ = 0;                                              // levels in use
  uint64_t maxSeq_ = 0;                                        // at least every sequence in the list (never lowered)
  double maxTime_ = -std::numeric_limits<double>::infinity();  // at least every time in the list (never lowered)
  uint64_t rng_;
};

}  // namespace mqc

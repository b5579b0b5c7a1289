// An unrolled skiplist: each node holds a sorted run of up to kRunCapacity (key, handle) entries.
// Appends at the tail and pops at the head touch one contiguous run (O(1) amortised); search,
// insert and removal in the middle are O(log n) node steps plus a short move inside one run.
// Entries are dense 32-bit handles into the message table; keys live beside them in the node so a
// search never leaves the run it is reading.
#pragma once
#include <cstddef>
#include <cstdint>

#include "run_key.hpp"
#include "run_node_pool.hpp"

namespace mqc {

class RunSkiplist {
 public:
  explicit RunSkiplist(RunNodePool* pool, uint64_t seed = 0x9e3779b97f4a7c15ull);
  ~RunSkiplist();
  RunSkiplist(const RunSkiplist&) = delete;
  RunSkiplist& operator=(const RunSkiplist&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Inserts an entry; the key must not be present (keys are unique by sequence).
  void insert(const RunKey& k, uint32_t handle);
  // Removes the entry with exactly this key; false when absent.
  bool remove(const RunKey& k);
  // The head entry. Precondition: !empty().
  const RunKey& frontKey() const { return head_[0]->firstKey(); }
  uint32_t frontHandle() const { return head_[0]->handles[head_[0]->begin]; }
  // Pops up to k head entries into out (handles, in order); returns how many.
  size_t popFront(uint32_t* out, size_t k);
  // Copies up to k handles starting at position offset into out; returns how many.
  size_t peek(size_t offset, uint32_t* out, size_t k) const;
  // Calls fn(key, handle) for each entry in order until fn returns false.
  template <typename Fn>
  void forEach(Fn fn) const {
    for (const RunNode* n = head_[0]; n != nullptr; n = n->next[0])
      for (int i = n->begin; i < n->end; ++i)
        if (!fn(n->keys[i], n->handles[i])) return;
  }
  // Structural self-check for tests and the fuzzer: order, counts, level links, tail.
  bool checkInvariants() const;
  size_t nodeCount() const;

 private:
  int randomHeight();
  // Fills upd[l] with the link slot that points past the last node at level l whose first key is
  // < k; returns that last node at level 0 (nullptr when k precedes every node).
  RunNode* findPreds(const RunKey& k, RunNode** upd[kMaxLevel]) const;
  RunNode* newNodeAfter(RunNode* prev, int height, RunNode** upd[kMaxLevel]);
  void unlink(RunNode* n, RunNode** upd[kMaxLevel]);
  void compact(RunNode* n);
  void insertInto(RunNode* n, int pos, const RunKey& k, uint32_t handle);
  void eraseAt(RunNode* n, int pos);
  void shrinkLevel();

  RunNodePool* pool_;
  RunNode* head_[kMaxLevel];  // first node at each level
  RunNode* tail_ = nullptr;   // last node at level 0
  size_t size_ = 0;
  int level_ = 0;             // levels in use
  uint64_t rng_;
};

}  // namespace mqc

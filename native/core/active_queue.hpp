// The active queue of one (domain, binding): messages due now, ordered by (priority desc,
// next-attempt asc, sequence asc). It is one unrolled skiplist per priority, urgent first, so each
// priority has its own tail finger and FIFO appends of either priority are O(1). Lists are made on
// first use and dropped when they empty, so the many idle (domain, binding) pairs of a large
// configuration cost a few words each.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "run_skiplist.hpp"

namespace mqc {

constexpr int kPriorities = 2;

class ActiveQueue {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  void insert(RunNodePool* pool, uint8_t priority, const RunKey& k, uint32_t handle);
  bool remove(uint8_t priority, const RunKey& k);
  size_t popFront(uint32_t* out, size_t k);
  size_t peek(size_t offset, uint32_t* out, size_t k) const;
  // fn(priority, key, handle) in queue order until it returns false.
  template <typename Fn>
  void forEach(Fn fn) const {
    bool go = true;
    for (int p = kPriorities - 1; p >= 0 && go; --p)
      if (lists_[p])
        lists_[p]->forEach([&](const RunKey& k, uint32_t h) { return go = fn(static_cast<uint8_t>(p), k, h); });
  }
  bool checkInvariants() const;

 private:
  std::unique_ptr<RunSkiplist> lists_[kPriorities];  // index = priority; 1 (urgent) is served first
  size_t size_ = 0;
};

}  // namespace mqc

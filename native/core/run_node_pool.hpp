// Fixed-size nodes for the unrolled skiplists, carved from slabs and recycled through a free list.
// One pool per core (never shared between cores or threads), so appends and pops allocate nothing
// once the pool has warmed up.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "run_key.hpp"

namespace mqc {

constexpr int kRunCapacity = 64;  // entries per node: one run is a few cache lines of keys
constexpr int kMaxLevel = 12;     // with p = 1/4, enough for ~16M nodes (1G entries)

struct RunNode {
  RunNode* next[kMaxLevel];  // only [0, height) is linked
  uint16_t begin;            // live entries are [begin, end)
  uint16_t end;
  uint8_t height;
  RunKey keys[kRunCapacity];
  uint32_t handles[kRunCapacity];

  int count() const { return end - begin; }
  const RunKey& firstKey() const { return keys[begin]; }
  const RunKey& lastKey() const { return keys[end - 1]; }
};

class RunNodePool {
 public:
  RunNodePool() = default;
  RunNodePool(const RunNodePool&) = delete;
  RunNodePool& operator=(const RunNodePool&) = delete;
  ~RunNodePool();

  RunNode* acquire(int height);
  void release(RunNode* n);

  size_t bytesReserved() const { return slabs_.size() * kSlabNodes * sizeof(RunNode); }
  size_t nodesInUse() const { return inUse_; }

 private:
  static constexpr size_t kSlabNodes = 64;
  std::vector<RunNode*> slabs_;
  RunNode* free_ = nullptr;  // linked through next[0]
  size_t inUse_ = 0;
};

}  // namespace mqc

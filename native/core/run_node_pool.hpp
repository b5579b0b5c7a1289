// Nodes for the unrolled skiplists, carved from slabs and recycled through free lists. One pool per
// core (never shared between cores or threads), so appends and pops allocate nothing once the pool
// has warmed up.
//
// A node is a short run of bare message handles: the keys they are ordered by live in the message
// records (MessageTable::keyOf), so an entry costs 4 bytes, plus a 2-byte summary of its time: the
// time's offset from the node's base, scaled by a power of two (2^16 a millisecond at first, halved
// as the node's span grows until it fits 16 bits). Summaries are monotone in the time, so a search inside a run
// compares summaries and reads a record only where a summary ties. A node keeps one key of its own, a lower bound of
// its run, so a search steps from node to node without reading records. Its level links follow the run in the same
// allocation, sized by height: three size classes (1, up to 3 and up to kMaxLevel links).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "message_table.hpp"
#include "run_key.hpp"

namespace mqc {

constexpr int kRunCapacity = 64;  // entries per node
constexpr int kMaxLevel = 12;     // with p = 1/4, enough for ~16M nodes (1G entries) per list

struct RunNode {
  // A lower bound of the run's keys that is above every key of the nodes before this one: the key
  // of the run's first entry when the node was made (or when an entry went in before it); pops and
  // removals at the front leave it as it was, which keeps both properties.
  RunKey first;
  // sums[i] = floor((t_i - base) * scale), t_i the time of handles[i]; base is at most every time
  // in the run and scale a power of two (exact, so halving it halves every summary exactly).
  double base;
  double scale;
  uint16_t begin;  // live entries are [begin, end)
  uint16_t end;
  uint8_t height;
  uint8_t sizeClass;
  // Every time in the run and the base are whole milliseconds and the scale is at least 1: equal
  // summaries then mean equal times.
  bool exact;
  uint16_t sums[kRunCapacity];
  uint32_t handles[kRunCapacity];

  int count() const { return end - begin; }
  // The level links, [0, height), stored right after the node.
  RunNode** links() { return reinterpret_cast<RunNode**>(this + 1); }
  RunNode* const* links() const { return reinterpret_cast<RunNode* const*>(this + 1); }
  RunNode*& next(int l) { return links()[l]; }
  RunNode* next(int l) const { return links()[l]; }
};
static_assert(sizeof(RunNode) % alignof(RunNode*) == 0, "links follow the node aligned");

class RunNodePool {
 public:
  // The table whose records hold the keys of the handles in this pool's nodes.
  explicit RunNodePool(const MessageTable* keys) : keys_(keys) {}
  RunNodePool(const RunNodePool&) = delete;
  RunNodePool& operator=(const RunNodePool&) = delete;
  ~RunNodePool();

  RunNode* acquire(int height);
  void release(RunNode* n);

  RunKey keyOf(uint32_t h) const { return keys_->keyOf(h); }
  void prefetchKey(uint32_t h) const { keys_->prefetchRecord(h); }

  // Storage for one RunSkiplist object (bytes is the same on every call: sizeof(RunSkiplist)). A
  // queue's list is made when the queue gets an entry and dropped when it empties, thousands of
  // times a second in a busy core, so the blocks are kept here for reuse instead of going back
  // through malloc; the pool holds as many as were ever in use at once.
  void* acquireList(size_t bytes);
  void releaseList(void* block);
  size_t bytesReserved() const;
  size_t nodesInUse() const { return inUse_; }
  size_t listsInUse() const { return listBlocks_ - spareListCount_; }

 private:
  static constexpr int kClasses = 3;
  static constexpr int kClassLinks[kClasses] = {1, 3, kMaxLevel};
  static constexpr size_t kSlabNodes = 64;
  static constexpr size_t strideOf(int c) { return sizeof(RunNode) + sizeof(RunNode*) * kClassLinks[c]; }
  static int classOf(int height) { return height <= 1 ? 0 : height <= 3 ? 1 : 2; }

  const MessageTable* keys_;
  std::vector<void*> slabs_[kClasses];
  RunNode* free_[kClasses] = {nullptr, nullptr, nullptr};  // linked through next(0)
  size_t inUse_ = 0;
  void* spareLists_ = nullptr;  // spare list blocks, each holding the next one's address
  size_t spareListCount_ = 0;
  size_t listBlocks_ = 0;  // list blocks allocated, in use or spare
  size_t listBytes_ = 0;
};

}  // namespace mqc

// Every message the core knows, addressed by a dense 32-bit handle, plus the index from the MTA's
// numeric id to that handle (for cancel-by-id and duplicate checks). Handles are recycled through
// a free list. The index is open addressing (linear probing, load at most 3/4) over 8-byte slots:
// the handle and the low 32 bits of the id's hash. A probe compares hashes in the slot array and
// reads a message record only when the hash matches, and a deletion moves slots without reading
// any record, so a lookup at a million messages costs about one cache miss in the index and one in
// the table.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mqc {

// Cancelled: taken out of the index by a lazy cancel but still an entry in an active queue, which
// drops it (and frees the handle) when it reaches the front or the queue is purged.
enum class Place : uint8_t { Free = 0, Active, Delayed, InFlight, Cancelled };

struct Message {
  double id;           // the MTA's id: a safe integer, 0 <= id < 2^53
  double nextAttempt;  // queue time (ms since the epoch)
  double expiresAt;    // +infinity when it never expires
  uint64_t seq;        // insertion sequence for this placement
  uint32_t domain;
  uint16_t binding;
  uint16_t attempts;
  uint8_t priority;    // 0 normal, 1 urgent
  Place place;
};

constexpr uint32_t kNoHandle = 0xffffffffu;
// Handles in use (live and cancelled-but-queued) at most; the index then has at most 2^32 slots,
// so the 32 hash bits a slot keeps always cover its home position.
constexpr size_t kMaxMessages = 0xc0000000u;

class MessageTable {
 public:
  // Messages reachable by id.
  size_t size() const { return live_; }
  // Handles in use: live messages and cancelled ones still waiting in a queue.
  size_t handlesInUse() const { return live_ + retired_; }
  size_t retired() const { return retired_; }
  Message& at(uint32_t h) { return msgs_[h]; }
  const Message& at(uint32_t h) const { return msgs_[h]; }

  // kNoHandle when the id is not present.
  uint32_t find(double id) const;
  // Asks the CPU to fetch the index slot where find(id) starts (a hint: a batch loop issues it a few
  // ids ahead, so the index misses of a batch overlap instead of following one another). id must be valid
  // (a safe integer >= 0).
  void prefetch(double id) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hashOf(id) & (slots_.size() - 1)]);
  }
  // Adds a message with this id (which must not be present); returns its handle.
  uint32_t add(double id);
  // Drops the id from the index and frees the handle.
  void free(uint32_t h);
  // Drops the id from the index but keeps the handle (place Cancelled) until release(h).
  void retire(uint32_t h);
  // Frees the handle of a retired message.
  void release(uint32_t h);
  bool checkInvariants() const;
  size_t bytesReserved() const {
    return msgs_.capacity() * sizeof(Message) + freeList_.capacity() * 4 + slots_.capacity() * sizeof(uint64_t);
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  static uint32_t hashOf(double id);
  static uint64_t slotOf(uint32_t h, uint32_t hash) { return (static_cast<uint64_t>(hash) << 32) | h; }
  void unindex(uint32_t h);
  void grow();

  std::vector<Message> msgs_;
  std::vector<uint32_t> freeList_;
  std::vector<uint64_t> slots_;  // (hash << 32) | handle; kEmpty = empty
  size_t live_ = 0;
  size_t retired_ = 0;
};

}  // namespace mqc

// Every message the core knows, addressed by a dense 32-bit handle, plus the index from the MTA's
// numeric id to that handle (for cancel-by-id and duplicate checks). Handles are recycled through
// a free list; the index is open addressing over handles, comparing against the table's own ids,
// so it costs 4 bytes a slot.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mqc {

enum class Place : uint8_t { Free = 0, Active, Delayed, InFlight };

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
constexpr size_t kMaxMessages = 0xfffffff0u;

class MessageTable {
 public:
  size_t size() const { return live_; }
  Message& at(uint32_t h) { return msgs_[h]; }
  const Message& at(uint32_t h) const { return msgs_[h]; }

  // kNoHandle when the id is not present.
  uint32_t find(double id) const;
  // Adds a message with this id (which must not be present); returns its handle.
  uint32_t add(double id);
  // Frees a handle and drops its id from the index.
  void free(uint32_t h);
  bool checkInvariants() const;
  size_t bytesReserved() const {
    return msgs_.capacity() * sizeof(Message) + freeList_.capacity() * 4 + slots_.capacity() * 4;
  }

 private:
  size_t homeSlot(double id) const;
  void grow();

  std::vector<Message> msgs_;
  std::vector<uint32_t> freeList_;
  std::vector<uint32_t> slots_;  // open addressing, linear probing; kNoHandle = empty
  size_t live_ = 0;
};

}  // namespace mqc

// Every message the core knows, addressed by a dense 32-bit handle, plus the index from the MTA's
// numeric id to that handle (for cancel-by-id and duplicate checks). Handles are recycled through
// a free list. The index is open addressing (linear probing, load at most 3/4) over 4-byte slots:
// the handle (27 bits), the slot's distance from its id's home position (3 bits, 7 meaning 7 or
// more) and 2 bits of the id's hash. A probe at distance d reads a record only where the slot's
// distance is d (or, past 7, is far) and its hash bits match (a quarter of the ids that share the
// home), and a deletion moves slots back by their distances, reading a record only for a far
// slot, so a lookup at a million messages costs about one cache miss in the index and one in the
// table. Growth rehashes from the records,
// in handle order.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "run_key.hpp"

namespace mqc {

// Cancelled: taken out of the index by a lazy cancel but still an entry in an active queue, which
// drops it (and frees the handle) when it reaches the front or the queue is purged.
enum class Place : uint8_t { Free = 0, Active, Delayed, InFlight, Cancelled };

// 40 bytes: the insertion sequence, the priority and the place share one word.
struct Message {
  double id;           // the MTA's id: a safe integer, 0 <= id < 2^53
  double nextAttempt;  // queue time (ms since the epoch)
  double expiresAt;    // +infinity when it never expires
  uint32_t domain;
  uint16_t binding;
  uint16_t attempts;

  // Insertion sequence for this placement (56 bits: 7e16 placements, two thousand years at a
  // million a second). Together with nextAttempt it is the message's key in its queue.
  uint64_t seq() const { return bits_ & kSeqMask; }
  void setSeq(uint64_t s) { bits_ = (bits_ & ~kSeqMask) | (s & kSeqMask); }
  uint8_t priority() const { return static_cast<uint8_t>((bits_ >> kPriorityShift) & 1); }  // 0 normal, 1 urgent
  void setPriority(uint8_t p) {
    bits_ = (bits_ & ~(1ull << kPriorityShift)) | (static_cast<uint64_t>(p & 1) << kPriorityShift);
  }
  Place place() const { return static_cast<Place>((bits_ >> kPlaceShift) & 7); }
  void setPlace(Place p) { bits_ = (bits_ & ~(7ull << kPlaceShift)) | (static_cast<uint64_t>(p) << kPlaceShift); }

  static constexpr uint64_t kSeqMask = (1ull << 56) - 1;

 private:
  static constexpr int kPriorityShift = 56;
  static constexpr int kPlaceShift = 57;
  uint64_t bits_ = 0;
};
static_assert(sizeof(Message) == 40, "a message record is 40 bytes");

constexpr uint32_t kNoHandle = 0xffffffffu;
// Handles in use (live and cancelled-but-queued) at most: 2^27 - 1 (134M messages a core), so a
// handle fits the 27 bits an index slot keeps and no slot equals the empty mark.
constexpr size_t kMaxMessages = (1u << 27) - 1;

class MessageTable {
 public:
  // Messages reachable by id.
  size_t size() const { return live_; }
  // Handles in use: live messages and cancelled ones still waiting in a queue.
  size_t handlesInUse() const { return live_ + retired_; }
  size_t retired() const { return retired_; }
  // Whether h is a handle in the table whose message is reachable by id (not free, not cancelled).
  bool holds(uint32_t h) const { return h < msgs_.size() && indexed(h); }
  // Whether h is below the table's end (a record to read or fetch, in use or not): no read of it.
  bool inRange(uint32_t h) const { return h < msgs_.size(); }
  Message& at(uint32_t h) { return msgs_[h]; }
  const Message& at(uint32_t h) const { return msgs_[h]; }
  // The key of a queued message: every queue entry is a bare handle, ordered by this.
  RunKey keyOf(uint32_t h) const { return RunKey{msgs_[h].nextAttempt, msgs_[h].seq()}; }
  // Asks the CPU to fetch a record (a batch or a search issues it ahead of the read).
  void prefetchRecord(uint32_t h) const { __builtin_prefetch(&msgs_[h]); }

  // kNoHandle when the id is not present.
  uint32_t find(double id) const;
  // Asks the CPU to fetch the index slot where find(id) starts (a hint: a batch loop issues it a few
  // ids ahead, so the index misses of a batch overlap instead of following one another). id must be valid
  // (a safe integer >= 0).
  void prefetch(double id) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hashOf(id) & (slots_.size() - 1)]);
  }
  // The second stage of that hint, a few ids later, once the slot is in cache: fetches the records
  // that find(id) will compare (the slots at their own distance from id's home), so a batch's
  // record reads overlap too.
  void prefetchRecords(double id) const;
  // Adds a message with this id (which must not be present); returns its handle.
  uint32_t add(double id);
  // Drops the id from the index and frees the handle.
  void free(uint32_t h);
  // Drops the id from the index but keeps the handle (place Cancelled) until release(h).
  void retire(uint32_t h);
  // Frees the handle of a retired message.
  void release(uint32_t h);
  bool checkInvariants() const;
  // Calls f(message) for every message reachable by id (active, delayed or in flight), in handle
  // order.
  template <typename F>
  void forEachLive(F f) const {
    for (uint32_t h = 0; h < msgs_.size(); ++h)
      if (indexed(h)) f(msgs_[h]);
  }
  // Index slots whose distance from home is 7 or more (their distance is read from the record);
  // for tests that must reach them.
  size_t farSlots() const;
  size_t bytesReserved() const {
    return msgs_.capacity() * sizeof(Message) + freeList_.capacity() * 4 + slots_.capacity() * sizeof(uint32_t);
  }

 private:
  static constexpr uint32_t kEmpty = ~0u;
  static constexpr int kHandleBits = 27;
  static constexpr uint32_t kHandleMask = (1u << kHandleBits) - 1;
  static constexpr uint32_t kFarDistance = 7;  // a stored distance of 7 means 7 or more
  static constexpr int kTagShift = 30;         // the slot's top 2 bits: the hash's top 2 bits
  static uint64_t hashOf(double id);
  static uint32_t tagOf(uint64_t hash) { return static_cast<uint32_t>(hash >> 62); }
  static uint32_t distanceOf(uint32_t slot) { return (slot >> kHandleBits) & kFarDistance; }
  static uint32_t slotOf(uint32_t h, size_t distance, uint32_t tag) {
    return (tag << kTagShift) |
           (static_cast<uint32_t>(distance < kFarDistance ? distance : kFarDistance) << kHandleBits) | h;
  }
  template <typename Stop>
  uint32_t probe(double id, uint32_t maxDistance, Stop stop) const;
  // A live slot's exact distance from its home (reads the record only for a far one).
  size_t distanceAt(size_t i, uint32_t slot) const;
  // Puts h in the first empty slot from its id's home (the id must not be indexed).
  void place(uint32_t h, uint64_t hash);
  void unindex(uint32_t h);
  void grow();
  bool indexed(uint32_t h) const { return msgs_[h].place() != Place::Free && msgs_[h].place() != Place::Cancelled; }

  std::vector<Message> msgs_;
  std::vector<uint32_t> freeList_;
  std::vector<uint32_t> slots_;  // (tag << 30) | (distance << 27) | handle; kEmpty = empty
  size_t live_ = 0;
  size_t retired_ = 0;
};

}  // namespace mqc

#include "message_table.hpp"

#include "open_addressing.hpp"

namespace mqc {

uint64_t MessageTable::hashOf(double id) { return mix64(static_cast<uint64_t>(id)); }

// Walks id's probe chain from its home to the first empty slot (or `maxDistance` slots), calling
// stop(handle) for every slot that may hold id: an id with the same home sits at the same
// distance from it (a far slot, at any distance past 7), and the tag sorts out three quarters of
// those. Returns the handle stop() accepted, or kNoHandle.
template <typename Stop>
uint32_t MessageTable::probe(double id, uint32_t maxDistance, Stop stop) const {
  if (slots_.empty()) return kNoHandle;
  size_t mask = slots_.size() - 1;
  uint64_t hash = hashOf(id);
  uint32_t tag = tagOf(hash);
  size_t i = hash & mask;
  for (uint32_t d = 0; d < maxDistance; ++d, i = (i + 1) & mask) {
    uint32_t s = slots_[i];
    if (s == kEmpty) return kNoHandle;
    uint32_t sd = distanceOf(s);
    if ((sd == d || (sd == kFarDistance && d > kFarDistance)) && (s >> kTagShift) == tag && stop(s & kHandleMask))
      return s & kHandleMask;
  }
  return kNoHandle;
}

uint32_t MessageTable::find(double id) const {
  // The load is at most 3/4, so an empty slot ends every chain.
  return probe(id, ~0u, [&](uint32_t h) { return msgs_[h].id == id; });
}

void MessageTable::prefetchRecords(double id) const {
  probe(id, kFarDistance, [&](uint32_t h) {
    __builtin_prefetch(&msgs_[h]);
    return false;
  });
}

size_t MessageTable::distanceAt(size_t i, uint32_t slot) const {
  uint32_t sd = distanceOf(slot);
  if (sd < kFarDistance) return sd;
  return (i - hashOf(msgs_[slot & kHandleMask].id)) & (slots_.size() - 1);
}

void MessageTable::place(uint32_t h, uint64_t hash) {
  size_t mask = slots_.size() - 1;
  size_t i = hash & mask;
  size_t d = 0;
  while (slots_[i] != kEmpty) {
    i = (i + 1) & mask;
    ++d;
  }
  slots_[i] = slotOf(h, d, tagOf(hash));
}

void MessageTable::grow() {
  size_t cap = slots_.empty() ? 1024 : slots_.size() * 2;
  slots_.assign(cap, kEmpty);
  // From the records in handle order: the table streams through memory, the slots take the misses.
  for (uint32_t h = 0; h < msgs_.size(); ++h)
    if (indexed(h)) place(h, hashOf(msgs_[h].id));
}

uint32_t MessageTable::add(double id) {
  // Load factor at most 3/4: a cache line holds 16 slots, so a probe seldom leaves its first line.
  if ((live_ + 1) * 4 > slots_.size() * 3) grow();
  uint32_t h;
  if (!freeList_.empty()) {
    h = freeList_.back();
    freeList_.pop_back();
  } else {
    h = static_cast<uint32_t>(msgs_.size());
    msgs_.push_back(Message{});
  }
  Message& m = msgs_[h];
  m = Message{};
  m.id = id;
  m.setPlace(Place::Active);  // the caller sets the real place before returning to JS
  place(h, hashOf(id));
  ++live_;
  return h;
}

void MessageTable::unindex(uint32_t h) {
  size_t mask = slots_.size() - 1;
  size_t i = hashOf(msgs_[h].id) & mask;
  while ((slots_[i] & kHandleMask) != h) i = (i + 1) & mask;  // kEmpty holds no valid handle
  // Backward shift: a later slot of the chain moves into the hole when its home is not after the
  // hole, which its distance tells without reading its record.
  size_t hole = i;
  for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
    uint32_t s = slots_[j];
    if (s == kEmpty) break;
    size_t d = distanceAt(j, s);
    size_t gap = (j - hole) & mask;
    if (d >= gap) {
      slots_[hole] = slotOf(s & kHandleMask, d - gap, s >> kTagShift);
      hole = j;
    }
  }
  slots_[hole] = kEmpty;
  --live_;
}

void MessageTable::free(uint32_t h) {
  unindex(h);
  msgs_[h].setPlace(Place::Free);
  freeList_.push_back(h);
}

void MessageTable::retire(uint32_t h) {
  unindex(h);
  msgs_[h].setPlace(Place::Cancelled);
  ++retired_;
}

void MessageTable::release(uint32_t h) {
  msgs_[h].setPlace(Place::Free);
  freeList_.push_back(h);
  --retired_;
}

size_t MessageTable::farSlots() const {
  size_t n = 0;
  for (uint32_t s : slots_)
    if (s != kEmpty && distanceOf(s) == kFarDistance) ++n;
  return n;
}

bool MessageTable::checkInvariants() const {
  size_t live = 0, retired = 0;
  for (uint32_t h = 0; h < msgs_.size(); ++h) {
    Place p = msgs_[h].place();
    if (p == Place::Free) continue;
    if (p == Place::Cancelled) {
      ++retired;
      continue;
    }
    ++live;
    if (find(msgs_[h].id) != h) return false;
  }
  size_t indexed = 0;
  size_t mask = slots_.size() - 1;
  for (size_t i = 0; i < slots_.size(); ++i) {
    uint32_t s = slots_[i];
    if (s == kEmpty) continue;
    ++indexed;
    uint32_t h = s & kHandleMask;
    if (h >= msgs_.size() || !this->indexed(h)) return false;
    // The stored distance is the slot's distance from its id's home (capped), and no empty slot
    // lies between the two.
    uint64_t hash = hashOf(msgs_[h].id);
    size_t home = hash & mask;
    size_t d = (i - home) & mask;
    if (distanceOf(s) != (d < kFarDistance ? d : kFarDistance) || (s >> kTagShift) != tagOf(hash)) return false;
    for (size_t k = home; k != i; k = (k + 1) & mask)
      if (slots_[k] == kEmpty) return false;
  }
  return live == live_ && retired == retired_ && indexed == live_ &&
         live_ + retired_ + freeList_.size() == msgs_.size();
}

}  // namespace mqc

#include "message_table.hpp"

#include "open_addressing.hpp"

namespace mqc {

uint32_t MessageTable::hashOf(double id) { return static_cast<uint32_t>(mix64(static_cast<uint64_t>(id))); }

uint32_t MessageTable::find(double id) const {
  if (slots_.empty()) return kNoHandle;
  uint32_t hash = hashOf(id);
  size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    uint64_t s = slots_[i];
    if (s == kEmpty) return kNoHandle;
    if (static_cast<uint32_t>(s >> 32) == hash) {
      uint32_t h = static_cast<uint32_t>(s);
      if (msgs_[h].id == id) return h;
    }
  }
}

void MessageTable::grow() {
  std::vector<uint64_t> old;
  old.swap(slots_);
  size_t cap = old.empty() ? 1024 : old.size() * 2;
  slots_.assign(cap, kEmpty);
  size_t mask = cap - 1;
  for (uint64_t s : old) {
    if (s == kEmpty) continue;
    size_t i = static_cast<uint32_t>(s >> 32) & mask;
    while (slots_[i] != kEmpty) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

uint32_t MessageTable::add(double id) {
  // Load factor at most 3/4: with the hash beside the handle, a probe reads 8 slots a cache line.
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
  m.place = Place::Active;  // the caller sets the real place before returning to JS
  uint32_t hash = hashOf(id);
  size_t mask = slots_.size() - 1;
  size_t i = hash & mask;
  while (slots_[i] != kEmpty) i = (i + 1) & mask;
  slots_[i] = slotOf(h, hash);
  ++live_;
  return h;
}

void MessageTable::unindex(uint32_t h) {
  size_t mask = slots_.size() - 1;
  uint32_t hash = hashOf(msgs_[h].id);
  uint64_t want = slotOf(h, hash);
  size_t i = hash & mask;
  while (slots_[i] != want) i = (i + 1) & mask;
  eraseSlot(slots_, i, kEmpty, [](uint64_t o) { return o == kEmpty; },
            [](uint64_t o) { return static_cast<size_t>(static_cast<uint32_t>(o >> 32)); });
  --live_;
}

void MessageTable::free(uint32_t h) {
  unindex(h);
  msgs_[h].place = Place::Free;
  freeList_.push_back(h);
}

void MessageTable::retire(uint32_t h) {
  unindex(h);
  msgs_[h].place = Place::Cancelled;
  ++retired_;
}

void MessageTable::release(uint32_t h) {
  msgs_[h].place = Place::Free;
  freeList_.push_back(h);
  --retired_;
}

bool MessageTable::checkInvariants() const {
  size_t live = 0, retired = 0;
  for (uint32_t h = 0; h < msgs_.size(); ++h) {
    Place p = msgs_[h].place;
    if (p == Place::Free) continue;
    if (p == Place::Cancelled) {
      ++retired;
      continue;
    }
    ++live;
    if (find(msgs_[h].id) != h) return false;
  }
  size_t indexed = 0;
  for (uint64_t s : slots_) {
    if (s == kEmpty) continue;
    ++indexed;
    uint32_t h = static_cast<uint32_t>(s);
    if (h >= msgs_.size() || static_cast<uint32_t>(s >> 32) != hashOf(msgs_[h].id)) return false;
  }
  return live == live_ && retired == retired_ && indexed == live_ &&
         live_ + retired_ + freeList_.size() == msgs_.size();
}

}  // namespace mqc

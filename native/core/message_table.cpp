#include "message_table.hpp"

namespace mqc {

namespace {
uint64_t mix(uint64_t x) {  // splitmix64 finaliser: ids are often sequential
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}
}  // namespace

size_t MessageTable::homeSlot(double id) const {
  return static_cast<size_t>(mix(static_cast<uint64_t>(id))) & (slots_.size() - 1);
}

uint32_t MessageTable::find(double id) const {
  if (slots_.empty()) return kNoHandle;
  size_t mask = slots_.size() - 1;
  for (size_t i = homeSlot(id);; i = (i + 1) & mask) {
    uint32_t h = slots_[i];
    if (h == kNoHandle) return kNoHandle;
    if (msgs_[h].id == id) return h;
  }
}

void MessageTable::grow() {
  size_t cap = slots_.empty() ? 1024 : slots_.size() * 2;
  slots_.assign(cap, kNoHandle);
  size_t mask = cap - 1;
  for (uint32_t h = 0; h < msgs_.size(); ++h) {
    if (msgs_[h].place == Place::Free) continue;
    size_t i = homeSlot(msgs_[h].id);
    while (slots_[i] != kNoHandle) i = (i + 1) & mask;
    slots_[i] = h;
  }
}

uint32_t MessageTable::add(double id) {
  // Load factor at most 1/2: probes stay short even with clustered ids.
  if ((live_ + 1) * 2 > slots_.size()) grow();
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
  size_t mask = slots_.size() - 1;
  size_t i = homeSlot(id);
  while (slots_[i] != kNoHandle) i = (i + 1) & mask;
  slots_[i] = h;
  ++live_;
  return h;
}

void MessageTable::free(uint32_t h) {
  size_t mask = slots_.size() - 1;
  size_t i = homeSlot(msgs_[h].id);
  while (slots_[i] != h) i = (i + 1) & mask;
  // Backward-shift deletion keeps every probe chain unbroken without tombstones.
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    uint32_t o = slots_[j];
    if (o == kNoHandle) break;
    size_t home = homeSlot(msgs_[o].id);
    // Move o into the hole at i if its home does not lie cyclically in (i, j].
    bool between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
    if (!between) {
      slots_[i] = o;
      i = j;
    }
  }
  slots_[i] = kNoHandle;
  msgs_[h].place = Place::Free;
  freeList_.push_back(h);
  --live_;
}

bool MessageTable::checkInvariants() const {
  size_t live = 0;
  for (uint32_t h = 0; h < msgs_.size(); ++h) {
    if (msgs_[h].place == Place::Free) continue;
    ++live;
    if (find(msgs_[h].id) != h) return false;
  }
  size_t indexed = 0;
  for (uint32_t h : slots_) if (h != kNoHandle) ++indexed;
  return live == live_ && indexed == live_ && live_ + freeList_.size() == msgs_.size();
}

}  // namespace mqc

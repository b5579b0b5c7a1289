#include "lease_table.hpp"

#include "open_addressing.hpp"

namespace mqc {

// Ids are issued in sequence: eight in a row share a home group (128 bytes of slots), placed
// by a mix of the id's high bits. A pass that opens many connections, and the releases that follow
// in about the same order, then touch a new group of lines every eight leases instead of every
// lease; the groups themselves land at random, so long-lived leases among the sequence do not pile
// up into one cluster (as they did with the bare id: the scheduler cycle ran ten times slower).
size_t LeaseTable::hashOf(uint64_t id) { return static_cast<size_t>((mix64(id >> 3) << 3) | (id & 7)); }

size_t LeaseTable::longestProbe() const {
  size_t longest = 0;
  size_t mask = slots_.size() - 1;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].connectionId == 0) continue;
    size_t d = (i - hashOf(static_cast<uint64_t>(slots_[i].connectionId))) & mask;
    if (d > longest) longest = d;
  }
  return longest;
}

Grant* LeaseTable::find(uint64_t id) {
  if (slots_.empty() || id == 0) return nullptr;
  size_t mask = slots_.size() - 1;
  for (size_t i = hashOf(id) & mask;; i = (i + 1) & mask) {
    Grant& g = slots_[i];
    if (g.connectionId == 0) return nullptr;
    if (static_cast<uint64_t>(g.connectionId) == id) return &g;
  }
}

void LeaseTable::grow() {
  std::vector<Grant> old;
  old.swap(slots_);
  slots_.assign(old.empty() ? 64 : old.size() * 2, Grant{0, 0, 0});
  size_t mask = slots_.size() - 1;
  for (const Grant& g : old) {
    if (g.connectionId == 0) continue;
    size_t i = hashOf(static_cast<uint64_t>(g.connectionId)) & mask;
    while (slots_[i].connectionId != 0) i = (i + 1) & mask;
    slots_[i] = g;
  }
}

void LeaseTable::insert(const Grant& g) {
  if ((size_ + 1) * 2 > slots_.size()) grow();
  size_t mask = slots_.size() - 1;
  size_t i = hashOf(static_cast<uint64_t>(g.connectionId)) & mask;
  while (slots_[i].connectionId != 0) i = (i + 1) & mask;
  slots_[i] = g;
  ++size_;
}

bool LeaseTable::erase(uint64_t id, Grant* out) {
  Grant* found = find(id);
  if (found == nullptr) return false;
  *out = *found;
  eraseSlot(
      slots_, static_cast<size_t>(found - slots_.data()), Grant{0, 0, 0},
      [](const Grant& o) { return o.connectionId == 0; },
      [](const Grant& o) { return hashOf(static_cast<uint64_t>(o.connectionId)); });
  --size_;
  return true;
}

}  // namespace mqc

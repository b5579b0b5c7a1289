// Shared pieces of the core's open-addressing tables: the hash (the message id index and the lease
// table) and backward-shift deletion for linear probing by home position (the lease table; the id
// index shifts by the distances its slots keep).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mqc {

// splitmix64's finaliser: ids and connection ids are often sequential, so they need mixing.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// Empties slot i of a linear-probing table (size a power of two) and moves later entries of its
// probe chain back, so every chain stays unbroken without tombstones. homeOf(slot) is an entry's
// home position; isEmpty(slot) tells an empty slot.
template <typename Slot, typename IsEmpty, typename HomeOf>
void eraseSlot(std::vector<Slot>& slots, size_t i, const Slot& empty, IsEmpty isEmpty, HomeOf homeOf) {
  size_t mask = slots.size() - 1;
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    const Slot& o = slots[j];
    if (isEmpty(o)) break;
    size_t home = homeOf(o) & mask;
    // Move o into the hole at i if its home does not lie cyclically in (i, j].
    bool between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
    if (!between) {
      slots[i] = o;
      i = j;
    }
  }
  slots[i] = empty;
}

}  // namespace mqc

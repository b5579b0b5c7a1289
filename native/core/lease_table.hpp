// The open connections (leases) of a ledger, by connection id: open addressing with linear probing
// over 16-byte slots (the grant itself), load at most 1/2, backward-shift deletion. Ids are whole
// numbers from 1, so 0 marks an empty slot. No allocation per lease, unlike a node-based map.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mqc {

struct Grant {
  double connectionId;
  uint32_t domain;
  uint32_t binding;
};

class LeaseTable {
 public:
  size_t size() const { return size_; }
  // The lease with this id, or nullptr.
  Grant* find(uint64_t id);
  const Grant* find(uint64_t id) const { return const_cast<LeaseTable*>(this)->find(id); }
  // A hint: fetch the slot where find(id) starts (no read).
  void prefetch(uint64_t id) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hashOf(id) & (slots_.size() - 1)]);
  }
  // Adds a lease whose id is not present.
  void insert(const Grant& g);
  // Removes the lease with this id into *out; false when absent.
  bool erase(uint64_t id, Grant* out);
  template <typename Fn>
  void forEach(Fn fn) const {
    for (const Grant& g : slots_)
      if (g.connectionId != 0) fn(g);
  }
  size_t bytesReserved() const { return slots_.capacity() * sizeof(Grant); }
  // The farthest any lease sits from its home slot (tests: the hash must keep chains short).
  size_t longestProbe() const;

 private:
  static size_t hashOf(uint64_t id);
  void grow();

  std::vector<Grant> slots_;  // connectionId 0 = empty
  size_t size_ = 0;
};

}  // namespace mqc

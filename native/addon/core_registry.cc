#include "core_registry.hpp"

#include <cmath>

namespace mqc_addon {

namespace {
constexpr double kMaxGeneration = 4294967295.0;  // the generation is 32 bits; handles stay below 2^52
}

CoreRegistry::CoreRegistry() {
  // A per-registry starting generation, derived from this object's address (distinct for every
  // registry alive at once).
  uint64_t x = reinterpret_cast<uintptr_t>(this);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  firstGeneration_ = static_cast<uint32_t>(x & 0xfffffu);
}

CoreRegistry::~CoreRegistry() = default;

double CoreRegistry::add(std::unique_ptr<mqc::Core> core) {
  uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    if (slots_.size() >= static_cast<size_t>(kSlotSpan)) return -1;
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
    slots_.back().generation = firstGeneration_;
  }
  CoreSlot& s = slots_[slot];
  s.core = std::move(core);
  return static_cast<double>(s.generation) * kSlotSpan + slot;
}

CoreSlot* CoreRegistry::find(double handle) {
  // On every call: integer arithmetic once the double is known to be a whole number in range.
  if (!(handle >= 0 && handle <= 9007199254740991.0)) return nullptr;
  uint64_t h = static_cast<uint64_t>(handle);
  if (static_cast<double>(h) != handle) return nullptr;
  uint64_t slot = h & 0xfffffu;
  uint64_t gen = h >> 20;
  if (slot >= slots_.size()) return nullptr;
  CoreSlot& s = slots_[slot];
  if (!s.core || s.generation != gen) return nullptr;
  return &s;
}

bool CoreRegistry::remove(double handle) {
  CoreSlot* s = find(handle);
  if (s == nullptr) return false;
  s->core.reset();
  s->generation = static_cast<double>(s->generation) + 1 > kMaxGeneration ? 0 : s->generation + 1;
  free_.push_back(static_cast<uint32_t>(s - slots_.data()));
  return true;
}

}  // namespace mqc_addon

// Per-environment state of the addon: the cores created in this environment (main thread or one
// worker), addressed from JavaScript by a numeric handle (generation * 2^20 + slot). A handle of a
// closed core or a made-up number is refused, never dereferenced. Generations start at a value
// drawn per registry, so a handle carried over from another environment is refused too (with high
// probability; either way it can only ever reach a live core of this environment). Nothing here is
// global: each environment that loads the addon gets its own registry, freed with it.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "../core/core.hpp"

namespace mqc_addon {

constexpr double kSlotSpan = 1048576.0;  // 2^20 slots

struct CoreSlot {
  std::unique_ptr<mqc::Core> core;
  uint32_t generation = 0;
};

class CoreRegistry {
 public:
  CoreRegistry();
  ~CoreRegistry();
  double add(std::unique_ptr<mqc::Core> core);
  CoreSlot* find(double handle);
  bool remove(double handle);

 private:
  std::vector<CoreSlot> slots_;
  std::vector<uint32_t> free_;
  uint32_t firstGeneration_;
};

}  // namespace mqc_addon

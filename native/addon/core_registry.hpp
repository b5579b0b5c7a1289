// Per-environment state of the addon: the cores created in this environment (main thread or one
// worker), addressed from JavaScript by a numeric handle (generation * 2^20 + slot). A handle of a
// closed core or a made-up number is refused, never dereferenced. Generations start at a value
// drawn per registry, so a handle carried over from another environment is refused too (with high
// probability; either way it can only ever reach a live core of this environment). Nothing here is
// global: each environment that loads the addon gets its own registry, freed with it.
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "../core/core.hpp"

namespace mqc_addon {

constexpr double kSlotSpan = 1048576.0;  // 2^20 slots

struct CoreSlot {
  std::unique_ptr<mqc::Core> core;
  // The JS-owned buffer the core's counters are copied into, and where the view starts in it. The
  // pointer is looked up again at every copy: the buffer may be detached or (if resizable) shrunk.
  Napi::Reference<Napi::ArrayBuffer> counters;
  size_t countersOffset = 0;
  size_t countersLength = 0;
  uint32_t generation = 0;
};

class CoreRegistry {
 public:
  CoreRegistry();
  ~CoreRegistry();
  double add(std::unique_ptr<mqc::Core> core, Napi::ArrayBuffer counters, size_t byteOffset, size_t length);
  CoreSlot* find(double handle);
  bool remove(double handle);
  // Copies the core's counters into its JS view, as far as the buffer still reaches.
  void sync(Napi::Env env, CoreSlot* slot);
  void tearingDown() { tearingDown_ = true; }

 private:
  std::vector<CoreSlot> slots_;
  std::vector<uint32_t> free_;
  uint32_t firstGeneration_;
  bool tearingDown_ = false;
};

}  // namespace mqc_addon

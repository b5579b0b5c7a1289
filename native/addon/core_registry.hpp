// Per-environment state of the addon: the cores created in this environment (main thread or one
// worker), addressed from JavaScript by a numeric handle (slot + generation). A handle of a closed
// core, of another environment or a made-up number is refused, never dereferenced. Nothing here is
// global: each environment that loads the addon gets its own registry, freed with it.
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "../core/core.hpp"

namespace mqc_addon {

constexpr double kSlotSpan = 1048576.0;  // 2^20 slots; handle = generation * 2^20 + slot

struct CoreSlot {
  std::unique_ptr<mqc::Core> core;
  Napi::Reference<Napi::ArrayBuffer> counters;  // JS-owned; the core's counters are copied in
  double* countersData = nullptr;
  size_t countersLength = 0;
  uint32_t generation = 0;
};

class CoreRegistry {
 public:
  ~CoreRegistry();
  double add(std::unique_ptr<mqc::Core> core, Napi::ArrayBuffer counters, double* data, size_t length);
  CoreSlot* find(double handle);
  bool remove(double handle);
  // Copies the core's counters into its JS view; skipped if the buffer was detached.
  void sync(Napi::Env env, CoreSlot* slot);
  void tearingDown() { tearingDown_ = true; }

 private:
  std::vector<CoreSlot> slots_;
  std::vector<uint32_t> free_;
  bool tearingDown_ = false;
};

}  // namespace mqc_addon

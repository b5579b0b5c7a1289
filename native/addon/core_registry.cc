#include "core_registry.hpp"

#include <cmath>
#include <cstring>

namespace mqc_addon {

CoreRegistry::~CoreRegistry() {
  // At environment teardown Node frees the remaining references itself; deleting them here could
  // touch a dying environment, so they are let go.
  for (CoreSlot& s : slots_)
    if (!s.counters.IsEmpty()) s.counters.SuppressDestruct();
}

double CoreRegistry::add(std::unique_ptr<mqc::Core> core, Napi::ArrayBuffer counters, double* data,
                         size_t length) {
  uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    if (slots_.size() >= static_cast<size_t>(kSlotSpan)) return -1;
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  CoreSlot& s = slots_[slot];
  s.core = std::move(core);
  s.counters = Napi::Persistent(counters);
  s.countersData = data;
  s.countersLength = length;
  return static_cast<double>(s.generation) * kSlotSpan + slot;
}

CoreSlot* CoreRegistry::find(double handle) {
  if (!(handle >= 0) || std::floor(handle) != handle || handle > 9007199254740991.0) return nullptr;
  double gen = std::floor(handle / kSlotSpan);
  double slot = handle - gen * kSlotSpan;
  if (slot >= static_cast<double>(slots_.size())) return nullptr;
  CoreSlot& s = slots_[static_cast<size_t>(slot)];
  if (!s.core || static_cast<double>(s.generation) != gen) return nullptr;
  return &s;
}

bool CoreRegistry::remove(double handle) {
  CoreSlot* s = find(handle);
  if (s == nullptr) return false;
  s->core.reset();
  s->counters.Reset();
  s->countersData = nullptr;
  ++s->generation;
  free_.push_back(static_cast<uint32_t>(s - slots_.data()));
  return true;
}

void CoreRegistry::sync(Napi::Env env, CoreSlot* s) {
  if (tearingDown_ || s->countersData == nullptr) return;
  napi_value ab = s->counters.Value();
  bool detached = true;
  if (ab == nullptr || napi_is_detached_arraybuffer(env, ab, &detached) != napi_ok || detached) {
    s->countersData = nullptr;  // never write through a pointer the engine may have freed
    return;
  }
  size_t n = s->core->counterCount();
  if (n > s->countersLength) n = s->countersLength;
  std::memcpy(s->countersData, s->core->counters(), n * sizeof(double));
}

}  // namespace mqc_addon

#include "active_queue.hpp"

namespace mqc {

void ActiveQueue::insert(RunNodePool* pool, uint8_t priority, uint32_t handle) {
  auto& list = lists_[priority];
  if (!list) list = newList(pool, priority, handle);
  list->insert(handle);
  ++size_;
}

bool ActiveQueue::remove(uint8_t priority, uint32_t handle) {
  auto& list = lists_[priority];
  if (!list || !list->remove(handle)) return false;
  --size_;
  if (list->empty()) list.reset();
  return true;
}

bool ActiveQueue::checkInvariants() const {
  size_t total = 0;
  for (const auto& list : lists_) {
    if (!list) continue;
    if (list->empty() || !list->checkInvariants()) return false;
    total += list->size();
  }
  return total == size_ + dead_;
}

}  // namespace mqc

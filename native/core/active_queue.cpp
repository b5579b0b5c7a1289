#include "active_queue.hpp"

namespace mqc {

void ActiveQueue::insert(RunNodePool* pool, uint8_t priority, const RunKey& k, uint32_t handle) {
  auto& list = lists_[priority];
  if (!list) list.reset(new RunSkiplist(pool, k.seq * 0x9e3779b97f4a7c15ull + priority + 1));
  list->insert(k, handle);
  ++size_;
}

bool ActiveQueue::remove(uint8_t priority, const RunKey& k) {
  auto& list = lists_[priority];
  if (!list || !list->remove(k)) return false;
  --size_;
  if (list->empty()) list.reset();
  return true;
}

size_t ActiveQueue::popFront(uint32_t* out, size_t k) {
  size_t got = 0;
  for (int p = kPriorities - 1; p >= 0 && got < k; --p) {
    auto& list = lists_[p];
    if (!list) continue;
    got += list->popFront(out + got, k - got);
    if (list->empty()) list.reset();
  }
  size_ -= got;
  return got;
}

size_t ActiveQueue::peek(size_t offset, uint32_t* out, size_t k) const {
  size_t got = 0;
  for (int p = kPriorities - 1; p >= 0 && got < k; --p) {
    const auto& list = lists_[p];
    if (!list) continue;
    if (offset >= list->size()) {
      offset -= list->size();
      continue;
    }
    got += list->peek(offset, out + got, k - got);
    offset = 0;
  }
  return got;
}

bool ActiveQueue::checkInvariants() const {
  size_t total = 0;
  for (const auto& list : lists_) {
    if (!list) continue;
    if (list->empty() || !list->checkInvariants()) return false;
    total += list->size();
  }
  return total == size_;
}

}  // namespace mqc

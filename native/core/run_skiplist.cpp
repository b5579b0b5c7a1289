#include "run_skiplist.hpp"

#include <cstring>

namespace mqc {

namespace {
// Position of k in a sorted run: first index whose key is not less than k.
int lowerBound(const RunNode* n, const RunKey& k) {
  int lo = n->begin, hi = n->end;
  while (lo < hi) {
    int mid = (lo + hi) >> 1;
    if (keyLess(n->keys[mid], k)) lo = mid + 1; else hi = mid;
  }
  return lo;
}
}  // namespace

RunSkiplist::RunSkiplist(RunNodePool* pool, uint64_t seed) : pool_(pool), rng_(seed | 1) {
  for (auto& h : head_) h = nullptr;
}

RunSkiplist::~RunSkiplist() {
  RunNode* n = head_[0];
  while (n != nullptr) {
    RunNode* next = n->next[0];
    pool_->release(n);
    n = next;
  }
}

int RunSkiplist::randomHeight() {
  // xorshift64*: per-list state, no global RNG (the addon may run in several threads at once).
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  uint64_t r = rng_ * 0x2545F4914F6CDD1Dull;
  int h = 1;
  while (h < kMaxLevel && (r & 3) == 0) {  // p = 1/4
    ++h;
    r >>= 2;
  }
  return h;
}

RunNode* RunSkiplist::findPreds(const RunKey& k, RunNode** upd[kMaxLevel]) const {
  RunNode** links = const_cast<RunNode**>(head_);
  RunNode* pred = nullptr;
  for (int l = kMaxLevel - 1; l >= level_; --l) upd[l] = &const_cast<RunNode**>(head_)[l];
  for (int l = level_ - 1; l >= 0; --l) {
    while (links[l] != nullptr && keyLess(links[l]->firstKey(), k)) {
      pred = links[l];
      links = pred->next;
    }
    upd[l] = &links[l];
  }
  return pred;
}

RunNode* RunSkiplist::newNodeAfter(RunNode* prev, int height, RunNode** upd[kMaxLevel]) {
  RunNode* n = pool_->acquire(height);
  for (int l = 0; l < height; ++l) {
    // Below prev's height prev itself is the predecessor; above it, the search path's slot is.
    RunNode** slot = (prev != nullptr && l < prev->height) ? &prev->next[l] : upd[l];
    n->next[l] = *slot;
    *slot = n;
  }
  if (height > level_) level_ = height;
  if (prev == tail_) tail_ = n;
  return n;
}

void RunSkiplist::unlink(RunNode* n, RunNode** upd[kMaxLevel]) {
  for (int l = 0; l < n->height; ++l) *upd[l] = n->next[l];
  pool_->release(n);
  shrinkLevel();
}

void RunSkiplist::shrinkLevel() {
  while (level_ > 0 && head_[level_ - 1] == nullptr) --level_;
}

void RunSkiplist::compact(RunNode* n) {
  if (n->begin == 0) return;
  int c = n->count();
  std::memmove(&n->keys[0], &n->keys[n->begin], sizeof(RunKey) * c);
  std::memmove(&n->handles[0], &n->handles[n->begin], sizeof(uint32_t) * c);
  n->begin = 0;
  n->end = static_cast<uint16_t>(c);
}

void RunSkiplist::insertInto(RunNode* n, int pos, const RunKey& k, uint32_t handle) {
  // Precondition: n has room (count < capacity). Shift whichever side is cheaper and possible.
  if (pos == n->begin && n->begin > 0) {
    --n->begin;
    n->keys[n->begin] = k;
    n->handles[n->begin] = handle;
    return;
  }
  if (n->end == kRunCapacity) {
    int shift = n->begin;  // > 0 because count < capacity
    compact(n);
    pos -= shift;
  }
  int tailCount = n->end - pos;
  std::memmove(&n->keys[pos + 1], &n->keys[pos], sizeof(RunKey) * tailCount);
  std::memmove(&n->handles[pos + 1], &n->handles[pos], sizeof(uint32_t) * tailCount);
  n->keys[pos] = k;
  n->handles[pos] = handle;
  ++n->end;
}

void RunSkiplist::eraseAt(RunNode* n, int pos) {
  if (pos - n->begin < n->end - 1 - pos) {
    int c = pos - n->begin;
    std::memmove(&n->keys[n->begin + 1], &n->keys[n->begin], sizeof(RunKey) * c);
    std::memmove(&n->handles[n->begin + 1], &n->handles[n->begin], sizeof(uint32_t) * c);
    ++n->begin;
  } else {
    int c = n->end - 1 - pos;
    std::memmove(&n->keys[pos], &n->keys[pos + 1], sizeof(RunKey) * c);
    std::memmove(&n->handles[pos], &n->handles[pos + 1], sizeof(uint32_t) * c);
    --n->end;
  }
  if (n->begin == n->end) n->begin = n->end = 0;
}

void RunSkiplist::insert(const RunKey& k, uint32_t handle) {
  ++size_;
  // FIFO fast path: at or after the tail's last key, append to the tail run.
  if (tail_ != nullptr && !keyLess(k, tail_->lastKey())) {
    if (tail_->count() < kRunCapacity) {
      if (tail_->end == kRunCapacity) compact(tail_);
      tail_->keys[tail_->end] = k;
      tail_->handles[tail_->end] = handle;
      ++tail_->end;
      return;
    }
    int h = randomHeight();
    RunNode** upd[kMaxLevel];
    // Levels below the tail's height link through the tail itself; only a taller node needs the
    // search path (one append in kRunCapacity, and then rarely: amortised O(1)).
    if (h > tail_->height) findPreds(k, upd);
    RunNode* n = newNodeAfter(tail_, h, upd);
    n->keys[0] = k;
    n->handles[0] = handle;
    n->end = 1;
    return;
  }
  RunNode** upd[kMaxLevel];
  RunNode* pred = findPreds(k, upd);
  if (head_[0] == nullptr) {  // empty list
    RunNode* n = newNodeAfter(nullptr, randomHeight(), upd);
    n->keys[0] = k;
    n->handles[0] = handle;
    n->end = 1;
    return;
  }
  RunNode* target = pred != nullptr ? pred : head_[0];
  int pos = lowerBound(target, k);
  if (target->count() < kRunCapacity) {
    insertInto(target, pos, k, handle);
    return;
  }
  // Split: the upper half of the run moves to a new node right after target.
  compact(target);
  pos = lowerBound(target, k);
  RunNode* n = newNodeAfter(target, randomHeight(), upd);
  int half = kRunCapacity / 2;
  int moved = kRunCapacity - half;
  std::memcpy(&n->keys[0], &target->keys[half], sizeof(RunKey) * moved);
  std::memcpy(&n->handles[0], &target->handles[half], sizeof(uint32_t) * moved);
  n->end = static_cast<uint16_t>(moved);
  target->end = static_cast<uint16_t>(half);
  if (pos <= half) insertInto(target, pos, k, handle);
  else insertInto(n, pos - half, k, handle);
}

bool RunSkiplist::remove(const RunKey& k) {
  if (size_ == 0) return false;
  RunNode** upd[kMaxLevel];
  RunNode* pred = findPreds(k, upd);
  RunNode* n;
  if (pred != nullptr && !keyLess(pred->lastKey(), k)) {
    n = pred;  // k lies inside pred's run (not its first key)
  } else {
    n = pred != nullptr ? pred->next[0] : head_[0];
    if (n == nullptr || !keyEqual(n->firstKey(), k)) return false;
  }
  int pos = lowerBound(n, k);
  if (pos >= n->end || !keyEqual(n->keys[pos], k)) return false;
  --size_;
  eraseAt(n, pos);
  if (n->count() == 0) {
    // Only a node whose first key was k can empty, so upd[] holds exactly its link slots.
    if (tail_ == n) tail_ = pred;
    unlink(n, upd);
    return true;
  }
  // Merge a thin run into this one so that scattered removals do not leave many near-empty nodes.
  RunNode* next = n->next[0];
  if (next != nullptr && n->count() < kRunCapacity / 4 &&
      n->count() + next->count() <= kRunCapacity * 3 / 4) {
    compact(n);
    int c = next->count();
    std::memcpy(&n->keys[n->end], &next->keys[next->begin], sizeof(RunKey) * c);
    std::memcpy(&n->handles[n->end], &next->handles[next->begin], sizeof(uint32_t) * c);
    n->end = static_cast<uint16_t>(n->end + c);
    RunNode** nupd[kMaxLevel];
    for (int l = 0; l < next->height; ++l) nupd[l] = l < n->height ? &n->next[l] : upd[l];
    if (tail_ == next) tail_ = n;
    unlink(next, nupd);
  }
  return true;
}

size_t RunSkiplist::popFront(uint32_t* out, size_t k) {
  size_t got = 0;
  while (got < k && head_[0] != nullptr) {
    RunNode* n = head_[0];
    size_t take = static_cast<size_t>(n->count());
    if (take > k - got) take = k - got;
    std::memcpy(out + got, &n->handles[n->begin], sizeof(uint32_t) * take);
    n->begin = static_cast<uint16_t>(n->begin + take);
    got += take;
    if (n->begin == n->end) {
      // The head node is first at every level it is on.
      for (int l = 0; l < n->height; ++l) head_[l] = n->next[l];
      if (tail_ == n) tail_ = nullptr;
      pool_->release(n);
      shrinkLevel();
    }
  }
  size_ -= got;
  return got;
}

size_t RunSkiplist::peek(size_t offset, uint32_t* out, size_t k) const {
  size_t got = 0;
  const RunNode* n = head_[0];
  while (n != nullptr && offset >= static_cast<size_t>(n->count())) {
    offset -= n->count();
    n = n->next[0];
  }
  while (n != nullptr && got < k) {
    for (int i = n->begin + static_cast<int>(offset); i < n->end && got < k; ++i) out[got++] = n->handles[i];
    offset = 0;
    n = n->next[0];
  }
  return got;
}

size_t RunSkiplist::nodeCount() const {
  size_t c = 0;
  for (const RunNode* n = head_[0]; n != nullptr; n = n->next[0]) ++c;
  return c;
}

bool RunSkiplist::checkInvariants() const {
  size_t count = 0;
  const RunNode* last = nullptr;
  const RunKey* prevKey = nullptr;
  for (const RunNode* n = head_[0]; n != nullptr; n = n->next[0]) {
    if (n->count() <= 0 || n->count() > kRunCapacity || n->end > kRunCapacity) return false;
    if (n->height < 1 || n->height > level_) return false;
    for (int i = n->begin; i < n->end; ++i) {
      if (prevKey != nullptr && !keyLess(*prevKey, n->keys[i])) return false;
      prevKey = &n->keys[i];
    }
    count += n->count();
    last = n;
  }
  if (count != size_ || last != tail_) return false;
  // Every higher level is a subsequence of level 0, in order, holding exactly the tall nodes.
  for (int l = 1; l < kMaxLevel; ++l) {
    const RunNode* at = head_[l];
    for (const RunNode* n = head_[0]; n != nullptr; n = n->next[0]) {
      if (n->height > l) {
        if (at != n) return false;
        at = n->next[l];
      }
    }
    if (at != nullptr) return false;
    if (l >= level_ && head_[l] != nullptr) return false;
  }
  if (level_ > 0 && head_[level_ - 1] == nullptr) return false;
  return true;
}

}  // namespace mqc

#include "run_skiplist.hpp"

#include <cmath>
#include <cstring>
#include <new>

namespace mqc {

namespace {
constexpr double kMaxSum = 65535.0;
// A new run's scale: 2^16 summary steps a millisecond, halved as the run's span grows, so a run
// keeps the finest resolution its span allows and summaries tie only for (nearly) equal times.
constexpr double kFineScale = 65536.0;

// The summary of time t in node n before it is fitted: below 0 when t is before the node's base,
// above kMaxSum when the node's span at its scale is too wide for it.
inline double rawSum(const RunNode* n, double t) { return std::floor((t - n->base) * n->scale); }

inline bool whole(double t) { return std::floor(t) == t; }

// Makes q (>= 0) fit 16 bits by halving the node's scale as often as needed, and every summary in
// the run with it: floor(floor(x) / 2^k) = floor(x / 2^k), so they stay exact. Returns k.
int fitScale(RunNode* n, double& q) {
  if (q <= kMaxSum) return 0;
  // The least k with q / 2^k <= kMaxSum: from q's binary exponent (q < 2^(e+1)), then one step
  // up at most.
  int k = std::ilogb(q) - 15;
  if (k < 1) k = 1;
  while (k < 1100 && std::ldexp(q, -k) > kMaxSum) ++k;  // bounded: times are within ±kMaxTime
  n->scale = std::ldexp(n->scale, -k);
  if (n->scale < 1.0) n->exact = false;
  q = std::floor(std::ldexp(q, -k));
  for (int i = n->begin; i < n->end; ++i) n->sums[i] = static_cast<uint16_t>(k >= 16 ? 0 : n->sums[i] >> k);
  return k;
}
}  // namespace

// Sets the node's summaries of entries [from, end) from their records (the node's base and scale
// stay; the scale halves if one does not fit).
void RunSkiplist::summarize(RunNode* n, int from) {
  for (int i = from; i < n->end; ++i) pool_->prefetchKey(n->handles[i]);
  double q[kRunCapacity];
  double most = 0;
  for (int i = from; i < n->end; ++i) {
    double t = pool_->keyOf(n->handles[i]).t;
    q[i] = rawSum(n, t);
    if (q[i] > most) most = q[i];
    if (!whole(t)) n->exact = false;
  }
  // Halves the scale, and the summaries already there, as often as needed; the new ones follow by
  // the same shift (floor(floor(x) / 2^k) = floor(x / 2^k)).
  int k = fitScale(n, most);
  for (int i = from; i < n->end; ++i) n->sums[i] = static_cast<uint16_t>(std::floor(std::ldexp(q[i], -k)));
}

// A run gets an entry whose time is before its base (only the head run can): the base moves to
// that time and every summary is taken again from the records.
void RunSkiplist::rebase(RunNode* n, double t) {
  n->base = t;
  n->scale = kFineScale;
  n->exact = whole(t);
  summarize(n, n->begin);
}

RunSkiplist::RunSkiplist(RunNodePool* pool, uint64_t seed) : pool_(pool), rng_(seed | 1) {
  for (auto& h : head_) h = nullptr;
}

RunSkiplist::Ptr RunSkiplist::make(RunNodePool* pool, uint64_t seed) {
  return Ptr(new (pool->acquireList(sizeof(RunSkiplist))) RunSkiplist(pool, seed));
}

void RunSkiplist::PoolDeleter::operator()(RunSkiplist* list) const {
  RunNodePool* pool = list->pool_;
  list->~RunSkiplist();
  pool->releaseList(list);
}

RunSkiplist::~RunSkiplist() {
  RunNode* n = head_[0];
  while (n != nullptr) {
    RunNode* next = n->next(0);
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

// Position of k in a run: the first index whose key is not less than k. Summaries decide where
// they differ (they are monotone in the time); records are read only among equal summaries.
int RunSkiplist::lowerBound(const RunNode* n, const RunKey& k, bool newest) const {
  double q = rawSum(n, k.t);
  if (q < 0) return n->begin;      // before the base: before every entry
  if (q > kMaxSum) return n->end;  // past the run's span: after every entry
  auto qs = static_cast<uint16_t>(q);
  int lo = n->begin, hi = n->end;
  while (lo < hi) {  // first summary >= qs
    int mid = (lo + hi) >> 1;
    if (n->sums[mid] < qs)
      lo = mid + 1;
    else
      hi = mid;
  }
  hi = lo;
  while (hi < n->end && n->sums[hi] == qs) ++hi;
  if (lo == hi) return lo;
  // A fresh key among equal times goes after them all (their sequences are lower): no record.
  if (newest && n->exact && whole(k.t)) return hi;
  // Ties: most often k goes after the last of them (a fresh key at a time already queued).
  if (keyLess(pool_->keyOf(n->handles[hi - 1]), k)) return hi;
  --hi;
  if (hi - lo > 2)
    for (int i = lo; i < hi; ++i) pool_->prefetchKey(n->handles[i]);
  while (lo < hi) {
    int mid = (lo + hi) >> 1;
    if (keyLess(pool_->keyOf(n->handles[mid]), k))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

RunNode* RunSkiplist::findPreds(const RunKey& k, RunNode** upd[kMaxLevel]) const {
  RunNode** links = const_cast<RunNode**>(head_);
  RunNode* pred = nullptr;
  for (int l = kMaxLevel - 1; l >= level_; --l) upd[l] = &const_cast<RunNode**>(head_)[l];
  for (int l = level_ - 1; l >= 0; --l) {
    while (links[l] != nullptr && keyLess(links[l]->first, k)) {
      pred = links[l];
      links = pred->links();
    }
    upd[l] = &links[l];
  }
  return pred;
}

RunNode* RunSkiplist::newNodeAfter(RunNode* prev, int height, RunNode** upd[kMaxLevel]) {
  RunNode* n = pool_->acquire(height);
  for (int l = 0; l < height; ++l) {
    // Below prev's height prev itself is the predecessor; above it, the search path's slot is.
    RunNode** slot = (prev != nullptr && l < prev->height) ? &prev->next(l) : upd[l];
    n->next(l) = *slot;
    *slot = n;
  }
  if (height > level_) level_ = height;
  if (prev == tail_) tail_ = n;
  return n;
}

void RunSkiplist::unlink(RunNode* n) {
  // A node's own key is above every key before it and at most every key in it and after it, so
  // the search for it ends on the link slots that point to it.
  RunNode** upd[kMaxLevel];
  RunNode* before = findPreds(n->first, upd);
  for (int l = 0; l < n->height; ++l) *upd[l] = n->next(l);
  if (tail_ == n) tail_ = before;
  pool_->release(n);
  shrinkLevel();
}

void RunSkiplist::shrinkLevel() {
  while (level_ > 0 && head_[level_ - 1] == nullptr) --level_;
}

void RunSkiplist::compact(RunNode* n) {
  if (n->begin == 0) return;
  int c = n->count();
  std::memmove(&n->handles[0], &n->handles[n->begin], sizeof(uint32_t) * c);
  std::memmove(&n->sums[0], &n->sums[n->begin], sizeof(uint16_t) * c);
  n->begin = 0;
  n->end = static_cast<uint16_t>(c);
}

void RunSkiplist::insertInto(RunNode* n, int pos, const RunKey& k, uint32_t handle) {
  // Precondition: n has room (count < capacity). Only the head run is passed a key below its own
  // (and a time below its base).
  if (k.t < n->base) rebase(n, k.t);
  if (keyLess(k, n->first)) n->first = k;
  if (!whole(k.t)) n->exact = false;
  double q = rawSum(n, k.t);
  fitScale(n, q);
  auto sum = static_cast<uint16_t>(q);
  // Shift whichever side is cheaper and possible.
  if (pos == n->begin && n->begin > 0) {
    --n->begin;
    n->handles[n->begin] = handle;
    n->sums[n->begin] = sum;
    return;
  }
  if (n->end == kRunCapacity) {
    int shift = n->begin;  // > 0 because count < capacity
    compact(n);
    pos -= shift;
  }
  std::memmove(&n->handles[pos + 1], &n->handles[pos], sizeof(uint32_t) * (n->end - pos));
  std::memmove(&n->sums[pos + 1], &n->sums[pos], sizeof(uint16_t) * (n->end - pos));
  n->handles[pos] = handle;
  n->sums[pos] = sum;
  ++n->end;
}

void RunSkiplist::eraseAt(RunNode* n, int pos) {
  if (pos - n->begin < n->end - 1 - pos) {
    std::memmove(&n->handles[n->begin + 1], &n->handles[n->begin], sizeof(uint32_t) * (pos - n->begin));
    std::memmove(&n->sums[n->begin + 1], &n->sums[n->begin], sizeof(uint16_t) * (pos - n->begin));
    ++n->begin;
  } else {
    std::memmove(&n->handles[pos], &n->handles[pos + 1], sizeof(uint32_t) * (n->end - 1 - pos));
    std::memmove(&n->sums[pos], &n->sums[pos + 1], sizeof(uint16_t) * (n->end - 1 - pos));
    --n->end;
  }
  if (n->begin == n->end) n->begin = n->end = 0;
}

// A new run holding the one entry (k, handle).
void RunSkiplist::startRun(RunNode* n, const RunKey& k, uint32_t handle) {
  n->first = k;
  n->base = k.t;
  n->scale = kFineScale;
  n->exact = whole(k.t);
  n->handles[0] = handle;
  n->sums[0] = 0;
  n->end = 1;
}

void RunSkiplist::insert(uint32_t handle) {
  const RunKey k = pool_->keyOf(handle);
  ++size_;
  const bool newest = k.seq > maxSeq_;
  if (newest) maxSeq_ = k.seq;
  // A key whose time and sequence are at or above every key the list has held is above every
  // key it holds: no record needs reading to know it goes last (new mail in time order, the
  // common case, then costs no read of the tail's last record, a cache miss on a cold queue).
  const bool latest = newest && k.t >= maxTime_;
  if (k.t > maxTime_) maxTime_ = k.t;
  // FIFO fast path: at or after the tail's last key, append to the tail run.
  if (tail_ != nullptr && (latest || !beforeTailEnd(k))) {
    if (tail_->count() < kRunCapacity) {
      insertInto(tail_, tail_->end, k, handle);
      return;
    }
    int h = randomHeight();
    RunNode** upd[kMaxLevel];
    // Levels below the tail's height link through the tail itself; only a taller node needs the
    // search path (one append in kRunCapacity, and then rarely: amortised O(1)).
    if (h > tail_->height) findPreds(k, upd);
    startRun(newNodeAfter(tail_, h, upd), k, handle);
    return;
  }
  RunNode** upd[kMaxLevel];
  RunNode* pred = findPreds(k, upd);
  if (head_[0] == nullptr) {  // empty list
    startRun(newNodeAfter(nullptr, randomHeight(), upd), k, handle);
    return;
  }
  // The run to insert into: the last whose own key is below k, or the first run when k is below
  // every own key. A run whose own key is k itself (a key put back after it left the front of
  // that run) takes it at its front, so no run's own key is ever equal to a key before it.
  RunNode* next = pred != nullptr ? pred->next(0) : head_[0];
  RunNode* target = (next != nullptr && keyEqual(next->first, k)) || pred == nullptr ? next : pred;
  int pos = lowerBound(target, k, newest);
  if (target->count() < kRunCapacity) {
    insertInto(target, pos, k, handle);
    return;
  }
  // Split: the upper half of the run moves to a new node right after target.
  pos -= target->begin;
  compact(target);
  RunNode* n = newNodeAfter(target, randomHeight(), upd);
  constexpr int half = kRunCapacity / 2;
  constexpr int moved = kRunCapacity - half;
  std::memcpy(&n->handles[0], &target->handles[half], sizeof(uint32_t) * moved);
  std::memcpy(&n->sums[0], &target->sums[half], sizeof(uint16_t) * moved);
  n->base = target->base;
  n->scale = target->scale;
  n->exact = target->exact;
  n->end = static_cast<uint16_t>(moved);
  n->first = pool_->keyOf(n->handles[0]);
  target->end = static_cast<uint16_t>(half);
  if (pos <= half)
    insertInto(target, pos, k, handle);
  else
    insertInto(n, pos - half, k, handle);
}

bool RunSkiplist::beforeTailEnd(const RunKey& k) const {
  // The tail's last summary decides unless it ties with k's: only then is its record read (a
  // cache miss, for a retry time that lands anywhere in a domain's delayed list).
  const double q = rawSum(tail_, k.t);
  const double last = tail_->sums[tail_->end - 1];
  if (q != last) return q < last;
  return keyLess(k, pool_->keyOf(tail_->handles[tail_->end - 1]));
}

bool RunSkiplist::remove(uint32_t handle) {
  if (size_ == 0) return false;
  const RunKey k = pool_->keyOf(handle);
  RunNode** upd[kMaxLevel];
  RunNode* pred = findPreds(k, upd);
  // The entry is in the last node whose own key is below k, or first in the next one when that
  // node's own key is k itself.
  RunNode* n = nullptr;
  int pos = -1;
  auto scan = [&](RunNode* c) {
    for (int i = c->begin; i < c->end; ++i)
      if (c->handles[i] == handle) {
        n = c;
        pos = i;
        return true;
      }
    return false;
  };
  if (pred == nullptr || !scan(pred)) {
    RunNode* next = pred != nullptr ? pred->next(0) : head_[0];
    if (next == nullptr || !keyEqual(next->first, k) || !scan(next)) return false;
  }
  --size_;
  eraseAt(n, pos);
  if (n->count() == 0) {
    unlink(n);
    return true;
  }
  // Merge a thin run into this one so that scattered removals do not leave many near-empty nodes.
  RunNode* next = n->next(0);
  if (next != nullptr && n->count() < kRunCapacity / 4 && n->count() + next->count() <= kRunCapacity * 3 / 4) {
    compact(n);
    int c = next->count();
    int from = n->end;
    std::memcpy(&n->handles[from], &next->handles[next->begin], sizeof(uint32_t) * c);
    n->end = static_cast<uint16_t>(from + c);
    summarize(n, from);  // the merged entries, against this run's base and scale
    unlink(next);
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
      for (int l = 0; l < n->height; ++l) head_[l] = n->next(l);
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
    n = n->next(0);
  }
  while (n != nullptr && got < k) {
    for (int i = n->begin + static_cast<int>(offset); i < n->end && got < k; ++i) out[got++] = n->handles[i];
    offset = 0;
    n = n->next(0);
  }
  return got;
}

size_t RunSkiplist::nodeCount() const {
  size_t c = 0;
  for (const RunNode* n = head_[0]; n != nullptr; n = n->next(0)) ++c;
  return c;
}

bool RunSkiplist::checkInvariants() const {
  size_t count = 0;
  const RunNode* last = nullptr;
  bool havePrev = false;
  RunKey prevKey{};
  for (const RunNode* n = head_[0]; n != nullptr; n = n->next(0)) {
    if (n->count() <= 0 || n->count() > kRunCapacity || n->end > kRunCapacity) return false;
    if (n->height < 1 || n->height > level_) return false;
    // The node's own key: above every key before it, at most its first entry's.
    if (havePrev && !keyLess(prevKey, n->first)) return false;
    if (keyLess(pool_->keyOf(n->handles[n->begin]), n->first)) return false;
    // Summaries: a power-of-two scale, a base at most every time, each summary exact.
    int exp = 0;
    if (!(n->scale > 0) || std::frexp(n->scale, &exp) != 0.5 || n->base > n->first.t) return false;
    for (int i = n->begin; i < n->end; ++i) {
      RunKey k = pool_->keyOf(n->handles[i]);
      if (k.t < n->base || static_cast<double>(n->sums[i]) != rawSum(n, k.t)) return false;
      if (n->exact && (!whole(k.t) || n->scale < 1.0 || !whole(n->base))) return false;
      if (k.seq > maxSeq_) return false;
      if (havePrev && !keyLess(prevKey, k)) return false;
      prevKey = k;
      havePrev = true;
    }
    count += n->count();
    last = n;
  }
  if (count != size_ || last != tail_) return false;
  // Every higher level is a subsequence of level 0, in order, holding exactly the tall nodes.
  for (int l = 1; l < kMaxLevel; ++l) {
    const RunNode* at = head_[l];
    for (const RunNode* n = head_[0]; n != nullptr; n = n->next(0)) {
      if (n->height > l) {
        if (at != n) return false;
        at = n->next(l);
      }
    }
    if (at != nullptr) return false;
    if (l >= level_ && head_[l] != nullptr) return false;
  }
  if (level_ > 0 && head_[level_ - 1] == nullptr) return false;
  return true;
}

}  // namespace mqc

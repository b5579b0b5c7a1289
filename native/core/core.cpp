#include "core.hpp"

#include "connection_goal.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <utility>

namespace mqc {

namespace {
// How far ahead a batch loop prefetches for the id it will look up.
constexpr size_t kPrefetchAhead = 8;         // index slot of the id this far ahead in a batch
constexpr size_t kPrefetchRecordsAhead = 4;  // then the records its lookup will read (known ids)

bool validId(double id) { return id >= 0 && id <= kMaxId && std::floor(id) == id; }
bool validTime(double t) { return std::isfinite(t) && std::fabs(t) <= kMaxTime; }
bool validExpiry(double t) { return !std::isnan(t) && t != -kNever; }
}  // namespace

const char* counterName(uint32_t i) {
  static const char* const names[kFixedCounters] = {"connections",
                                                    "active",
                                                    "delayed",
                                                    "inFlight",
                                                    "domains",
                                                    "opened",
                                                    "released",
                                                    "expired",
                                                    "activeRemoved",
                                                    "highestId",
                                                    "refused:pair",
                                                    "refused:domain",
                                                    "refused:group_domain",
                                                    "refused:group",
                                                    "refused:binding",
                                                    "refused:server",
                                                    "refused:throttle",
                                                    "refused:suspended",
                                                    "refused:host",
                                                    "refused:cluster"};
  return i < kFixedCounters ? names[i] : nullptr;
}

Core::Core(LedgerConfig cfg, std::shared_ptr<double> counterStorage) : pool_(&messages_), ledger_(std::move(cfg)) {
  counterCount_ = counterCountFor(ledger_.config());
  if (!counterStorage)
    counterStorage = std::shared_ptr<double>(new double[counterCount_], std::default_delete<double[]>());
  counterStore_ = std::move(counterStorage);
  counters_ = counterStore_.get();
  std::fill(counters_, counters_ + counterCount_, 0.0);
  // calloc: the table's pages are zero (every entry empty) and stay unmapped until written.
  void* raw = std::calloc(kFlightDoubles * sizeof(double) + 64, 1);
  if (raw == nullptr) std::abort();  // as a vector's growth would: the build has no exceptions
  std::shared_ptr<void> owner(raw, std::free);
  auto* aligned = reinterpret_cast<double*>((reinterpret_cast<uintptr_t>(raw) + 63) & ~uintptr_t{63});
  flightStore_ = std::shared_ptr<double>(owner, aligned);
  flight_ = aligned;
}

Core::~Core() {
  queues_.clear();  // queues return their nodes to pool_ before it goes
  domains_.clear();
}

Status Core::addDomain(const DomainLimits& limits, uint32_t* index) {
  if (!freeDomains_.empty()) {
    // A forgotten slot: forgetDomain left its queues empty and its record reset; the ledger
    // overwrites its limits in place.
    uint32_t d = freeDomains_.back();
    Status s = ledger_.reuseDomain(d, limits);
    if (s != Status::Ok) return s;
    freeDomains_.pop_back();
    domains_[d].live = true;
    *index = d;
  } else {
    Status s = ledger_.addDomain(limits, index);
    if (s != Status::Ok) return s;
    domains_.emplace_back();
    queues_.resize(queues_.size() + bindings());
  }
  counters_[kDomains] = static_cast<double>(liveDomains());
  return Status::Ok;
}

Status Core::forgetDomain(uint32_t d) {
  if (!domainLive(d)) return Status::BadDomain;
  Domain& dom = domains_[d];
  if (dom.activeTotal > 0 || dom.delayed || dom.inFlight > 0 || ledger_.domainCount(d) > 0) {
    dom.idleNoted = false;  // noted again when it empties
    return Status::DomainInUse;
  }
  bool held = false;
  for (uint32_t b = 0; b < bindings() && !held; ++b) held = ledger_.pairLimits(d, b).suspended;
  // Drained grants and expired messages carry their domain index: one not drained yet (its
  // connection already released) would name whatever domain reused the slot.
  for (size_t i = grantsRead_; i < grants_.size() && !held; ++i) held = grants_[i].domain == d;
  for (size_t i = expiredRead_; i < expiredDomain_.size() && !held; ++i) held = expiredDomain_[i] == d;
  if (held) {
    dom.idleNoted = false;
    return Status::DomainHeld;
  }
  // Lazily cancelled entries still in its queues go back to the message table now.
  for (uint32_t b = 0; b < bindings(); ++b) {
    ActiveQueue& q = queue(d, b);
    q.purge(
        &pool_, [this](uint32_t h) { return isDead(h); }, [this](uint32_t h) { messages_.release(h); });
  }
  // Out of a sliced pass in progress (its snapshot listed it when dom.passNo is that pass's).
  if (dom.passNo == slicePassNo_ && !slicePass_.empty()) {
    auto it = std::find(slicePass_.begin(), slicePass_.end(), d);
    if (it != slicePass_.end()) {
      if (static_cast<size_t>(it - slicePass_.begin()) < slicePos_) --slicePos_;
      slicePass_.erase(it);
    }
  }
  if (visitDomain_ == d) visitDomain_ = kNoVisit;
  dom = Domain{};
  dom.live = false;
  freeDomains_.push_back(d);
  counters_[kDomains] = static_cast<double>(liveDomains());
  return Status::Ok;
}

void Core::noteIfIdle(uint32_t d) {
  Domain& dom = domains_[d];
  if (dom.idleNoted || !dom.live || dom.activeTotal > 0 || dom.delayed || dom.inFlight > 0 ||
      ledger_.domainCount(d) > 0)
    return;
  dom.idleNoted = true;
  idle_.push_back(d);
}

size_t Core::drainIdle(uint32_t* out, size_t max) {
  size_t n = 0;
  while (idleRead_ < idle_.size() && n < max) out[n++] = idle_[idleRead_++];
  if (idleRead_ == idle_.size()) {
    idle_.clear();
    idleRead_ = 0;
  }
  return n;
}

void Core::placeActive(uint32_t h) {
  Message& m = messages_.at(h);
  m.setPlace(Place::Active);
  Domain& dom = domains_[m.domain];
  queue(m.domain, m.binding).insert(&pool_, m.priority(), h);
  ++dom.activeTotal;
  dom.idleNoted = false;
  if (m.expiresAt < dom.activeMinExpiry) dom.activeMinExpiry = m.expiresAt;
  counters_[kActive] += 1;
  counters_[kFixedCounters + bindings() + m.binding] += 1;
}

void Core::placeDelayed(uint32_t h) {
  Message& m = messages_.at(h);
  m.setPlace(Place::Delayed);
  Domain& dom = domains_[m.domain];
  if (!dom.delayed) dom.delayed = RunSkiplist::make(&pool_, m.seq() * 0x9e3779b97f4a7c15ull + 7);
  dom.delayed->insert(h);
  dom.idleNoted = false;
  counters_[kDelayed] += 1;
}

void Core::unplace(uint32_t h) {
  Message& m = messages_.at(h);
  Domain& dom = domains_[m.domain];
  switch (m.place()) {
    case Place::Active:
      queue(m.domain, m.binding).remove(m.priority(), h);
      --dom.activeTotal;
      counters_[kActive] -= 1;
      counters_[kActiveRemoved] += 1;
      counters_[kFixedCounters + bindings() + m.binding] -= 1;
      purgeIfDue(queue(m.domain, m.binding));
      break;
    case Place::Delayed:
      dom.delayed->remove(h);
      if (dom.delayed->empty()) dom.delayed.reset();
      counters_[kDelayed] -= 1;
      break;
    case Place::InFlight:
      counters_[kInFlight] -= 1;
      --dom.inFlight;
      flightDrop(m.id);
      break;
    case Place::Free:
    case Place::Cancelled:
      break;
  }
}

void Core::purgeIfDue(ActiveQueue& q) {
  if (!q.needsPurge()) return;
  q.purge(
      &pool_, [this](uint32_t h) { return isDead(h); }, [this](uint32_t h) { messages_.release(h); });
}

void Core::expire(uint32_t h) {
  const uint32_t d = messages_.at(h).domain;
  expired_.push_back(messages_.at(h).id);
  expiredDomain_.push_back(d);
  counters_[kExpired] += 1;
  messages_.free(h);
  noteIfIdle(d);
}

Status Core::enqueue(uint32_t d, uint32_t b, double id, uint8_t priority, double nextAttempt, double expiresAt,
                     double now) {
  size_t failedAt = 0;
  return enqueueBatch(d, b, &id, &priority, 1, nextAttempt, expiresAt, now, &failedAt);
}

Status Core::enqueueBatch(uint32_t d, uint32_t b, const double* ids, const uint8_t* priorities, size_t n,
                          double nextAttempt, double expiresAt, double now, size_t* failedAt) {
  return enqueueImpl(d, b, ids, priorities, nullptr, n, nextAttempt, expiresAt, now, failedAt);
}

Status Core::enqueueBatchAt(uint32_t d, uint32_t b, const double* ids, const uint8_t* priorities,
                            const double* nextAttempts, size_t n, double expiresAt, double now, size_t* failedAt) {
  return enqueueImpl(d, b, ids, priorities, nextAttempts, n, now, expiresAt, now, failedAt);
}

Status Core::enqueueImpl(uint32_t d, uint32_t b, const double* ids, const uint8_t* priorities, const double* times,
                         size_t n, double nextAttempt, double expiresAt, double now, size_t* failedAt) {
  *failedAt = 0;
  if (!domainLive(d)) return Status::BadDomain;
  if (b >= bindings() || b > 0xffff) return Status::BadBinding;  // Message::binding is 16 bits
  if (!validTime(nextAttempt) || !validExpiry(expiresAt) || !validTime(now)) return Status::BadArgument;
  if (messages_.handlesInUse() + n > kMaxMessages) return Status::TooMany;
  for (size_t i = 0; i < n; ++i) {
    if (!validId(ids[i]) || (priorities != nullptr && priorities[i] >= kPriorities) ||
        (times != nullptr && !validTime(times[i]))) {
      *failedAt = i;
      return Status::BadArgument;
    }
  }
  // Index every id first; a duplicate (with the core or inside the batch) undoes the batch. An id
  // above `highest` (every id held so far, this batch's included) cannot be one and is not looked up.
  scratch_.clear();
  double highest = highestId_;
  for (size_t i = 0; i < n; ++i) {
    // Only the slot: the ids are new, so their lookups seldom read a record.
    if (i + kPrefetchAhead < n) messages_.prefetch(ids[i + kPrefetchAhead]);  // checked above
    if (!(ids[i] > highest) && messages_.find(ids[i]) != kNoHandle) {
      for (uint32_t h : scratch_) messages_.free(h);
      scratch_.clear();
      *failedAt = i;
      return Status::DuplicateId;
    }
    scratch_.push_back(messages_.add(ids[i]));
    if (ids[i] > highest) highest = ids[i];
  }
  // The batch is in: raise the bound (a refused one leaves it). The core keeps its own copy: the
  // counters are memory JavaScript can write, and a bound lowered there must not skip a lookup.
  highestId_ = highest;
  counters_[kHighestId] = highest;
  for (size_t i = 0; i < n; ++i) {
    uint32_t h = scratch_[i];
    Message& m = messages_.at(h);
    double next = times != nullptr ? times[i] : nextAttempt;
    m.nextAttempt = next;
    m.expiresAt = expiresAt;
    m.setSeq(seq_++);
    m.domain = d;
    m.binding = static_cast<uint16_t>(b);
    m.attempts = 0;
    m.setPriority(priorities != nullptr ? priorities[i] : 0);
    // A message whose first attempt could only come at or after its expiry bounces now, as a
    // deferral past expiry does.
    if (next >= expiresAt)
      expire(h);
    else if (next > now)
      placeDelayed(h);
    else
      placeActive(h);
  }
  scratch_.clear();
  return Status::Ok;
}

Status Core::enqueueArrivals(const double* e, size_t n, double now, size_t* failedAt) {
  *failedAt = 0;
  if (!validTime(now)) return Status::BadArgument;
  if (messages_.handlesInUse() + n > kMaxMessages) return Status::TooMany;
  const size_t nb = bindings();
  for (size_t i = 0; i < n; ++i) {
    const double* r = e + kArrivalStride * i;
    *failedAt = i;
    if (!(r[0] >= 0 && r[0] < static_cast<double>(domains_.size()) &&
          r[0] == static_cast<double>(static_cast<uint32_t>(r[0])) && domains_[static_cast<uint32_t>(r[0])].live))
      return Status::BadDomain;
    if (!(r[1] >= 0 && r[1] < 65536.0 * kPriorities && r[1] == static_cast<double>(static_cast<uint32_t>(r[1]))))
      return Status::BadBinding;
    if (static_cast<uint32_t>(r[1]) % 65536 >= nb) return Status::BadBinding;
    if (!validId(r[2]) || !validTime(r[3]) || !validExpiry(r[4])) return Status::BadArgument;
  }
  *failedAt = 0;
  // Index every id first; a duplicate (with the core or inside the batch) undoes the batch. An id
  // above `highest` (every id held so far, this batch's included) cannot be one: it is not looked
  // up, which spares the records a lookup compares (staged arrivals of rising ids).
  scratch_.clear();
  double highest = highestId_;
  for (size_t i = 0; i < n; ++i) {
    if (i + kPrefetchAhead < n) messages_.prefetch(e[kArrivalStride * (i + kPrefetchAhead) + 2]);
    const double id = e[kArrivalStride * i + 2];
    if (!(id > highest) && messages_.find(id) != kNoHandle) {
      for (uint32_t h : scratch_) messages_.free(h);
      scratch_.clear();
      *failedAt = i;
      return Status::DuplicateId;
    }
    scratch_.push_back(messages_.add(id));
    if (id > highest) highest = id;
  }
  // The batch is in: raise the bound (a refused one leaves it). The core keeps its own copy: the
  // counters are memory JavaScript can write, and a bound lowered there must not skip a lookup.
  highestId_ = highest;
  counters_[kHighestId] = highest;
  // Place them in arrival order. Each pair's books are fetched a few entries ahead: its domain and
  // queue first, then (once those are in cache) the queue's list and its tail run.
  constexpr size_t kQueueAhead = 8, kListAhead = 5, kTailAhead = 2;
  auto pairOf = [&](size_t i, uint32_t* d, uint32_t* b, uint8_t* p) {
    const double* r = e + kArrivalStride * i;
    const uint32_t bp = static_cast<uint32_t>(r[1]);
    *d = static_cast<uint32_t>(r[0]);
    *b = bp % 65536;
    *p = static_cast<uint8_t>(bp / 65536);
  };
  for (size_t i = 0; i < n; ++i) {
    uint32_t d, b;
    uint8_t p;
    if (i + kQueueAhead < n) {
      pairOf(i + kQueueAhead, &d, &b, &p);
      __builtin_prefetch(&domains_[d]);
      __builtin_prefetch(&queue(d, b));
    }
    if (i + kListAhead < n) {
      pairOf(i + kListAhead, &d, &b, &p);
      queue(d, b).prefetchList(p);
      messages_.prefetchRecord(scratch_[i + kListAhead]);
    }
    if (i + kTailAhead < n) {
      pairOf(i + kTailAhead, &d, &b, &p);
      queue(d, b).prefetchTail(p);
    }
    pairOf(i, &d, &b, &p);
    const double* r = e + kArrivalStride * i;
    uint32_t h = scratch_[i];
    Message& m = messages_.at(h);
    m.nextAttempt = r[3];
    m.expiresAt = r[4];
    m.setSeq(seq_++);
    m.domain = d;
    m.binding = static_cast<uint16_t>(b);
    m.attempts = 0;
    m.setPriority(p);
    if (r[3] >= r[4])
      expire(h);
    else if (r[3] > now)
      placeDelayed(h);
    else
      placeActive(h);
  }
  (void)nb;
  scratch_.clear();
  return Status::Ok;
}

Status Core::cancel(double id) {
  if (!validId(id)) return Status::BadArgument;
  uint32_t h = messages_.find(id);
  if (h == kNoHandle) return Status::UnknownId;
  if (messages_.at(h).place() == Place::InFlight) return Status::InFlight;
  cancelQueued(h);
  return Status::Ok;
}

Status Core::cancelBatch(const double* ids, size_t n, size_t* failedAt, size_t* cancelled, double* cancelledIds) {
  *failedAt = 0;
  *cancelled = 0;
  // Check the whole batch first (all or nothing), keeping the handles found.
  scratch_.clear();
  for (size_t i = 0; i < n; ++i) {
    if (i + kPrefetchAhead < n && validId(ids[i + kPrefetchAhead])) messages_.prefetch(ids[i + kPrefetchAhead]);
    if (i + kPrefetchRecordsAhead < n && validId(ids[i + kPrefetchRecordsAhead]))
      messages_.prefetchRecords(ids[i + kPrefetchRecordsAhead]);
    if (!validId(ids[i])) {
      *failedAt = i;
      scratch_.clear();
      return Status::BadArgument;
    }
    uint32_t h = messages_.find(ids[i]);
    if (h == kNoHandle) continue;
    if (messages_.at(h).place() == Place::InFlight) {
      *failedAt = i;
      scratch_.clear();
      return Status::InFlight;
    }
    scratch_.push_back(h);
  }
  // A repeated id found the same handle twice: its first cancel left it Cancelled or Free.
  size_t done = 0;
  for (uint32_t h : scratch_) {
    Place p = messages_.at(h).place();
    if (p != Place::Active && p != Place::Delayed) continue;
    if (cancelledIds != nullptr) cancelledIds[done] = messages_.at(h).id;  // before cancelQueued frees it
    cancelQueued(h);
    ++done;
  }
  scratch_.clear();
  *cancelled = done;
  return Status::Ok;
}

void Core::cancelQueued(uint32_t h) {
  Message& m = messages_.at(h);
  const uint32_t d = m.domain;
  if (m.place() != Place::Active) {
    unplace(h);
    messages_.free(h);
    noteIfIdle(d);
    return;
  }
  // Lazy: the entry stays in its queue, dead, and is dropped when it reaches the front or the
  // queue is purged; the id is free for a new message at once.
  Domain& dom = domains_[m.domain];
  ActiveQueue& q = queue(m.domain, m.binding);
  messages_.retire(h);
  q.markDead();
  --dom.activeTotal;
  counters_[kActive] -= 1;
  counters_[kActiveRemoved] += 1;
  counters_[kFixedCounters + bindings() + m.binding] -= 1;
  purgeIfDue(q);
  noteIfIdle(d);
}

Status Core::locate(double id, MessageInfo* out) const {
  if (!validId(id)) return Status::BadArgument;
  uint32_t h = messages_.find(id);
  if (h == kNoHandle) return Status::UnknownId;
  const Message& m = messages_.at(h);
  *out = MessageInfo{m.id, m.domain, m.binding, m.place(), m.priority(), m.attempts, m.nextAttempt, m.expiresAt};
  return Status::Ok;
}

size_t Core::peekActive(uint32_t d, uint32_t b, size_t offset, double* out, size_t k) const {
  peekScratch_.resize(k);
  size_t got = queue(d, b).peek(offset, peekScratch_.data(), k, [this](uint32_t h) { return isDead(h); });
  for (size_t i = 0; i < got; ++i) out[i] = messages_.at(peekScratch_[i]).id;
  return got;
}

size_t Core::peekDelayed(uint32_t d, size_t offset, double* out, size_t k) const {
  const Domain& dom = domains_[d];
  if (!dom.delayed) return 0;
  peekScratch_.resize(k);
  size_t got = dom.delayed->peek(offset, peekScratch_.data(), k);
  for (size_t i = 0; i < got; ++i) out[i] = messages_.at(peekScratch_[i]).id;
  return got;
}

Status Core::removeActive(uint32_t d, uint32_t b, double id) {
  if (d >= domains_.size()) return Status::BadDomain;
  if (b >= bindings()) return Status::BadBinding;
  if (!validId(id)) return Status::BadArgument;
  uint32_t h = messages_.find(id);
  if (h == kNoHandle) return Status::UnknownId;
  const Message& m = messages_.at(h);
  if (m.place() != Place::Active || m.domain != d || m.binding != b) return Status::UnknownId;
  unplace(h);
  messages_.free(h);
  noteIfIdle(d);
  return Status::Ok;
}

size_t Core::take(uint32_t d, uint32_t b, size_t k, double now, double* out) {
  ActiveQueue& q = queue(d, b);
  lastTaken_.clear();
  lastTakenIds_.clear();
  // A grant often finds its queue emptied by an earlier one: then nothing else is read.
  if (q.empty()) {
    purgeIfDue(q);
    return 0;
  }
  Domain& dom = domains_[d];
  q.prefetchHeads();
  // outbound_throttle_messages: a message taken is a message started.
  uint32_t allowance = ledger_.messageAllowance(d, b, now);
  if (k > allowance) k = allowance;
  size_t got = 0;
  uint32_t buf[64];
  auto dead = [this](uint32_t h) { return isDead(h); };
  auto release = [this](uint32_t h) { messages_.release(h); };
  while (got < k && !q.empty()) {
    size_t want = k - got < 64 ? k - got : 64;
    size_t n = q.popFront(buf, want, dead, release);
    // The records are read one after the other below: ask for all of them first, so that their
    // misses overlap (a grant takes a few messages from anywhere in the table).
    for (size_t i = 0; i < n; ++i) messages_.prefetchRecord(buf[i]);
    dom.activeTotal -= n;
    counters_[kActive] -= static_cast<double>(n);
    counters_[kActiveRemoved] += static_cast<double>(n);
    counters_[kFixedCounters + bindings() + b] -= static_cast<double>(n);
    for (size_t i = 0; i < n; ++i) {
      Message& m = messages_.at(buf[i]);
      if (m.expiresAt <= now) {
        expire(buf[i]);  // never hand an expired message to a connection
        continue;
      }
      m.setPlace(Place::InFlight);
      flightPut(buf[i], m);
      if (m.attempts < 0xffff) ++m.attempts;
      counters_[kInFlight] += 1;
      ++dom.inFlight;
      out[got++] = m.id;
      lastTaken_.push_back(buf[i]);
      lastTakenIds_.push_back(m.id);
    }
  }
  purgeIfDue(q);
  ledger_.consumeMessages(d, b, static_cast<uint32_t>(got), now);
  return got;
}

Status Core::takeFor(double connectionId, size_t k, double now, double* out, size_t* taken) {
  *taken = 0;
  if (!validTime(now)) return Status::BadArgument;
  const Grant* g = ledger_.lease(connectionId);
  if (g == nullptr) return Status::UnknownConnection;
  // take() reads the domain, the queue and the pair's limits in turn; fetch the three at once.
  __builtin_prefetch(&domains_[g->domain]);
  __builtin_prefetch(&queue(g->domain, g->binding));
  ledger_.prefetchPair(g->domain, g->binding);
  if (connectionId == lastTakeFor_ + 1) takeAhead(connectionId);
  lastTakeFor_ = connectionId;
  *taken = take(g->domain, g->binding, k, now, out);
  return Status::Ok;
}

void Core::takeAhead(double c) {
  // Connections open with rising ids, and an embedder working through a pass's grants takes for
  // them in that order (seen here as a take for the id after the last one's). Fetch ahead for the
  // next ones, each stage from what the stage one take earlier brought into cache: the lease slot
  // of c + 4; the domain, queue and pair limits of c + 3; the queue's lists of c + 2; their head
  // runs for c + 1. So a take finds its lease, queue, lists and head runs in cache and waits for
  // its records only. Taken in another order, nothing of this runs.
  ledger_.prefetchLease(c + 4);
  if (const Grant* g = ledger_.lease(c + 3)) {
    __builtin_prefetch(&domains_[g->domain]);
    __builtin_prefetch(&queue(g->domain, g->binding));
    ledger_.prefetchPair(g->domain, g->binding);
  }
  if (const Grant* g = ledger_.lease(c + 2)) {
    const ActiveQueue& q = queue(g->domain, g->binding);
    for (uint8_t p = 0; p < kPriorities; ++p) q.prefetchList(p);
  }
  if (const Grant* g = ledger_.lease(c + 1)) queue(g->domain, g->binding).prefetchHeadRuns();
}

Status Core::ageShape(double now, const double* expirationMs, size_t expirationLen, const double* edges, size_t nEdges,
                      double* out, size_t outLen, size_t* domainsWritten) const {
  *domainsWritten = 0;
  if (!validTime(now) || nEdges > kMaxAgeEdges) return Status::BadArgument;
  for (size_t i = 0; i < nEdges; ++i)
    if (!(edges[i] >= 0) || !std::isfinite(edges[i]) || (i > 0 && !(edges[i] > edges[i - 1])))
      return Status::BadArgument;
  const size_t nd = domains();
  const size_t nb = bindings();
  const size_t width = nEdges + 2;
  if (expirationLen < nd * nb || outLen < nd * width) return Status::BadArgument;
  messages_.forEachLive([&](const Message& m) {
    const double exp = expirationMs[static_cast<size_t>(m.domain) * nb + m.binding];
    size_t k = nEdges + 1;
    if (std::isfinite(m.expiresAt) && std::isfinite(exp)) {
      const double age = now - (m.expiresAt - exp);
      k = 0;
      while (k < nEdges && age >= edges[k]) ++k;
    }
    out[static_cast<size_t>(m.domain) * width + k] += 1;
  });
  *domainsWritten = nd;
  return Status::Ok;
}

Status Core::settle(double id) {
  if (!validId(id)) return Status::BadArgument;
  uint32_t h = messages_.find(id);
  if (h == kNoHandle) return Status::UnknownId;
  if (messages_.at(h).place() != Place::InFlight) return Status::NotInFlight;
  settleHandle(h);
  return Status::Ok;
}

void Core::settleHandle(uint32_t h) {
  const uint32_t d = messages_.at(h).domain;
  unplace(h);  // out of flight: the counters and the flight table's entry
  messages_.free(h);
  noteIfIdle(d);
}

Status Core::collectInFlight(const double* ids, size_t n, size_t* failedAt) {
  *failedAt = 0;
  // Check the whole batch first (all or nothing), marking each handle so a repeated id is caught.
  scratch_.clear();
  Status bad = Status::Ok;
  // A batch that starts with a message of the last take is looked for there first, in order.
  size_t cursor = lastTaken_.size();
  uint32_t first = kNoHandle;
  if (n > 0 && validId(ids[0])) {
    cursor = 0;
    first = findTaken(ids[0], &cursor);
  }
  for (size_t i = 0; i < n && bad == Status::Ok; ++i) {
    if (cursor >= lastTaken_.size()) {
      if (i + kPrefetchAhead < n && validId(ids[i + kPrefetchAhead])) messages_.prefetch(ids[i + kPrefetchAhead]);
      if (i + kPrefetchRecordsAhead < n && validId(ids[i + kPrefetchRecordsAhead]))
        messages_.prefetchRecords(ids[i + kPrefetchRecordsAhead]);
    }
    if (!validId(ids[i])) {
      bad = Status::BadArgument;
      *failedAt = i;
      break;
    }
    uint32_t h = i == 0 ? first : findTaken(ids[i], &cursor);
    if (h == kNoHandle) h = messages_.find(ids[i]);
    if (h == kNoHandle) {
      bad = Status::UnknownId;
      *failedAt = i;
      break;
    }
    Message& m = messages_.at(h);
    // Free on a live message is this loop's own mark: the id came twice in the batch.
    if (m.place() == Place::Free) {
      bad = Status::DuplicateId;
      *failedAt = i;
      break;
    }
    if (m.place() != Place::InFlight) {
      bad = Status::NotInFlight;
      *failedAt = i;
      break;
    }
    m.setPlace(Place::Free);
    scratch_.push_back(h);
  }
  for (uint32_t h : scratch_) messages_.at(h).setPlace(Place::InFlight);
  if (bad != Status::Ok) scratch_.clear();
  return bad;
}

uint32_t Core::findTaken(double id, size_t* cursor) const {
  const size_t n = lastTaken_.size();
  for (size_t j = *cursor; j < n; ++j) {
    if (lastTakenIds_[j] != id) continue;
    *cursor = j + 1;
    uint32_t h = lastTaken_[j];
    // The handle may have been freed and given to another message since the take.
    return messages_.holds(h) && messages_.at(h).id == id ? h : kNoHandle;
  }
  *cursor = n;
  return kNoHandle;
}

Status Core::settleBatch(const double* ids, size_t n, size_t* failedAt) {
  Status st = collectInFlight(ids, n, failedAt);
  if (st != Status::Ok) return st;
  // Freeing rewrites each id's index slot: fetch them all first (messages of the last take were
  // found without the index, so their slots are not in cache).
  for (uint32_t h : scratch_) messages_.prefetch(messages_.at(h).id);
  for (uint32_t h : scratch_) settleHandle(h);
  scratch_.clear();
  return Status::Ok;
}

void Core::reschedule(uint32_t h, double nextAttempt, double now) {
  unplace(h);
  Message& m = messages_.at(h);
  if (nextAttempt >= m.expiresAt) {
    expire(h);  // the retry could only come after the message expired
    return;
  }
  m.nextAttempt = nextAttempt;
  m.setSeq(seq_++);
  if (nextAttempt > now)
    placeDelayed(h);
  else
    placeActive(h);
}

Status Core::defer(double id, double nextAttempt, double now) {
  if (!validId(id) || !validTime(nextAttempt) || !validTime(now)) return Status::BadArgument;
  uint32_t h = messages_.find(id);
  if (h == kNoHandle) return Status::UnknownId;
  if (messages_.at(h).place() != Place::InFlight) return Status::NotInFlight;
  reschedule(h, nextAttempt, now);
  return Status::Ok;
}

Status Core::deferBatch(const double* ids, size_t n, double nextAttempt, double now, size_t* failedAt) {
  *failedAt = 0;
  if (!validTime(nextAttempt) || !validTime(now)) return Status::BadArgument;
  Status st = collectInFlight(ids, n, failedAt);
  if (st != Status::Ok) return st;
  for (uint32_t h : scratch_) reschedule(h, nextAttempt, now);  // reschedule() leaves scratch_ alone
  scratch_.clear();
  return Status::Ok;
}

void Core::flightPut(uint32_t h, const Message& m) {
  if (!flightOn_) return;
  // Newest first: the entries before the first empty one (or all but the oldest, when the set is
  // full) move down a way, and the new entry takes the first.
  double* set = flight_ + static_cast<size_t>(flightSetOf(m.id)) * kFlightWays * kFlightStride;
  size_t j = 0;
  while (j + 1 < kFlightWays && set[j * kFlightStride] != 0) ++j;
  std::copy_backward(set, set + j * kFlightStride, set + (j + 1) * kFlightStride);
  set[0] = m.id + 1;
  set[1] = h;
  set[2] = m.expiresAt;
  set[3] = m.domain;
}

void Core::flightDrop(double id) {
  if (!flightOn_) return;
  double* set = flight_ + static_cast<size_t>(flightSetOf(id)) * kFlightWays * kFlightStride;
  const double key = id + 1;
  for (size_t j = 0; j < kFlightWays; ++j)
    if (set[j * kFlightStride] == key) set[j * kFlightStride] = 0;
}

uint32_t Core::stagedInFlight(double handle, double id) const {
  if (!validId(id)) return kNoHandle;
  if (handle >= 0 && handle < static_cast<double>(kMaxMessages) && handle == std::floor(handle)) {
    const auto h = static_cast<uint32_t>(handle);
    if (messages_.holds(h) && messages_.at(h).id == id && messages_.at(h).place() == Place::InFlight) return h;
  }
  const uint32_t h = messages_.find(id);
  return h != kNoHandle && messages_.at(h).place() == Place::InFlight ? h : kNoHandle;
}

Status Core::applyOutcomes(const double* e, size_t n, double now, size_t* refused) {
  *refused = 0;
  if (!validTime(now)) return Status::BadArgument;
  // Fetch ahead, each stage from what the one before brought into cache: the record (and, for a
  // settle, the index slot its removal rewrites), the domain the record names, a defer's delayed
  // list, then the list's tail run and head run (an insertion reads the tail first, then searches
  // from the head). The misses of the batch overlap instead of following one another.
  constexpr size_t kRecordAhead = 12, kDomainAhead = 8, kListAhead = 5, kRunsAhead = 2;
  auto handleAt = [&](size_t i) -> uint32_t {
    const double hd = e[kOutcomeStride * i];
    return hd >= 0 && hd < static_cast<double>(kMaxMessages) ? static_cast<uint32_t>(hd) : kNoHandle;
  };
  auto listAt = [&](size_t i) -> const RunSkiplist* {
    const uint32_t h = handleAt(i);
    if (std::isnan(e[kOutcomeStride * i + 2]) || !messages_.inRange(h) || messages_.at(h).domain >= domains_.size())
      return nullptr;
    return domains_[messages_.at(h).domain].delayed.get();
  };
  for (size_t i = 0; i < n; ++i) {
    if (i + kRecordAhead < n) {
      const uint32_t h = handleAt(i + kRecordAhead);
      if (messages_.inRange(h)) messages_.prefetchRecord(h);  // no read: the miss is the point
      const double id = e[kOutcomeStride * (i + kRecordAhead) + 1];
      if (std::isnan(e[kOutcomeStride * (i + kRecordAhead) + 2]) && validId(id)) messages_.prefetch(id);
    }
    if (i + kDomainAhead < n) {
      const uint32_t h = handleAt(i + kDomainAhead);
      if (messages_.inRange(h) && messages_.at(h).domain < domains_.size())
        __builtin_prefetch(&domains_[messages_.at(h).domain]);
    }
    if (i + kListAhead < n) {
      if (const RunSkiplist* list = listAt(i + kListAhead)) __builtin_prefetch(list);
    }
    if (i + kRunsAhead < n) {
      if (const RunSkiplist* list = listAt(i + kRunsAhead)) {
        list->prefetchTail();
        list->prefetchHead();
      }
    }
    const double* r = e + kOutcomeStride * i;
    const uint32_t h = stagedInFlight(r[0], r[1]);
    const double t = r[2];
    if (h == kNoHandle || (!std::isnan(t) && !validTime(t))) {
      ++*refused;
      continue;
    }
    if (std::isnan(t))
      settleHandle(h);
    else
      reschedule(h, t, now);
  }
  return Status::Ok;
}

Status Core::untake(double id) {
  if (!validId(id)) return Status::BadArgument;
  uint32_t h = messages_.find(id);
  if (h == kNoHandle) return Status::UnknownId;
  Message& m = messages_.at(h);
  if (m.place() != Place::InFlight) return Status::NotInFlight;
  unplace(h);
  if (m.attempts > 0) --m.attempts;  // the attempt never happened
  placeActive(h);                    // same key: back to the position it was taken from
  return Status::Ok;
}

Status Core::setAttempts(double id, uint16_t attempts) {
  if (!validId(id)) return Status::BadArgument;
  uint32_t h = messages_.find(id);
  if (h == kNoHandle) return Status::UnknownId;
  Message& m = messages_.at(h);
  if (m.place() == Place::InFlight) return Status::InFlight;
  m.attempts = attempts;  // not a queue key: nothing moves
  return Status::Ok;
}

bool Core::isDue(uint32_t d, double now) const {
  const Domain& dom = domains_[d];
  return dom.activeTotal > 0 || (dom.delayed && dom.delayed->frontKey().t <= now);
}

size_t Core::dueDomains(double now, uint32_t* out, size_t max) const {
  size_t n = 0;
  for (uint32_t d = 0; d < domains_.size() && n < max; ++d)
    if (isDue(d, now)) out[n++] = d;
  return n;
}

size_t Core::promoteDue(uint32_t d, double now) {
  Domain& dom = domains_[d];
  size_t moved = 0;
  while (dom.delayed && !dom.delayed->empty() && dom.delayed->frontKey().t <= now) {
    uint32_t h;
    dom.delayed->popFront(&h, 1);
    counters_[kDelayed] -= 1;
    if (dom.delayed->empty()) dom.delayed.reset();
    if (messages_.at(h).expiresAt <= now) {
      expire(h);
      continue;
    }
    placeActive(h);
    ++moved;
  }
  return moved;
}

size_t Core::expireActive(uint32_t d, double now) {
  Domain& dom = domains_[d];
  if (dom.activeMinExpiry > now) return 0;
  // The bound was reached: sweep this domain's active queues once and compute the exact bound.
  scratch_.clear();
  double minExpiry = kNever;
  for (uint32_t b = 0; b < bindings(); ++b) {
    queue(d, b).forEach([&](uint8_t, uint32_t h) {
      if (isDead(h)) return true;
      double e = messages_.at(h).expiresAt;
      if (e <= now)
        scratch_.push_back(h);
      else if (e < minExpiry)
        minExpiry = e;
      return true;
    });
  }
  size_t n = scratch_.size();
  for (size_t i = 0; i < n; ++i) {
    unplace(scratch_[i]);
    expire(scratch_[i]);
  }
  scratch_.clear();
  dom.activeMinExpiry = minExpiry;
  return n;
}

int64_t Core::computeGoal(uint32_t d, uint32_t b, int32_t goalsz) const {
  size_t q = queue(d, b).size();
  const PairLimits& pl = ledger_.pairLimits(d, b);
  if (q == 0 || pl.suspended) return -1;
  uint32_t cur = ledger_.pairCount(d, b);
  if (goalsz > 0) return static_cast<int64_t>(cur) + goalsz;
  return connectionGoal(pl.maxConnections, q, pl.aggressiveness);
}

uint32_t Core::openConnections(uint32_t d, uint32_t b, int64_t goal, uint32_t reserve, double now) {
  int64_t cur = ledger_.pairCount(d, b);
  if (goal <= cur) return 0;
  int64_t want64 = goal - cur;
  uint32_t want = want64 > 0xffffffffll ? 0xffffffffu : static_cast<uint32_t>(want64);
  uint32_t n = ledger_.acquire(d, b, want, reserve, now, &grants_);
  if (n < want) counters_[kRefusedFirst + static_cast<uint32_t>(ledger_.lastRefusal())] += want - n;
  if (n > 0) {
    counters_[kConnections] += n;
    counters_[kOpened] += n;
    counters_[kFixedCounters + b] += n;
  }
  return n;
}

uint32_t Core::defaultMaintain(uint32_t d, uint32_t b, double now, int32_t goalsz, uint32_t reserve) {
  int64_t goal = computeGoal(d, b, goalsz);
  if (goal < 0) return 0;
  return openConnections(d, b, goal, reserve, now);
}

uint32_t Core::reserveFor(uint32_t d, uint32_t b) const {
  return ledger_.pairCount(d, b) == 0 ? 0 : ledger_.config().serverReserve;
}

size_t Core::bindingOrder(uint32_t d, uint32_t* out) {
  // Round-robin among the bindings that have mail, from a start that moves on at every visit, so a
  // tight ceiling favours no binding (counting empty bindings in the rotation would favour the one
  // after a run of empty ones).
  size_t n = 0;
  for (uint32_t b = 0; b < bindings(); ++b)
    if (!queue(d, b).empty()) out[n++] = b;
  if (n > 1) {
    size_t start = domains_[d].bindingRotation++ % n;
    std::rotate(out, out + start, out + n);
  }
  return n;
}

size_t Core::prepareVisit(uint32_t d, double now, int32_t goalsz, uint32_t* order, uint32_t* reserves,
                          uint32_t* wants) {
  visitDomain_ = d;
  visitNow_ = now;
  visitGoalsz_ = goalsz;
  promoteDue(d, now);
  expireActive(d, now);
  size_t n = bindingOrder(d, order);
  for (size_t j = 0; j < n; ++j) reserves[j] = reserveFor(d, order[j]);
  for (uint32_t b = 0; b < bindings(); ++b) {
    int64_t want = computeGoal(d, b, goalsz) - static_cast<int64_t>(ledger_.pairCount(d, b));
    wants[b] = want <= 0 ? 0 : want > 0xffffffffll ? 0xffffffffu : static_cast<uint32_t>(want);
  }
  return n;
}

Status Core::visitDefault(uint32_t b, uint32_t reserve, uint32_t* opened) {
  *opened = 0;
  if (visitDomain_ == kNoVisit) return Status::BadArgument;
  if (b >= bindings()) return Status::BadBinding;
  *opened = defaultMaintain(visitDomain_, b, visitNow_, visitGoalsz_, reserve);
  return Status::Ok;
}

uint32_t Core::maintainDomain(uint32_t d, double now, int32_t goalsz, int64_t reserveOverride) {
  promoteDue(d, now);
  expireActive(d, now);
  uint32_t opened = 0;
  order_.resize(bindings());
  size_t n = bindingOrder(d, order_.data());
  for (size_t j = 0; j < n; ++j) {
    uint32_t b = order_[j];
    uint32_t reserve = reserveOverride >= 0 ? static_cast<uint32_t>(reserveOverride) : reserveFor(d, b);
    opened += defaultMaintain(d, b, now, goalsz, reserve);
  }
  return opened;
}

uint32_t Core::maintainAll(double now) {
  size_t visited, remaining;
  return maintainSlice(now, SIZE_MAX, SIZE_MAX, true, &visited, &remaining);
}

void Core::beginSlicedPass(double now) {
  due_.resize(domains_.size());
  size_t n = dueDomains(now, due_.data(), due_.size());
  size_t start = nextDomainStart(n);
  slicePass_.resize(n);
  ++slicePassNo_;
  for (size_t i = 0; i < n; ++i) {
    slicePass_[i] = due_[(start + i) % n];
    domains_[slicePass_[i]].passNo = slicePassNo_;
  }
  slicePos_ = 0;
}

size_t Core::nextSlice(double now, size_t maxDomains, bool fresh, uint32_t* out, size_t* remaining) {
  if (fresh || slicePos_ >= slicePass_.size()) beginSlicedPass(now);
  size_t left = slicePass_.size() - slicePos_;
  size_t k = maxDomains < left ? maxDomains : left;
  for (size_t i = 0; i < k; ++i) out[i] = slicePass_[slicePos_ + i];
  slicePos_ += k;
  *remaining = slicePass_.size() - slicePos_;
  return k;
}

uint32_t Core::maintainSlice(double now, size_t maxDomains, size_t maxGrants, bool fresh, size_t* visited,
                             size_t* remaining) {
  // The pass rotates over the due domains (not all of them), as the pass driven from JavaScript
  // does, so idle domains between busy ones do not skew who comes first.
  if (fresh || slicePos_ >= slicePass_.size()) beginSlicedPass(now);
  size_t left = slicePass_.size() - slicePos_;
  size_t k = maxDomains < left ? maxDomains : left;
  uint32_t opened = 0;
  // A domain of the snapshot that is no longer due is visited all the same: it has nothing to
  // promote and no mail to open for, so the visit changes nothing.
  size_t i = 0;
  while (i < k && opened < maxGrants) opened += maintainDomain(slicePass_[slicePos_ + i++], now, 0, -1);
  slicePos_ += i;
  *visited = i;
  *remaining = slicePass_.size() - slicePos_;
  if (*remaining == 0) slicePass_.clear();
  return opened;
}

Status Core::releaseConnection(double connectionId) {
  Grant g;
  Status s = ledger_.release(connectionId, &g);
  if (s != Status::Ok) return s;
  counters_[kConnections] -= 1;
  counters_[kReleased] += 1;
  counters_[kFixedCounters + g.binding] -= 1;
  noteIfIdle(g.domain);
  return Status::Ok;
}

Status Core::migrateConnection(double connectionId, uint32_t toDomain) {
  const Grant* g = ledger_.lease(connectionId);
  if (g == nullptr) return Status::UnknownConnection;
  if (!domainLive(toDomain)) return Status::BadDomain;  // a forgotten slot is no sibling
  const uint32_t from = g->domain;
  Status s = ledger_.migrate(connectionId, toDomain, nullptr);
  if (s == Status::Ok) noteIfIdle(from);
  return s;
}

double Core::nextDueAt() const {
  double t = kNever;
  for (const Domain& dom : domains_)
    if (dom.delayed && dom.delayed->frontKey().t < t) t = dom.delayed->frontKey().t;
  return t;
}

size_t Core::flushDomain(uint32_t d, double now) {
  if (!validTime(now)) return 0;  // now becomes the messages' queue time: it must be a valid key
  Domain& dom = domains_[d];
  size_t moved = 0;
  while (dom.delayed && !dom.delayed->empty()) {
    uint32_t h;
    dom.delayed->popFront(&h, 1);
    counters_[kDelayed] -= 1;
    if (dom.delayed->empty()) dom.delayed.reset();
    Message& m = messages_.at(h);
    if (m.expiresAt <= now) {
      expire(h);
      continue;
    }
    m.nextAttempt = now;
    m.setSeq(seq_++);
    placeActive(h);
    ++moved;
  }
  return moved;
}

size_t Core::failDomain(uint32_t d, double* out, size_t max) {
  Domain& dom = domains_[d];
  size_t n = 0;
  while (n < max) {
    uint32_t h = kNoHandle;
    for (uint32_t b = 0; b < bindings(); ++b) {
      ActiveQueue& q = queue(d, b);
      if (!q.empty()) {
        uint32_t one;
        q.peek(0, &one, 1, [this](uint32_t x) { return isDead(x); });
        h = one;
        break;
      }
    }
    if (h == kNoHandle && dom.delayed && !dom.delayed->empty()) h = dom.delayed->frontHandle();
    if (h == kNoHandle) break;
    out[n++] = messages_.at(h).id;
    unplace(h);
    messages_.free(h);
  }
  if (n > 0) noteIfIdle(d);
  return n;
}

Status Core::retryNow(double id, double now) {
  if (!validId(id) || !validTime(now)) return Status::BadArgument;
  uint32_t h = messages_.find(id);
  if (h == kNoHandle || messages_.at(h).place() != Place::Delayed) return Status::UnknownId;
  unplace(h);
  Message& m = messages_.at(h);
  m.nextAttempt = now;
  m.setSeq(seq_++);
  placeActive(h);
  return Status::Ok;
}

void Core::delayedByBinding(uint32_t d, double* out) const {
  for (uint32_t b = 0; b < bindings(); ++b) out[b] = 0;
  const Domain& dom = domains_[d];
  if (!dom.delayed) return;
  dom.delayed->forEach([&](uint32_t h) {
    out[messages_.at(h).binding] += 1;
    return true;
  });
}

size_t Core::drainGrants(double* out, size_t maxGrants) {
  size_t n = 0;
  while (grantsRead_ < grants_.size() && n < maxGrants) {
    const Grant& g = grants_[grantsRead_++];
    out[3 * n] = g.connectionId;
    out[3 * n + 1] = g.domain;
    out[3 * n + 2] = g.binding;
    ++n;
  }
  if (grantsRead_ == grants_.size()) {
    grants_.clear();
    grantsRead_ = 0;
  }
  return n;
}

size_t Core::drainExpired(double* out, size_t max) { return drainExpired(out, nullptr, max); }

size_t Core::drainExpired(double* out, double* domains, size_t max) {
  size_t n = 0;
  while (expiredRead_ < expired_.size() && n < max) {
    if (domains != nullptr) domains[n] = expiredDomain_[expiredRead_];
    out[n++] = expired_[expiredRead_++];
  }
  if (expiredRead_ == expired_.size()) {
    expired_.clear();
    expiredDomain_.clear();
    expiredRead_ = 0;
  }
  return n;
}

bool Core::checkInvariants() const {
  if (!messages_.checkInvariants() || !ledger_.checkInvariants()) return false;
  std::vector<uint8_t> seen(messages_.size() + 1024, 0);
  size_t active = 0, delayed = 0, placed = 0, dead = 0;
  std::vector<double> bindingActive(bindings(), 0);
  auto mark = [&](uint32_t h) {
    if (h >= seen.size()) seen.resize(h + 1, 0);
    return seen[h]++ == 0;
  };
  for (uint32_t d = 0; d < domains_.size(); ++d) {
    const Domain& dom = domains_[d];
    size_t domActive = 0;
    for (uint32_t b = 0; b < bindings(); ++b) {
      const ActiveQueue& q = queue(d, b);
      if (!q.checkInvariants()) return false;
      bool ok = true;
      size_t qDead = 0;
      q.forEach([&](uint8_t p, uint32_t h) {
        const Message& m = messages_.at(h);
        if (m.place() == Place::Cancelled) {
          ++qDead;
          return ok = mark(h) && m.domain == d && m.binding == b && m.priority() == p;
        }
        ok = mark(h) && m.place() == Place::Active && m.domain == d && m.binding == b && m.priority() == p &&
             m.expiresAt >= dom.activeMinExpiry;
        return ok;
      });
      if (!ok || qDead != q.dead() || q.needsPurge()) return false;
      dead += qDead;
      domActive += q.size();
      bindingActive[b] += static_cast<double>(q.size());
    }
    if (domActive != dom.activeTotal) return false;
    active += domActive;
    if (dom.delayed) {
      if (dom.delayed->empty() || !dom.delayed->checkInvariants()) return false;
      bool ok = true;
      dom.delayed->forEach([&](uint32_t h) {
        const Message& m = messages_.at(h);
        ok = mark(h) && m.place() == Place::Delayed && m.domain == d;
        return ok;
      });
      if (!ok) return false;
      delayed += dom.delayed->size();
    }
  }
  if (dead != messages_.retired()) return false;
  placed = active + delayed;
  size_t inFlight = messages_.size() - placed;  // every other live message must be in flight
  if (counters_[kActive] != static_cast<double>(active) || counters_[kDelayed] != static_cast<double>(delayed) ||
      counters_[kInFlight] != static_cast<double>(inFlight) ||
      counters_[kConnections] != static_cast<double>(ledger_.total()) ||
      counters_[kDomains] != static_cast<double>(liveDomains()))
    return false;
  // Every message's domain is live and counts it in flight when it is; a free slot holds nothing.
  std::vector<uint32_t> inFlightOf(domains_.size(), 0);
  bool domainsOk = true;
  messages_.forEachLive([&](const Message& m) {
    if (m.domain >= domains_.size() || !domains_[m.domain].live)
      domainsOk = false;
    else if (m.place() == Place::InFlight)
      ++inFlightOf[m.domain];
  });
  if (!domainsOk) return false;
  size_t freeSlots = 0;
  for (uint32_t d = 0; d < domains_.size(); ++d) {
    const Domain& dom = domains_[d];
    if (dom.inFlight != inFlightOf[d]) return false;
    if (!dom.live) {
      ++freeSlots;
      if (dom.activeTotal != 0 || dom.delayed || ledger_.domainCount(d) != 0) return false;
      for (uint32_t b = 0; b < bindings(); ++b)
        if (queue(d, b).size() != 0 || queue(d, b).dead() != 0) return false;
    }
  }
  if (freeSlots != freeDomains_.size()) return false;
  // Every flight-table entry names a message in flight, by its handle and id (none is written
  // before the table is kept).
  for (size_t i = 0; flightOn_ && i < kFlightWays * kFlightSets; ++i) {
    const double* f = flight_ + kFlightStride * i;
    if (f[0] == 0) continue;
    const double id = f[0] - 1;
    if (!(f[1] >= 0 && f[1] < static_cast<double>(kMaxMessages))) return false;
    const auto h = static_cast<uint32_t>(f[1]);
    if (!messages_.holds(h) || messages_.at(h).id != id || messages_.at(h).place() != Place::InFlight ||
        flightSetOf(id) != i / kFlightWays || f[2] != messages_.at(h).expiresAt)
      return false;
  }
  for (uint32_t d : slicePass_)
    if (d >= domains_.size() || !domains_[d].live) return false;
  for (uint32_t b = 0; b < bindings(); ++b) {
    if (counters_[kFixedCounters + bindings() + b] != bindingActive[b]) return false;
    if (counters_[kFixedCounters + b] != static_cast<double>(ledger_.bindingCount(b))) return false;
  }
  return true;
}

size_t Core::bytesReserved() const {
  size_t bytes = pool_.bytesReserved() + messages_.bytesReserved();
  bytes += domains_.capacity() * sizeof(Domain);
  bytes += queues_.capacity() * sizeof(ActiveQueue);
  return bytes;
}

}  // namespace mqc

// One mail-queue core: the message table, every domain's per-binding active queues and delayed
// queue, the connection ledger, and the default __mail_queue_maintain (docs/architecture.md §4-§7). Plain
// C++17 with no Node headers: the addon wraps it, the C++ tests and the fuzzer drive it directly.
// It never calls JavaScript and keeps no global state; each instance is used by one thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "active_queue.hpp"
#include "connection_ledger.hpp"
#include "message_table.hpp"
#include "run_node_pool.hpp"
#include "run_skiplist.hpp"
#include "status.hpp"

namespace mqc {

constexpr double kNever = std::numeric_limits<double>::infinity();  // expiresAt for a message that never expires
constexpr double kMaxId = 9007199254740991.0;                       // 2^53 - 1
// Times (next attempts, now) are ms since the epoch within the range of a JavaScript Date
// (±100,000,000 days), which also keeps every difference of two times far from overflow.
constexpr double kMaxTime = 8.64e15;
constexpr size_t kMaxAgeEdges = 64;  // buckets of ageShape() at most (plus the oldest and the unknown)

// Counter slots, in the order counterName() reports them. Per-binding slots follow the fixed ones.
enum Counter : uint32_t {
  kConnections = 0,  // open or opening, total
  kActive,           // messages in active queues
  kDelayed,          // messages in delayed queues
  kInFlight,         // messages taken by connections
  kDomains,          // live domain records (a forgotten one is not counted)
  kOpened,           // connections granted since creation
  kReleased,         // connections released since creation
  kExpired,          // messages expired since creation
  kActiveRemoved,    // messages that left an active queue since creation (taken, cancelled, removed,
                     // expired or failed from it)
  kHighestId,        // at least every id ever queued (0 before the first): an id above it is new,
                     // so the JS layer can take it without asking the core whether it is a duplicate
  kRefusedFirst,     // connections a pass wanted and a limit held back, by the limit (Refusal order:
                     // pair, domain, group_domain, group, binding, server, throttle, suspended, host,
                     // cluster)
  kFixedCounters = kRefusedFirst + kRefusalScopes,
};
const char* counterName(uint32_t i);

struct MessageInfo {
  double id;
  uint32_t domain;
  uint32_t binding;
  Place place;
  uint8_t priority;
  uint16_t attempts;
  double nextAttempt;
  double expiresAt;
};

class Core {
 public:
  // The counters: counterCountFor(cfg) doubles. By default the core owns them; an embedder may pass
  // storage it shares (the addon hands the same memory to JavaScript as an ArrayBuffer, so reading
  // a counter costs no call and keeping them current costs no copy). Shared ownership: the memory
  // lives as long as its last holder, core or view.
  static size_t counterCountFor(const LedgerConfig& cfg) {
    return kFixedCounters + 2 * static_cast<size_t>(cfg.bindings);
  }
  explicit Core(LedgerConfig cfg, std::shared_ptr<double> counterStorage = nullptr);
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;
  ~Core();

  ConnectionLedger& ledger() { return ledger_; }
  const ConnectionLedger& ledger() const { return ledger_; }
  uint32_t bindings() const { return ledger_.bindings(); }
  // Domain slots, live or free: every per-domain index is below it (a forgotten domain's slot stays
  // until addDomain reuses it).
  size_t domains() const { return domains_.size(); }
  // A new domain: a free slot (the one forgotten last) when there is one, else a new one.
  Status addDomain(const DomainLimits& limits, uint32_t* index);
  // Whether d names a domain (a slot in range that is not free).
  bool domainLive(uint32_t d) const { return d < domains_.size() && domains_[d].live; }
  size_t liveDomains() const { return domains_.size() - freeDomains_.size(); }
  // Forgets domain d: its slot goes on the free list for addDomain to reuse, with everything the
  // core and the ledger keep for it reset (its lazily cancelled queue entries are purged; it leaves
  // a sliced pass in progress and the last prepareVisit). Refused while it is needed:
  // BadDomain (not live), DomainInUse (a message active, delayed or in flight, or a connection),
  // DomainHeld (a pair suspended, or a grant or expired message naming it not drained yet).
  Status forgetDomain(uint32_t d);
  // The domains that became idle (no message, no connection) since the last call, each once until
  // it gets mail again (or a forgetDomain of it is refused), into out; returns how many (at most
  // max; the rest wait for the next call). A domain listed may be busy again by the time it is read.
  size_t drainIdle(uint32_t* out, size_t max);
  size_t pendingIdle() const { return idle_.size() - idleRead_; }

  // --- messages -------------------------------------------------------------------------------
  // A message whose nextAttempt is after `now` goes to its domain's delayed queue, else to the
  // active queue of (domain, binding).
  Status enqueue(uint32_t d, uint32_t b, double id, uint8_t priority, double nextAttempt, double expiresAt, double now);
  // All or nothing: on a refusal nothing is queued and *failedAt names the first bad entry.
  Status enqueueBatch(uint32_t d, uint32_t b, const double* ids, const uint8_t* priorities, size_t n,
                      double nextAttempt, double expiresAt, double now, size_t* failedAt);
  // The same with one next-attempt time per message (nextAttempts[0..n)).
  Status enqueueBatchAt(uint32_t d, uint32_t b, const double* ids, const uint8_t* priorities,
                        const double* nextAttempts, size_t n, double expiresAt, double now, size_t* failedAt);
  // Many messages for any pairs, in arrival order, in one call: entries[kArrivalStride * i ..] =
  // (domain, binding + 65536 * priority, id, nextAttempt, expiresAt). All or nothing, as a batch;
  // *failedAt names the first bad entry. The index and queue misses of the batch overlap (the
  // entries are prefetched a few ahead), which is what makes mail that arrives one message at a
  // time for many domains cheap when the embedder hands it over in groups.
  static constexpr size_t kArrivalStride = 5;
  Status enqueueArrivals(const double* entries, size_t n, double now, size_t* failedAt);
  Status cancel(double id);
  // cancel() for every id of a batch: unknown ids (and repeats) are skipped, as cancel() reports
  // UnknownId for them; an id that is in flight or not an id refuses the whole batch (*failedAt
  // names it) and nothing changes. *cancelled = how many messages were cancelled; cancelledIds
  // (optional, room for n) receives their ids, in batch order.
  Status cancelBatch(const double* ids, size_t n, size_t* failedAt, size_t* cancelled, double* cancelledIds = nullptr);
  Status locate(double id, MessageInfo* out) const;
  size_t activeSize(uint32_t d, uint32_t b) const { return queue(d, b).size(); }
  size_t delayedSize(uint32_t d) const { return domains_[d].delayed ? domains_[d].delayed->size() : 0; }
  size_t activeTotal(uint32_t d) const { return domains_[d].activeTotal; }
  size_t peekActive(uint32_t d, uint32_t b, size_t offset, double* out, size_t k) const;
  size_t peekDelayed(uint32_t d, size_t offset, double* out, size_t k) const;
  // Removes one message from this active queue (and from the core). UnknownId when it is not there.
  Status removeActive(uint32_t d, uint32_t b, double id);
  // Takes up to k head messages of the active queue into flight (for a connection); expired ones
  // are expired instead and not returned. Returns how many were taken.
  size_t take(uint32_t d, uint32_t b, size_t k, double now, double* out);
  // take() for an open connection: its lease names the (domain, binding), the domain it migrated
  // to if it did. UnknownConnection when no such connection is open, BadArgument for a bad now.
  Status takeFor(double connectionId, size_t k, double now, double* out, size_t* taken);
  Status settle(double id);  // in flight -> gone (delivered/bounced)
  // Settles every id of a batch (all must be in flight; on a refusal nothing changes and
  // *failedAt names the first bad entry).
  Status settleBatch(const double* ids, size_t n, size_t* failedAt);
  Status defer(double id, double nextAttempt, double now);  // in flight -> delayed (or active)
  // Defers every id of a batch to the same nextAttempt (all must be in flight; on a refusal
  // nothing changes and *failedAt names the first bad entry).
  Status deferBatch(const double* ids, size_t n, double nextAttempt, double now, size_t* failedAt);
  Status untake(double id);  // in flight -> back to its queue position

  // --- the flight table -----------------------------------------------------------------------
  // Messages in flight by id, shared with JavaScript (the addon hands the memory over as an
  // ArrayBuffer) so that a single settle() or defer() of a message a connection holds can be
  // staged there without a call: the id names its entry, the entry names the message's handle,
  // so the staged outcome needs no index lookup either. A set-associative cache, not an index:
  // kFlightSets sets of kFlightWays entries of kFlightStride doubles (id + 1, 0 when empty;
  // handle; expiresAt; domain), newest first, two 64-byte lines a set. take() writes an entry for
  // every message it puts in flight (the oldest of a full set gives way) and every way out of
  // flight clears it;
  // JavaScript clears the entry of an outcome it stages. An entry names a message in flight, or
  // nothing: applyOutcomes() checks each staged entry against the record all the same, since the
  // memory is writable from JavaScript.
  static constexpr uint32_t kFlightSetBits = 14;
  static constexpr size_t kFlightSets = size_t{1} << kFlightSetBits;
  static constexpr size_t kFlightWays = 4;
  static constexpr size_t kFlightStride = 4;
  static constexpr size_t kFlightDoubles = kFlightSets * kFlightWays * kFlightStride;
  // The set an id's entry lives in: Fibonacci hashing of the id's low 32 bits (JavaScript computes
  // the same with Math.imul).
  static uint32_t flightSetOf(double id) {
    const auto lo = static_cast<uint32_t>(static_cast<uint64_t>(id));
    return (lo * 0x9E3779B1u) >> (32 - kFlightSetBits);
  }
  const std::shared_ptr<double>& flightStorage() const { return flightStore_; }
  // The table is kept from the first call of this on (JavaScript makes it at its first single
  // outcome): a core whose outcomes all come in batches (settleBatch, deferBatch, which find the
  // messages of the last take without the index) never pays for it. Messages already in flight
  // then have no entry, which only means their outcomes take the call path.
  void trackFlight() { flightOn_ = true; }
  bool tracksFlight() const { return flightOn_; }
  // Applies outcomes staged in JavaScript, in order: entries[kOutcomeStride * i ..] = (handle,
  // id, nextAttempt), nextAttempt NaN for a settle, else a defer to that time (placed as defer()
  // at `now` would: staged defers are to times after the now of their staging, which the caller
  // passes, the earliest of them). An entry whose handle does not name the message in flight is
  // looked up by id; one that names no message in flight (or is not an id, or a defer to no valid
  // time) is skipped and counted in *refused. BadArgument (nothing applied) for a bad now.
  static constexpr size_t kOutcomeStride = 3;
  Status applyOutcomes(const double* entries, size_t n, double now, size_t* refused);
  // Sets a queued (active or delayed) message's attempt count: recovery after a restart restores
  // what the store recorded. InFlight when a connection holds it (its count is that take's).
  Status setAttempts(double id, uint16_t attempts);

  // --- maintenance ----------------------------------------------------------------------------
  bool isDue(uint32_t d, double now) const;
  size_t dueDomains(double now, uint32_t* out, size_t max) const;
  size_t promoteDue(uint32_t d, double now);    // delayed -> active for everything due at now
  size_t expireActive(uint32_t d, double now);  // active messages past their expiry -> expired
  // The default goal for (d, b), before connection_goal hooks: -1 when there is nothing to do
  // (empty queue or suspended pair), else the total number of connections wanted.
  int64_t computeGoal(uint32_t d, uint32_t b, int32_t goalsz) const;
  // Opens connections towards `goal` total for (d, b), clipped by every limit; grants are queued
  // for drainGrants(). Returns how many opened.
  uint32_t openConnections(uint32_t d, uint32_t b, int64_t goal, uint32_t reserve, double now);
  // The native default __mail_queue_maintain for one pair.
  uint32_t defaultMaintain(uint32_t d, uint32_t b, double now, int32_t goalsz, uint32_t reserve);
  // The reserve the maintainer passes for a pair: 0 when it has no connection (docs/architecture.md §7).
  uint32_t reserveFor(uint32_t d, uint32_t b) const;
  // A whole pass over every due domain with the native default only (no JS provider).
  uint32_t maintainAll(double now);
  // A pass in slices. The first slice takes a snapshot of the due domains, from the rotation's
  // start (the rotation moves on by one, as for a whole pass); each slice visits the next
  // maxDomains of that snapshot, until none is left and the next slice starts a new pass. Returns
  // how many connections opened; *visited = domains this slice visited, *remaining = domains of
  // the pass still to visit. fresh (and maintainAll()) abandons a pass in progress first.
  // A slice also ends early once it has opened maxGrants connections or more (after the domain that
  // reached it): the rest of the pass waits for the next slice (SIZE_MAX: no cap).
  uint32_t maintainSlice(double now, size_t maxDomains, size_t maxGrants, bool fresh, size_t* visited,
                         size_t* remaining);
  // The domains of the next slice, for a pass driven from JavaScript: up to maxDomains of them into
  // out, in visit order (fresh: abandon a pass in progress and take a new snapshot). Returns how
  // many; *remaining as above.
  size_t nextSlice(double now, size_t maxDomains, bool fresh, uint32_t* out, size_t* remaining);
  // Gives the last k domains nextSlice handed out back to the pass in progress (a slice that ended
  // early); returns how many went back (at most those handed out of the current snapshot).
  size_t unvisitSlice(size_t k) {
    if (k > slicePos_) k = slicePos_;
    slicePos_ -= k;
    return k;
  }
  // One domain: promote, expire, then the default per binding in bindingOrder().
  uint32_t maintainDomain(uint32_t d, double now, int32_t goalsz, int64_t reserveOverride);
  // The bindings of d that have active mail, in this visit's round-robin order; returns how many
  // (out must hold bindings() entries). Each call moves the rotation on.
  size_t bindingOrder(uint32_t d, uint32_t* out);
  // A domain's visit for a pass driven from JavaScript, in one call: promoteDue, expireActive, then
  // bindingOrder into order[0..n), each listed pair's reserveFor() into reserves[0..n), and for every
  // binding b how many connections its default maintain would ask for beyond those it holds,
  // computeGoal(d, b, goalsz) - pairCount(d, b), clamped to 0..2^32-1, into wants[b]. Until a queue
  // or a connection count changes, wants[b] == 0 means the default would open nothing.
  size_t prepareVisit(uint32_t d, double now, int32_t goalsz, uint32_t* order, uint32_t* reserves, uint32_t* wants);
  // defaultMaintain(d, b, now, goalsz, reserve) for the domain, now and goalsz of the last
  // prepareVisit() (a pass driven from JavaScript calls it per pair: three arguments fewer to cross).
  // BadArgument before any prepareVisit; BadBinding for b out of range.
  Status visitDefault(uint32_t b, uint32_t reserve, uint32_t* opened);
  // Advances the rotation of domain passes (the JS-driven pass shares it with maintainAll).
  size_t nextDomainStart(size_t dueCount) { return dueCount == 0 ? 0 : domainRotation_++ % dueCount; }
  Status releaseConnection(double connectionId);
  // Moves an open connection to a sibling domain on the same binding (see ConnectionLedger::migrate).
  Status migrateConnection(double connectionId, uint32_t toDomain);
  // When (d, b) may take its next message under outbound_throttle_messages.
  double messageNextAllowedAt(uint32_t d, uint32_t b, double now) const {
    return ledger_.messageNextAllowedAt(d, b, now);
  }
  // The earliest next-attempt among all delayed messages (+infinity when none).
  double nextDueAt() const;

  // --- operator actions -----------------------------------------------------------------------
  // flush: every delayed message of d becomes due now (active, next attempt = now). A now that is
  // not a valid time moves nothing (returns 0).
  size_t flushDomain(uint32_t d, double now);
  // fail: removes up to max queued (active and delayed) messages of d, writing their ids; in-flight
  // ones are left to their connections. Call until it returns 0.
  size_t failDomain(uint32_t d, double* out, size_t max);
  // retry: a delayed message becomes due now. NotInFlight is never returned; UnknownId when the id
  // is not in a delayed queue.
  Status retryNow(double id, double now);
  // Delayed messages of d per binding (out: bindings() entries).
  void delayedByBinding(uint32_t d, double* out) const;
  // Connections of every domain, by index, into out (the first min(domains(), max)); returns how
  // many it wrote.
  size_t connectionsByDomain(double* out, size_t max) const {
    size_t n = domains() < max ? domains() : max;
    for (size_t d = 0; d < n; ++d) out[d] = ledger_.domainCount(static_cast<uint32_t>(d));
    return n;
  }

  // The queue's shape by age (an operator's qshape): for every message held (active, delayed, in
  // flight), its arrival is taken as expiresAt - expirationMs[d * bindings() + b], its pair's
  // message expiration, and it is counted in out[d * (nEdges + 2) + k]: k = the first bucket whose
  // upper edge is above its age (edges ascending, ms), nEdges for ages at or above the last edge,
  // nEdges + 1 when its age is unknown (never expires, or no finite expiration for its pair).
  // out is added to (the caller zeroes it). BadArgument: a bad now or edge, or out or expirationMs
  // too short. Returns the domains written.
  Status ageShape(double now, const double* expirationMs, size_t expirationLen, const double* edges, size_t nEdges,
                  double* out, size_t outLen, size_t* domainsWritten) const;

  size_t pendingGrants() const { return grants_.size() - grantsRead_; }
  size_t drainGrants(double* out, size_t maxGrants);  // 3 doubles a grant: id, domain, binding
  size_t pendingExpired() const { return expired_.size() - expiredRead_; }
  size_t drainExpired(double* out, size_t max);
  // The same, with each expired message's domain index in domains (may be null).
  size_t drainExpired(double* out, double* domains, size_t max);

  // --- counters -------------------------------------------------------------------------------
  size_t counterCount() const { return counterCount_; }
  const double* counters() const { return counters_; }
  // The counters' storage, shared (the embedder may hand it out).
  const std::shared_ptr<double>& counterStorage() const { return counterStore_; }
  bool checkInvariants() const;
  size_t bytesReserved() const;

 private:
  struct Domain {
    RunSkiplist::Ptr delayed;  // (nextAttempt, seq); made on first use
    size_t activeTotal = 0;
    double activeMinExpiry = kNever;  // lower bound of expiresAt over active messages
    uint32_t bindingRotation = 0;
    uint32_t inFlight = 0;   // its messages taken by connections
    uint32_t passNo = 0;     // the sliced pass whose snapshot last listed it (slicePassNo_)
    bool live = true;        // false once forgotten, until addDomain reuses the slot
    bool idleNoted = false;  // listed in idle_ since it last got mail
  };
  // Lists d in idle_ when it holds no message and no connection and is not listed already.
  void noteIfIdle(uint32_t d);
  void placeActive(uint32_t h);
  void placeDelayed(uint32_t h);
  void unplace(uint32_t h);  // removes from whichever queue holds it
  // A message in flight reached its outcome: out of flight (unplace), freed, its domain noted if
  // idle. settle(), settleBatch() and applyOutcomes() all end here.
  void settleHandle(uint32_t h);
  Status enqueueImpl(uint32_t d, uint32_t b, const double* ids, const uint8_t* priorities, const double* times,
                     size_t n, double nextAttempt, double expiresAt, double now, size_t* failedAt);
  // Checks that every id of a batch is a distinct message in flight, into scratch_ (handles);
  // Ok or the first bad entry's status, with scratch_ empty and nothing changed.
  Status collectInFlight(const double* ids, size_t n, size_t* failedAt);
  // The handle of id among the last take's messages at or after *cursor (moved past it), or
  // kNoHandle: then the caller asks the index, and the rest of its batch too (*cursor = end).
  uint32_t findTaken(double id, size_t* cursor) const;
  // In flight -> delayed, active or expired, for a retry at nextAttempt.
  void reschedule(uint32_t h, double nextAttempt, double now);
  // Drops the dead (lazily cancelled) entries of an active queue once it asks for it.
  void purgeIfDue(ActiveQueue& q);
  bool isDead(uint32_t h) const { return messages_.at(h).place() == Place::Cancelled; }
  void expire(uint32_t h);
  // Cancels a message that is queued (active: lazily; delayed: at once).
  void cancelQueued(uint32_t h);
  void setConnectionCounters();

  MessageTable messages_;
  RunNodePool pool_;  // its nodes' handles index messages_ (which holds their keys)
  std::vector<Domain> domains_;
  // The active queue of (d, b) at [d * bindings + b]: one flat array, so a pass reads a domain's
  // queues from adjacent memory.
  std::vector<ActiveQueue> queues_;
  // The sliced pass in progress: its domains in visit order, and how many were visited.
  std::vector<uint32_t> slicePass_;
  // The last prepareVisit's domain (kNoVisit before the first), now and goalsz.
  static constexpr uint32_t kNoVisit = 0xffffffffu;
  uint32_t visitDomain_ = kNoVisit;
  double visitNow_ = 0;
  int32_t visitGoalsz_ = 0;
  size_t slicePos_ = 0;
  uint32_t slicePassNo_ = 0;  // bumped by every snapshot
  void beginSlicedPass(double now);
  ActiveQueue& queue(uint32_t d, uint32_t b) { return queues_[static_cast<size_t>(d) * ledger_.bindings() + b]; }
  const ActiveQueue& queue(uint32_t d, uint32_t b) const {
    return queues_[static_cast<size_t>(d) * ledger_.bindings() + b];
  }
  ConnectionLedger ledger_;
  uint64_t seq_ = 1;
  // At least every id ever queued (the kHighestId counter mirrors it): an id above it needs no
  // duplicate lookup.
  double highestId_ = 0;
  uint32_t domainRotation_ = 0;
  std::vector<Grant> grants_;
  size_t grantsRead_ = 0;
  std::vector<double> expired_;
  std::vector<uint32_t> expiredDomain_;  // parallel to expired_
  size_t expiredRead_ = 0;
  // The connection of the last takeFor (0 before any): a take for the next id runs takeAhead().
  double lastTakeFor_ = 0;
  void takeAhead(double connectionId);
  std::shared_ptr<double> flightStore_;
  double* flight_ = nullptr;  // flightStore_.get(), 64-byte aligned
  bool flightOn_ = false;
  void flightPut(uint32_t h, const Message& m);
  void flightDrop(double id);
  // The message in flight that a staged outcome names (its handle, else its id), or kNoHandle.
  uint32_t stagedInFlight(double handle, double id) const;
  std::shared_ptr<double> counterStore_;
  double* counters_ = nullptr;  // counterStore_.get()
  size_t counterCount_ = 0;
  std::vector<uint32_t> freeDomains_;  // forgotten slots, the last forgotten last
  std::vector<uint32_t> idle_;         // domains noted idle, for drainIdle()
  size_t idleRead_ = 0;
  std::vector<uint32_t> scratch_;
  // The messages the last take() put in flight, in order (ids beside handles, so a search reads
  // no record): a connection reports the outcomes of what it just took, and collectInFlight()
  // finds those here without the id index (a miss a message at a million resident).
  std::vector<double> lastTakenIds_;
  std::vector<uint32_t> lastTaken_;
  std::vector<uint32_t> order_;
  std::vector<uint32_t> due_;
  mutable std::vector<uint32_t> peekScratch_;
};

}  // namespace mqc

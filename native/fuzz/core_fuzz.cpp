// libFuzzer target for native/core: the input bytes decode into a configuration (bindings, groups,
// throttles, domains with small limits) and then a sequence of operations on one mqc::Core. After
// every operation the core's own checkInvariants() must hold, and so must the checks made here
// independently of it: connection counts within every limit and far from wrapping, message and
// connection bookkeeping that adds up (a small model of what is in flight, what was accepted and
// removed, which connection ids are open), and per-operation postconditions. A failed check prints
// what failed and traps, so libFuzzer records the input.
//
// Build and run: node scripts/fuzz.mjs (see native/fuzz/README.md). To replay one input with every
// decoded operation printed to stderr:
//   MQC_FUZZ_TRACE=1 native/test/build/fuzz/core_fuzz path/to/input
//
// The encoding is positional and total: every byte string is a valid input, and a string that ends
// early reads as zeros for the configuration and stops the operation sequence. The opcode numbers
// and the configuration layout are mirrored in native/fuzz/make_seeds.mjs.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <unordered_set>
#include <vector>

#include "core.hpp"

using namespace mqc;

namespace {

bool g_trace = false;

#define TRACE(...)                                  \
  do {                                              \
    if (g_trace) std::fprintf(stderr, __VA_ARGS__); \
  } while (0)

size_t g_step = 0;  // operation index, for failure messages

[[noreturn]] void failCheck(const char* what, int line) {
  std::fprintf(stderr, "core_fuzz: check failed after operation %zu (core_fuzz.cpp:%d): %s\n", g_step, line, what);
  std::fflush(stderr);
  __builtin_trap();
}
#define CHECK(cond)                          \
  do {                                       \
    if (!(cond)) failCheck(#cond, __LINE__); \
  } while (0)

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kWrap = 1e9;  // no count may reach this: it would mean an unsigned count wrapped
constexpr size_t kMaxDomains = 8;

// Forward byte reader; reads past the end return 0.
struct Reader {
  const uint8_t* p;
  size_t n;
  size_t i = 0;
  bool done() const { return i >= n; }
  uint8_t u8() { return i < n ? p[i++] : 0; }
  uint32_t below(uint32_t m) { return m == 0 ? 0 : u8() % m; }
};

// A limit: kUnlimited for bytes 0xc0..0xff (a quarter), else byte % mod.
uint32_t limitOf(uint8_t b, uint32_t mod) { return b >= 0xc0 ? kUnlimited : b % mod; }

const char* placeName(Place p) {
  switch (p) {
    case Place::Free:
      return "free";
    case Place::Active:
      return "active";
    case Place::Delayed:
      return "delayed";
    case Place::InFlight:
      return "inFlight";
    case Place::Cancelled:
      return "cancelled";
  }
  return "?";
}

enum Op : uint8_t {
  kEnqueue = 0,
  kEnqueueBatch,
  kCancel,
  kTake,
  kSettle,
  kDefer,
  kUntake,
  kRemoveActive,
  kPromoteDue,
  kExpireActive,
  kGoalOpen,
  kDefaultMaintain,
  kMaintainDomain,
  kMaintainAll,
  kRelease,
  kMigrate,
  kFlush,
  kFail,
  kRetryNow,
  kDrainGrants,
  kDrainExpired,
  kTime,
  kSetSuspended,
  kSetMessageThrottle,
  kAddDomain,
  kQuery,
  kSettleBatch,
  // Added with lazy cancel and the batched hot path; appended so older inputs keep their meaning.
  kEnqueueBatchAt,
  kDeferBatch,
  kMaintainSlice,
  kPrepareVisit,
  kCancelMany,
  // Added with cancelBatch; appended so older inputs keep their meaning.
  kCancelBatch,
  // Added with visitDefault and the grant cap of maintainSlice; appended likewise.
  kVisitDefault,
  kMaintainSliceCapped,
  // Added with enqueueArrivals, the highestId counter and setAttempts; appended likewise.
  kEnqueueArrivals,
  kSetAttempts,
  // Added with the Host scope (per MX host caps); appended likewise.
  kAddHost,
  kSetDomainHosts,
  kClaimHost,
  // Added with forgetDomain (domain slots freed and reused); appended likewise.
  kForgetDomain,
  // Added with the flight table (staged single outcomes); appended likewise.
  kApplyOutcomes,
  kOpCount,
};

struct Fuzz {
  Reader r;
  Core* core = nullptr;
  double now = 1000000;
  bool autoDrain = true;

  // Messages.
  double nextId = 1;
  std::vector<double> known;  // ids enqueued at some point (a ring of the latest 256)
  size_t knownNext = 0;
  std::vector<double> inFlight;      // ids taken and not yet settled, deferred or untaken
  std::vector<double> cancelledIds;  // ids cancelled lately (a ring of 64): free to enqueue again
  double accepted = 0, cancelled = 0, settled = 0, removed = 0, failed = 0, expiredDrained = 0;
  // The largest id any accepted enqueue took (0 before the first): kHighestId must equal it, since
  // the core raises the counter to the largest id of each batch it accepts and never otherwise.
  double highestAccepted = 0;

  // Connections.
  std::vector<Grant> open;                   // drained grants not yet released, with their pair
  std::vector<double> closed;                // released ids (a ring of the latest 64)
  std::unordered_set<double> everGranted;    // every drained grant id
  std::unordered_set<double> releasedEarly;  // released before their grant was drained
  double maxGranted = 0;
  std::vector<Grant> lastDrained;          // the grants of the latest drainGrants
  std::vector<DomainLimits> domainLimits;  // each domain's limits as added or set (scope caps for migrate)
  // Live reconfiguration (opSetLimits) may lower a limit below a live count. A count may then stay
  // above its limit, but never grow while it is: checkLedger compares each count above its limit
  // with its value after the previous operation (this snapshot; 0 for a domain new since).
  struct Counts {
    std::vector<uint32_t> pair, domain, groupDomain, group, binding;
  } prev;
  // The Host scope as the fuzzer set it up: each host's cap, its caps per binding [h * B + b], and
  // each domain's MX set (empty: not known).
  std::vector<uint32_t> hostMax, hostBindingMax;
  std::vector<std::vector<uint32_t>> domainSets;
  const std::vector<uint32_t>& setOf(uint32_t d) const {
    static const std::vector<uint32_t> kNone;
    return d < domainSets.size() ? domainSets[d] : kNone;
  }

  // Rate throttles: while the clock has only moved forward, every throttle's grant times are
  // known here (connections opened by pairs that use it, messages taken by pairs whose message
  // throttle it is), and no window of windowMs may hold more than count of them. A clock that
  // went back makes the throttle count stale times as its latest, which this model does not
  // follow, so it stops there.
  bool clockMonotone = true;
  std::vector<std::vector<double>> throttleGrants;

  // Rotations: the domain-pass rotation (one step per pass that found a due domain: maintainAll,
  // a new snapshot of maintainSlice / nextSlice, nextDomainStart) and each domain's binding
  // rotation (every bindingOrder call with more than one binding holding mail), followed exactly so
  // the slices' domains and bindingOrder's / prepareVisit's order can be predicted.
  uint32_t domainRot = 0;
  std::vector<uint32_t> bindingRot;

  // The sliced pass in progress, which maintainSlice and nextSlice share: the snapshot of the due
  // domains in visit order, and how many of them were handed out. Empty when none is in progress.
  std::vector<uint32_t> passSnap;
  size_t passPos = 0;

  // The last prepareVisit (its domain, now and goalsz), which visitDefault acts on; visitSet is
  // false until the first one.
  bool visitSet = false;
  std::vector<uint32_t> lastOrder;  // the order the last prepareVisit gave
  uint32_t visitD = 0;
  double visitAt = 0;
  int32_t visitGz = 0;

  // kActiveRemoved: every operation adds to removedWant the messages it must take out of active
  // queues (taken, cancelled, removed, expired, failed); the loop checks the counter moved by
  // exactly that.
  double removedWant = 0;

  uint32_t D() const { return static_cast<uint32_t>(core->domains()); }
  uint32_t B() const { return core->bindings(); }
  const LedgerConfig& cfg() const { return core->ledger().config(); }
  double counter(uint32_t i) const { return core->counters()[i]; }
  double live() const { return counter(kActive) + counter(kDelayed) + counter(kInFlight); }

  // --- argument choosers ------------------------------------------------------------------------
  uint32_t domain() { return r.below(D()); }
  uint32_t binding() { return r.below(B()); }

  // A time relative to now: mostly near it (either side), sometimes seconds away.
  double relTime(uint8_t b) const {
    if (b < 200)
      return now + (static_cast<double>(b) - 40) * 10 + (b % 8 == 7 ? 0.25 : 0);  // -400 .. +1590 ms, some fractional
    if (b < 230) return now + (b - 200) * 1000.0;                                 // 0 .. 29 s ahead
    return now - (b - 229) * 1000.0;                                              // 1 .. 26 s behind
  }
  // A next-attempt time, with the values the core must refuse now and then.
  double nextAttemptOf(uint8_t b) const {
    switch (b) {
      case 249:
        return -mqc::kMaxTime;  // the earliest time the core takes
      case 250:
        return kNaN;
      case 251:
        return kInf;
      case 252:
        return -kInf;
      case 253:
        return std::nextafter(mqc::kMaxTime, kInf);  // just past the range of a Date: refused
      case 254:
        return mqc::kMaxTime;  // the latest time the core takes
      case 255:
        return now;
      default:
        return relTime(b);
    }
  }
  double expiryOf(uint8_t b) const {
    if (b < 112) return kNever;
    switch (b) {
      case 112:
        return kNaN;
      case 113:
        return -kInf;
      case 114:
        return -1e300;
      case 115:
        return now;
      default:
        return relTime(static_cast<uint8_t>((b - 116) * 255 / 139));
    }
  }
  static double bogusId(uint8_t b) {
    static const double ids[] = {kNaN, -1, 0.5, 1.5, 9007199254740992.0, 1e300, kInf, -kInf, -0.5, 4294967296.5};
    return ids[b % (sizeof(ids) / sizeof(ids[0]))];
  }
  static bool validId(double id) { return id >= 0 && id <= kMaxId && std::floor(id) == id; }
  static bool timeOk(double t) { return std::isfinite(t) && std::fabs(t) <= mqc::kMaxTime; }
  double freshId() { return nextId++; }
  double knownId(uint8_t b) const { return known.empty() ? 0 : known[b % known.size()]; }
  void remember(double id) {
    if (known.size() < 256)
      known.push_back(id);
    else
      known[knownNext++ % 256] = id;
  }
  // An id the core accepted (queued, or expired at once): kHighestId must cover it.
  void noteAccepted(double id) {
    if (id > highestAccepted) highestAccepted = id;
  }
  static uint16_t attemptsAfterTake(uint16_t a) { return a < 0xffff ? static_cast<uint16_t>(a + 1) : a; }
  bool isInFlight(double id) const {
    for (double x : inFlight)
      if (x == id) return true;
    return false;
  }
  void dropInFlight(double id) {
    for (size_t i = 0; i < inFlight.size(); ++i)
      if (inFlight[i] == id) {
        inFlight[i] = inFlight.back();
        inFlight.pop_back();
        return;
      }
    CHECK(!"dropInFlight: id not in the model's in-flight set");
  }
  // An id for settle/defer/untake/cancel: mostly an in-flight one, else a known one, else bogus.
  double messageId(uint8_t mode, uint8_t pick) const {
    if (mode < 150 && !inFlight.empty()) return inFlight[pick % inFlight.size()];
    if (mode < 235) return knownId(pick);
    if (mode < 240) return 0;
    if (mode < 243) return kMaxId;
    return bogusId(pick);
  }
  int32_t goalszOf(uint8_t b) const {
    static const int32_t v[] = {
        0, 0, 0, 1, 2, 3, -1, 5, 10, std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min(), -2};
    return v[b % (sizeof(v) / sizeof(v[0]))];
  }
  uint32_t reserveOf(uint8_t b, uint32_t d, uint32_t bi) const {
    switch (b % 8) {
      case 0:
      case 1:
        return core->reserveFor(d, bi);
      case 2:
        return 0;
      case 3:
        return cfg().serverReserve;
      case 4:
        return 1;
      case 5:
        return cfg().serverReserve + 1;
      case 6:
        return 0xfffffffeu;
      default:
        return 2;
    }
  }

  // --- checks after every operation --------------------------------------------------------------
  void checkLedger() {
    const ConnectionLedger& L = core->ledger();
    const LedgerConfig& c = cfg();
    uint64_t ceiling = static_cast<uint64_t>(c.serverMax) + c.serverReserve;
    CHECK(L.total() < kWrap);
    CHECK(L.total() <= ceiling || L.total() <= prevTotal);
    CHECK(L.openedEver() >= L.releasedEver());
    CHECK(L.openedEver() - L.releasedEver() == L.total());
    CHECK(counter(kOpened) == static_cast<double>(L.openedEver()));
    CHECK(counter(kReleased) == static_cast<double>(L.releasedEver()));
    CHECK(counter(kConnections) == static_cast<double>(L.total()));
    if (!hostMax.empty()) {
      // Every charge belongs to an open lease; the charges tally to each host's counts, within caps.
      std::vector<uint32_t> host(hostMax.size(), 0), hostBinding(hostBindingMax.size(), 0);
      for (const Grant& g : open) {
        uint32_t h = L.leaseHost(g.connectionId);
        if (h == kNoHost) continue;
        CHECK(h < hostMax.size());
        ++host[h];
        ++hostBinding[static_cast<size_t>(h) * B() + g.binding];
      }
      for (size_t h = 0; h < hostMax.size(); ++h) {
        CHECK(host[h] <= L.hostCount(static_cast<uint32_t>(h)));  // grants not drained yet count too
        CHECK(L.hostCount(static_cast<uint32_t>(h)) <= hostMax[h]);
        for (uint32_t b = 0; b < B(); ++b)
          CHECK(L.hostBindingCount(static_cast<uint32_t>(h), b) <= hostBindingMax[h * B() + b]);
      }
    }
    uint64_t sumB = 0;
    for (uint32_t b = 0; b < B(); ++b) {
      uint32_t n = L.bindingCount(b);
      CHECK(n < kWrap);
      CHECK(n <= c.bindingMax[b] || n <= prevOf(prev.binding, b));
      sumB += n;
    }
    CHECK(sumB == L.total());
    for (uint32_t g = 0; g < L.groups(); ++g) {
      CHECK(L.groupCount(g) < kWrap);
      CHECK(L.groupCount(g) <= c.groupMax[g] || L.groupCount(g) <= prevOf(prev.group, g));
    }
    uint64_t sumD = 0;
    for (uint32_t d = 0; d < D(); ++d) {
      uint64_t sumP = 0;
      for (uint32_t b = 0; b < B(); ++b) {
        uint32_t n = L.pairCount(d, b);
        CHECK(n < kWrap);
        CHECK(n <= L.pairLimits(d, b).maxConnections || n <= prevOf(prev.pair, static_cast<size_t>(d) * B() + b));
        sumP += n;
      }
      CHECK(L.domainCount(d) < kWrap);
      CHECK(sumP == L.domainCount(d));
      CHECK(d < domainLimits.size());
      CHECK(L.domainCount(d) <= domainLimits[d].scopeMax || L.domainCount(d) <= prevOf(prev.domain, d));
      sumD += sumP;
      for (uint32_t g = 0; g < L.groups(); ++g) {
        CHECK(L.groupDomainCount(g, d) < kWrap);
        CHECK(L.groupDomainCount(g, d) <= domainLimits[d].groupScopeMax[g] ||
              L.groupDomainCount(g, d) <= prevOf(prev.groupDomain, static_cast<size_t>(d) * L.groups() + g));
      }
    }
    CHECK(sumD == L.total());
    // The model: every connection is either drained and open, or pending in the grant queue.
    CHECK(static_cast<double>(open.size()) + static_cast<double>(core->pendingGrants()) -
              static_cast<double>(releasedEarly.size()) ==
          static_cast<double>(L.total()));
    // With no grant pending, the model knows every lease and its pair: the pair counts are its.
    if (core->pendingGrants() == 0) {
      CHECK(releasedEarly.empty());
      std::vector<uint32_t> want(static_cast<size_t>(D()) * B(), 0);
      for (const Grant& g : open) {
        CHECK(g.domain < D() && g.binding < B());
        ++want[static_cast<size_t>(g.domain) * B() + g.binding];
      }
      for (uint32_t d = 0; d < D(); ++d)
        for (uint32_t b = 0; b < B(); ++b) CHECK(L.pairCount(d, b) == want[static_cast<size_t>(d) * B() + b]);
    }
  }

  void checkMessages() {
    double active = 0, delayed = 0;
    for (uint32_t d = 0; d < D(); ++d) {
      size_t dt = 0;
      for (uint32_t b = 0; b < B(); ++b) dt += core->activeSize(d, b);
      CHECK(dt == core->activeTotal(d));
      active += static_cast<double>(dt);
      delayed += static_cast<double>(core->delayedSize(d));
    }
    CHECK(active == counter(kActive));
    CHECK(delayed == counter(kDelayed));
    CHECK(static_cast<double>(inFlight.size()) == counter(kInFlight));
    CHECK(counter(kExpired) == expiredDrained + static_cast<double>(core->pendingExpired()));
    CHECK(counter(kDomains) == static_cast<double>(D()));
    // highestId: at least every id ever accepted, and raised only by an accepted enqueue, to the
    // largest id it took: exactly the model's maximum (a refusal that moved it would show here).
    CHECK(counter(kHighestId) >= highestAccepted);
    CHECK(counter(kHighestId) == highestAccepted);
    // Every message accepted is still live, or was removed once by exactly one route.
    CHECK(accepted - cancelled - settled - removed - failed - expiredDrained -
              static_cast<double>(core->pendingExpired()) ==
          live());
    for (uint32_t b = 0; b < B(); ++b) {
      double qb = 0;
      for (uint32_t d = 0; d < D(); ++d) qb += static_cast<double>(core->activeSize(d, b));
      CHECK(core->counters()[kFixedCounters + B() + b] == qb);
      CHECK(core->counters()[kFixedCounters + b] == static_cast<double>(core->ledger().bindingCount(b)));
    }
  }

  void checkAll() {
    CHECK(core->checkInvariants());
    checkLedger();
    checkMessages();
    checkThrottles();
    snapshotCounts();
  }

  static uint32_t prevOf(const std::vector<uint32_t>& v, size_t i) { return i < v.size() ? v[i] : 0; }
  uint64_t prevTotal = 0;
  void snapshotCounts() {
    const ConnectionLedger& L = core->ledger();
    prev = Counts{};
    for (uint32_t d = 0; d < D(); ++d) {
      for (uint32_t b = 0; b < B(); ++b) prev.pair.push_back(L.pairCount(d, b));
      prev.domain.push_back(L.domainCount(d));
      for (uint32_t g = 0; g < L.groups(); ++g) prev.groupDomain.push_back(L.groupDomainCount(g, d));
    }
    for (uint32_t g = 0; g < L.groups(); ++g) prev.group.push_back(L.groupCount(g));
    for (uint32_t b = 0; b < B(); ++b) prev.binding.push_back(L.bindingCount(b));
    prevTotal = L.total();
  }

  // kActiveRemoved never goes down, and an operation moves it by exactly the messages it took out
  // of active queues.
  void checkRemoved(double before) {
    double is = counter(kActiveRemoved);
    if (is != before || removedWant != 0)
      TRACE("  activeRemoved %.17g -> %.17g (want +%.17g)\n", before, is, removedWant);
    CHECK(is >= before);
    CHECK(is - before == removedWant);
  }

  // After an open for one pair with autoDrain and no grant pending before it: the grants drained
  // are the connections just opened, all for that pair.
  void checkOwnGrants(bool pendingBefore, uint32_t opened, uint32_t d, uint32_t b) {
    if (!autoDrain || pendingBefore) return;
    if (opened == 0) return;
    CHECK(lastDrained.size() == opened);
    for (const Grant& g : lastDrained) CHECK(g.domain == d && g.binding == b);
  }

  // After a pass over d at now: nothing due is left delayed and nothing expired is left active
  // (the first 64 of each queue are looked at).
  void checkPrepared(uint32_t d) {
    double id;
    MessageInfo mi;
    if (core->peekDelayed(d, 0, &id, 1) == 1) {
      CHECK(core->locate(id, &mi) == Status::Ok);
      CHECK(mi.nextAttempt > now);
    }
    double ids[64];
    for (uint32_t b = 0; b < B(); ++b) {
      size_t n = core->peekActive(d, b, 0, ids, 64);
      for (size_t i = 0; i < n; ++i) {
        CHECK(core->locate(ids[i], &mi) == Status::Ok);
        CHECK(mi.expiresAt > now);
      }
    }
  }

  // The order bindingOrder(d) gives now: the bindings with active mail, rotated by the model's
  // rotation of d, which then moves on as the core's does. Call it once per bindingOrder call made
  // (directly or by maintainDomain / prepareVisit), after it, with the queues as it saw them.
  std::vector<uint32_t> expectOrder(uint32_t d) {
    if (bindingRot.size() < D()) bindingRot.resize(D(), 0);
    std::vector<uint32_t> v;
    for (uint32_t b = 0; b < B(); ++b)
      if (core->activeSize(d, b) > 0) v.push_back(b);
    if (v.size() > 1) {
      size_t start = bindingRot[d]++ % v.size();
      std::rotate(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(start), v.end());
    }
    return v;
  }

  // Delayed messages of d that a promoteDue at now would expire instead of promoting (due, and
  // past their expiry): a maintenance pass over d expires these from the delayed queue and the
  // rest of its expiries from active queues, which count in kActiveRemoved.
  double dueExpiring(uint32_t d) const {
    size_t size = core->delayedSize(d);
    MessageInfo mi;
    for (size_t k = 64;; k *= 4) {
      if (k > size) k = size;
      std::vector<double> ids(k);
      size_t got = core->peekDelayed(d, 0, ids.data(), k);
      double n = 0;
      for (size_t i = 0; i < got; ++i) {
        CHECK(core->locate(ids[i], &mi) == Status::Ok);
        if (mi.nextAttempt > now) return n;
        if (mi.expiresAt <= now) n += 1;
      }
      if (got == size) return n;
    }
  }

  // The head of an active queue (dead entries skipped) is in queue order: urgent first, then by
  // next attempt.
  void checkQueueOrder(uint32_t d, uint32_t b) const {
    double ids[256];
    size_t n = core->peekActive(d, b, 0, ids, 256);
    MessageInfo mi, prev{};
    for (size_t i = 0; i < n; ++i) {
      CHECK(core->locate(ids[i], &mi) == Status::Ok && mi.place == Place::Active && mi.domain == d && mi.binding == b);
      if (i > 0)
        CHECK(mi.priority < prev.priority || (mi.priority == prev.priority && mi.nextAttempt >= prev.nextAttempt));
      prev = mi;
    }
  }

  void traceIds(const char* label, const double* v, size_t n) const {
    if (!g_trace) return;
    std::fprintf(stderr, "%s[", label);
    for (size_t i = 0; i < n; ++i) std::fprintf(stderr, "%s%.17g", i ? "," : "", v[i]);
    std::fprintf(stderr, "]");
  }

  void rememberCancelled(double id) {
    if (cancelledIds.size() < 64)
      cancelledIds.push_back(id);
    else
      cancelledIds[static_cast<size_t>(cancelled) % 64] = id;
  }

  // The ids of a settleBatch or deferBatch: count byte nm % 7 with [mode, pick] per element (mode
  // < 40 repeats an earlier element), or from 250 every message in flight. With spoil, 240..249
  // is every message in flight with the last one replaced by a bad entry (a repeat, a queued or
  // unknown id, a bogus one), so a refusal has a whole batch to undo.
  std::vector<double> batchIds(uint8_t nm, bool spoil) {
    bool all = nm >= 250 || (spoil && nm >= 240);
    size_t n = all ? inFlight.size() : nm % 7;
    std::vector<double> ids(n);
    for (size_t i = 0; i < n; ++i) {
      if (all) {
        ids[i] = inFlight[i];
        continue;
      }
      uint8_t mode = r.u8(), pick = r.u8();
      if (mode < 40 && i > 0)
        ids[i] = ids[pick % i];  // a repeat inside the batch
      else
        ids[i] = messageId(mode < 40 ? 0 : mode, pick);
    }
    if (all && nm < 250 && n > 0) {
      uint8_t pick = r.u8();
      switch (nm % 4) {
        case 0:
          ids[n - 1] = ids[0];
          break;
        case 1:
          ids[n - 1] = knownId(pick);
          break;
        case 2:
          ids[n - 1] = bogusId(pick);
          break;
        default:
          ids[n - 1] = nextId + pick;
          break;  // never enqueued yet
      }
    }
    return ids;
  }

  // The status settleBatch / deferBatch must give for ids (with a valid time), and the index of
  // the first bad entry.
  Status predictInFlightBatch(const std::vector<double>& ids, size_t* at) const {
    for (size_t i = 0; i < ids.size(); ++i) {
      MessageInfo mi;
      bool repeat = false;
      for (size_t j = 0; j < i; ++j) repeat |= ids[j] == ids[i];
      Status want = Status::Ok;
      if (!validId(ids[i]))
        want = Status::BadArgument;
      else if (core->locate(ids[i], &mi) != Status::Ok)
        want = Status::UnknownId;
      else if (repeat && isInFlight(ids[i]))
        want = Status::DuplicateId;
      else if (!isInFlight(ids[i]))
        want = Status::NotInFlight;
      if (want != Status::Ok) {
        *at = i;
        return want;
      }
    }
    *at = 0;
    return Status::Ok;
  }

  // Every message in flight, as the core describes it (parallel to inFlight).
  std::vector<MessageInfo> inFlightInfo() const {
    std::vector<MessageInfo> v(inFlight.size());
    for (size_t i = 0; i < inFlight.size(); ++i)
      CHECK(core->locate(inFlight[i], &v[i]) == Status::Ok && v[i].place == Place::InFlight);
    return v;
  }
  static bool sameInfo(const MessageInfo& a, const MessageInfo& b) {
    return a.id == b.id && a.domain == b.domain && a.binding == b.binding && a.place == b.place &&
           a.priority == b.priority && a.attempts == b.attempts && a.nextAttempt == b.nextAttempt &&
           a.expiresAt == b.expiresAt;
  }

  // After a refused batch: every valid id of ids[0..n) is where it was (present[i]: located as
  // before[i]) or still unknown.
  void checkStillAsBefore(const std::vector<double>& ids, size_t n, const std::vector<bool>& present,
                          const std::vector<MessageInfo>& before) {
    for (size_t i = 0; i < n; ++i) {
      if (!validId(ids[i])) continue;
      MessageInfo mi;
      Status l = core->locate(ids[i], &mi);
      if (present[i])
        CHECK(l == Status::Ok && sameInfo(mi, before[i]));
      else
        CHECK(l == Status::UnknownId);
    }
  }

  // A call that opened connections: the server ceiling rule, per call.
  void checkOpened(uint32_t opened, uint64_t totalBefore, uint32_t reserve, uint32_t callsAllowed) {
    const LedgerConfig& c = cfg();
    uint64_t total = core->ledger().total();
    CHECK(total == totalBefore + opened);
    uint64_t ceiling = static_cast<uint64_t>(c.serverMax) + c.serverReserve;
    uint64_t limit = ceiling > reserve ? ceiling - reserve : 0;
    if (opened > 0) CHECK(total <= (limit > totalBefore ? limit : totalBefore));
    // Under the reserve, one call takes at most one connection past serverMax.
    if (reserve < c.serverReserve) {
      uint64_t normal = c.serverMax > totalBefore ? c.serverMax : totalBefore;
      CHECK(total <= normal + callsAllowed);
    }
  }

  std::vector<uint32_t> pairCounts() const {
    std::vector<uint32_t> v(static_cast<size_t>(D()) * B());
    for (uint32_t d = 0; d < D(); ++d)
      for (uint32_t b = 0; b < B(); ++b) v[static_cast<size_t>(d) * B() + b] = core->ledger().pairCount(d, b);
    return v;
  }
  // k grants of throttle t at `at` (now by default). A grant made at an earlier time (visitDefault
  // acts at the now of the last prepareVisit) is kept in time order; the throttle records it at
  // its latest clock reading, which lies between `at` and now, so the model's time is never later
  // than the throttle's and the window check stays sound (only weaker for such grants).
  void charge(int32_t t, size_t k, double at) {
    if (t == kNoThrottle || !clockMonotone) return;
    if (throttleGrants.size() <= static_cast<size_t>(t)) throttleGrants.resize(static_cast<size_t>(t) + 1);
    std::vector<double>& g = throttleGrants[static_cast<size_t>(t)];
    for (size_t i = 0; i < k; ++i) g.insert(std::upper_bound(g.begin(), g.end(), at), at);
  }
  void charge(int32_t t, size_t k) { charge(t, k, now); }
  // Connections opened since `before` (a pairCounts() taken with no release or migration since),
  // charged at `at`.
  void chargeConnections(const std::vector<uint32_t>& before) { chargeConnections(before, now); }
  void chargeConnections(const std::vector<uint32_t>& before, double at) {
    for (uint32_t d = 0; d < D(); ++d)
      for (uint32_t b = 0; b < B(); ++b) {
        size_t i = static_cast<size_t>(d) * B() + b;
        uint32_t was = i < before.size() ? before[i] : 0;
        uint32_t is = core->ledger().pairCount(d, b);
        CHECK(is >= was);
        charge(core->ledger().pairLimits(d, b).throttle, is - was, at);
      }
  }
  void checkThrottles() {
    if (!clockMonotone) return;
    const ConnectionLedger& L = core->ledger();
    for (size_t t = 0; t < throttleGrants.size() && t < L.throttleCount(); ++t) {
      std::vector<double>& g = throttleGrants[t];
      const RateThrottle& th = L.throttle(static_cast<int32_t>(t));
      size_t keep = 0;
      while (keep < g.size() && g[keep] <= now - th.windowMs()) ++keep;
      g.erase(g.begin(), g.begin() + static_cast<std::ptrdiff_t>(keep));
      CHECK(g.size() <= th.count());
    }
  }

  void afterGrants() {
    if (autoDrain) drainGrants(0x7fffffff);
  }

  void drainGrants(size_t max) {
    size_t pending = core->pendingGrants();
    size_t ask = max < pending + 2 ? max : pending + 2;  // sometimes more than is pending
    std::vector<double> out(3 * ask);
    size_t n = core->drainGrants(out.data(), ask);
    CHECK(n == (ask < pending ? ask : pending));
    CHECK(core->pendingGrants() == pending - n);
    lastDrained.clear();
    for (size_t i = 0; i < n; ++i) {
      double id = out[3 * i];
      lastDrained.push_back(Grant{id, static_cast<uint32_t>(out[3 * i + 1]), static_cast<uint32_t>(out[3 * i + 2])});
      CHECK(validId(id) && id >= 1);
      CHECK(everGranted.insert(id).second);  // connection ids are never reused
      if (id > maxGranted) maxGranted = id;
      CHECK(out[3 * i + 1] < D());
      CHECK(out[3 * i + 2] < B());
      if (releasedEarly.erase(id) == 0) open.push_back(lastDrained.back());
    }
  }

  // --- operations --------------------------------------------------------------------------------
  void opEnqueue() {
    uint8_t dm = r.u8(), bm = r.u8(), im = r.u8(), pk = r.u8(), na = r.u8(), ex = r.u8();
    uint32_t d = dm < 250 ? dm % D() : D() + (dm - 250);
    uint32_t b = bm < 250 ? bm % B() : B() + (bm - 250);
    bool fresh = im < 160;
    double id = fresh ? freshId() : im < 230 ? knownId(pk) : bogusId(pk);
    uint8_t prio = pk >= 250 ? 2 : pk & 1;
    double next = nextAttemptOf(na), exp = expiryOf(ex);
    double liveBefore = live();
    size_t expBefore = core->pendingExpired();
    Status s = core->enqueue(d, b, id, prio, next, exp, now);
    TRACE("enqueue(d=%u, b=%u, id=%.17g, prio=%u, next=%.17g, exp=%.17g, now=%.17g) -> %s\n", d, b, id, prio, next, exp,
          now, statusName(s));
    bool validTimes = timeOk(next) && !std::isnan(exp) && exp != -kInf;
    Status want = d >= D()                     ? Status::BadDomain
                  : b >= B()                   ? Status::BadBinding
                  : !validTimes                ? Status::BadArgument
                  : (!validId(id) || prio > 1) ? Status::BadArgument
                                               : Status::Ok;
    if (want != Status::Ok || fresh)
      CHECK(s == want);
    else
      CHECK(s == Status::Ok || s == Status::DuplicateId);
    if (s == Status::Ok) {
      accepted += 1;
      remember(id);
      noteAccepted(id);
      MessageInfo mi;
      if (next >= exp) {
        CHECK(core->pendingExpired() == expBefore + 1);
        CHECK(core->locate(id, &mi) == Status::UnknownId);
      } else {
        CHECK(core->locate(id, &mi) == Status::Ok);
        CHECK(mi.domain == d && mi.binding == b && mi.priority == prio && mi.attempts == 0);
        CHECK(mi.place == (next > now ? Place::Delayed : Place::Active));
      }
    } else {
      CHECK(live() == liveBefore && core->pendingExpired() == expBefore);
    }
  }

  void opEnqueueBatch() {
    uint8_t dm = r.u8(), nm = r.u8(), flags = r.u8(), na = r.u8(), ex = r.u8();
    uint32_t d = dm < 252 ? dm % D() : D();
    uint32_t b = binding();
    size_t n;
    bool big = nm >= 240;
    if (big)
      n = static_cast<size_t>(nm - 239) * 16;  // 16 .. 256 fresh ids, for node splits
    else
      n = nm % 9;
    std::vector<double> ids(n);
    std::vector<uint8_t> prios(n);
    for (size_t i = 0; i < n; ++i) {
      uint8_t m = big ? 0 : r.u8();
      uint8_t p = big ? static_cast<uint8_t>(i * 7 + flags) : r.u8();
      if (m < 150)
        ids[i] = freshId();
      else if (m < 190 && i > 0)
        ids[i] = ids[p % i];
      else if (m < 240)
        ids[i] = knownId(p);
      else
        ids[i] = bogusId(p);
      prios[i] = (flags & 2) && p == 255 ? 2 : (p >> 1) & 1;
    }
    checkedEnqueueBatch(d, b, ids, (flags & 1) ? &prios : nullptr, nullptr, nextAttemptOf(na), expiryOf(ex));
  }

  // enqueueBatchAt: one next-attempt time per message, some of them bad; ids fresh, repeated,
  // known, lately cancelled (which must be free again) or bogus. Bad binding now and then.
  void opEnqueueBatchAt() {
    uint8_t dm = r.u8(), bm = r.u8(), nm = r.u8(), flags = r.u8(), ex = r.u8();
    uint32_t d = dm < 252 ? dm % D() : D();
    uint32_t b = bm < 252 ? bm % B() : B() + (bm - 252);
    bool big = nm >= 240;
    size_t n = big ? static_cast<size_t>(nm - 239) * 16 : nm % 9;
    std::vector<double> ids(n), times(n);
    std::vector<uint8_t> prios(n);
    for (size_t i = 0; i < n; ++i) {
      if (big) {
        // Fresh ids at times spread around now (active, delayed, some at or past their expiry).
        ids[i] = freshId();
        prios[i] = static_cast<uint8_t>((i * 7 + flags) >> 1) & 1;
        times[i] = relTime(static_cast<uint8_t>((i * 37 + flags) % 230));
        continue;
      }
      uint8_t m = r.u8(), p = r.u8(), t = r.u8();
      if (m < 140)
        ids[i] = freshId();
      else if (m < 165 && i > 0)
        ids[i] = ids[p % i];
      else if (m < 200 && !cancelledIds.empty())
        ids[i] = cancelledIds[p % cancelledIds.size()];
      else if (m < 245)
        ids[i] = knownId(p);
      else
        ids[i] = bogusId(p);
      prios[i] = (flags & 2) && p == 255 ? 2 : (p >> 1) & 1;
      times[i] = nextAttemptOf(t);
    }
    checkedEnqueueBatch(d, b, ids, (flags & 1) ? &prios : nullptr, &times, now, expiryOf(ex));
  }

  // enqueueBatch (times == nullptr, every message at next) or enqueueBatchAt (times[i] each): the
  // status and failedAt predicted exactly (bad domain, binding or times; then the first bad entry;
  // then the first id already known to the core or repeated in the batch), and all or nothing:
  // a refusal leaves every id as it was.
  void checkedEnqueueBatch(uint32_t d, uint32_t b, const std::vector<double>& ids, const std::vector<uint8_t>* prios,
                           const std::vector<double>* times, double next, double exp) {
    size_t n = ids.size();
    const uint8_t* pp = prios ? prios->data() : nullptr;
    std::vector<MessageInfo> before(n);
    std::vector<bool> present(n);
    for (size_t i = 0; i < n; ++i) present[i] = validId(ids[i]) && core->locate(ids[i], &before[i]) == Status::Ok;
    Status want = Status::Ok;
    size_t wantAt = 0;
    bool validTimes = timeOk(next) && !std::isnan(exp) && exp != -kInf;
    if (d >= D())
      want = Status::BadDomain;
    else if (b >= B())
      want = Status::BadBinding;
    else if (!validTimes)
      want = Status::BadArgument;
    bool headerBad = want != Status::Ok;  // (failedAt names no entry then)
    for (size_t i = 0; i < n && want == Status::Ok; ++i)
      if (!validId(ids[i]) || (pp && pp[i] > 1) || (times && !timeOk((*times)[i]))) {
        want = Status::BadArgument;
        wantAt = i;
      }
    for (size_t i = 0; i < n && want == Status::Ok; ++i) {
      bool repeat = present[i];
      for (size_t j = 0; j < i; ++j) repeat |= ids[j] == ids[i];
      if (repeat) {
        want = Status::DuplicateId;
        wantAt = i;
      }
    }
    double liveBefore = live();
    size_t expBefore = core->pendingExpired();
    size_t failedAt = 12345;
    Status s = times ? core->enqueueBatchAt(d, b, ids.data(), pp, times->data(), n, exp, now, &failedAt)
                     : core->enqueueBatch(d, b, ids.data(), pp, n, next, exp, now, &failedAt);
    if (g_trace) {
      std::fprintf(stderr, "%s(d=%u, b=%u, ", times ? "enqueueBatchAt" : "enqueueBatch", d, b);
      traceIds("ids=", ids.data(), n);
      if (times) traceIds(", times=", times->data(), n);
      std::fprintf(stderr, ", prios=");
      if (pp == nullptr)
        std::fprintf(stderr, "null");
      else
        for (size_t i = 0; i < n; ++i) std::fprintf(stderr, "%s%u", i ? "," : "[", pp[i]);
      std::fprintf(stderr, "%s, next=%.17g, exp=%.17g, now=%.17g) -> %s failedAt=%zu\n", pp && n ? "]" : "", next, exp,
                   now, statusName(s), failedAt);
    }
    CHECK(s == want);
    if (s != Status::Ok) {
      if (!headerBad) CHECK(failedAt == wantAt);
      CHECK(live() == liveBefore && core->pendingExpired() == expBefore);
      checkStillAsBefore(ids, n, present, before);
      return;
    }
    accepted += static_cast<double>(n);
    size_t expired = 0;
    for (size_t i = 0; i < n; ++i) {
      if (i < 32) remember(ids[i]);
      noteAccepted(ids[i]);
      double t = times ? (*times)[i] : next;
      MessageInfo mi;
      if (t >= exp) {
        ++expired;
        CHECK(core->locate(ids[i], &mi) == Status::UnknownId);
        continue;
      }
      CHECK(core->locate(ids[i], &mi) == Status::Ok);
      CHECK(mi.domain == d && mi.binding == b && mi.priority == (pp ? pp[i] : 0) && mi.attempts == 0);
      CHECK(mi.nextAttempt == t && mi.expiresAt == exp);
      CHECK(mi.place == (t > now ? Place::Delayed : Place::Active));
    }
    CHECK(core->pendingExpired() == expBefore + expired);
    CHECK(live() == liveBefore + static_cast<double>(n - expired));
    checkQueueOrder(d, b);
  }

  void opCancel() {
    uint8_t mode = r.u8(), pick = r.u8();
    double id = messageId(mode, pick);
    bool wasInFlight = isInFlight(id);
    MessageInfo bi;
    Status known = validId(id) ? core->locate(id, &bi) : Status::BadArgument;
    size_t sizeBefore = known == Status::Ok && bi.place == Place::Active ? core->activeSize(bi.domain, bi.binding) : 0;
    Status s = core->cancel(id);
    TRACE("cancel(id=%.17g) -> %s\n", id, statusName(s));
    if (!validId(id))
      CHECK(s == Status::BadArgument);
    else if (wasInFlight)
      CHECK(s == Status::InFlight);
    else
      CHECK(s == (known == Status::Ok ? Status::Ok : Status::UnknownId));
    if (s == Status::Ok) {
      cancelled += 1;
      rememberCancelled(id);
      MessageInfo mi;
      CHECK(core->locate(id, &mi) == Status::UnknownId);
      if (bi.place == Place::Active) {
        removedWant += 1;
        CHECK(core->activeSize(bi.domain, bi.binding) + 1 == sizeBefore);
      }
    }
  }

  void opTake() {
    uint32_t d = domain(), b = binding();
    uint8_t km = r.u8();
    size_t k = km >= 250 ? 100 + (km - 250) * 40 : km % 20;
    // A quarter of the small takes go through an open connection (takeFor: the pair its lease
    // names, after migrates the model follows), and some through one that is closed or never was.
    if (km < 240 && (km / 20) % 4 == 3 && !open.empty()) {
      const Grant& g = open[(km + d) % open.size()];
      return doTake(g.domain, g.binding, k, g.connectionId);
    }
    if (km >= 240 && km < 250) return takeForUnknown(km, k);
    doTake(d, b, k);
  }

  // takeFor of a connection that is not open (released, never issued, or not an id): refused,
  // nothing moves. An id past the last one drained is unissued only while no grant is pending.
  void takeForUnknown(uint8_t km, size_t k) {
    double id = !closed.empty() && km % 2 == 0              ? closed[km % closed.size()]
                : km % 3 == 0 && core->pendingGrants() == 0 ? maxGranted + 1
                                                            : bogusId(km);
    double inFlightBefore = core->counters()[kInFlight], activeBefore = core->counters()[kActive];
    size_t expiredBefore = core->pendingExpired();
    std::vector<double> out(k + 1, -1);
    size_t got = 99;
    Status s = core->takeFor(id, k, now, out.data(), &got);
    TRACE("takeFor(id=%.17g, k=%zu) -> %s\n", id, k, statusName(s));
    CHECK(s == (timeOk(now) ? Status::UnknownConnection : Status::BadArgument));
    CHECK(got == 0);
    CHECK(core->counters()[kInFlight] == inFlightBefore && core->counters()[kActive] == activeBefore);
    CHECK(core->pendingExpired() == expiredBefore);
    CHECK(out[0] == -1);
  }

  // take(d, b, k) (or takeFor(connectionId, k) of an open connection on (d, b)): serves the queue
  // head in order (peeked before, dead entries skipped), skipping only expired messages, within the
  // message throttle's allowance.
  void doTake(uint32_t d, uint32_t b, size_t k, double connectionId = 0) {
    size_t before = core->activeSize(d, b);
    uint32_t allowance = core->ledger().messageAllowance(d, b, now);
    size_t expBefore = core->pendingExpired();
    // The head of the queue, to check that take serves it in order (skipping expired messages).
    double head[64];
    size_t headN = core->peekActive(d, b, 0, head, 64);
    // Their attempt counts: a take counts each message on by one from what it had (set by
    // setAttempts, or counted by earlier takes), saturating at 65535.
    uint16_t headAttempts[64];
    for (size_t i = 0; i < headN; ++i) {
      MessageInfo hi;
      CHECK(core->locate(head[i], &hi) == Status::Ok && hi.place == Place::Active);
      headAttempts[i] = hi.attempts;
    }
    std::vector<double> out(k);
    size_t got = 0;
    if (connectionId != 0)
      CHECK(core->takeFor(connectionId, k, now, out.data(), &got) == Status::Ok);
    else
      got = core->take(d, b, k, now, out.data());
    if (g_trace) {
      std::fprintf(stderr, "take%s(d=%u, b=%u, k=%zu, now=%.17g) -> %zu [", connectionId != 0 ? "For" : "", d, b, k,
                   now, got);
      for (size_t i = 0; i < got; ++i) std::fprintf(stderr, "%s%.17g", i ? "," : "", out[i]);
      std::fprintf(stderr, "]\n");
    }
    CHECK(got <= k && got <= before && got <= allowance);
    charge(core->ledger().pairLimits(d, b).messageThrottle, got);
    size_t expiredNow = core->pendingExpired() - expBefore;
    CHECK(core->activeSize(d, b) == before - got - expiredNow);
    removedWant += static_cast<double>(got + expiredNow);
    // Took as many as it could: fewer than k only when the queue or the allowance ran out.
    if (got < k && got < allowance) CHECK(core->activeSize(d, b) == 0);
    size_t j = 0;
    for (size_t i = 0; i < got; ++i) {
      double id = out[i];
      CHECK(!isInFlight(id));
      MessageInfo mi;
      CHECK(core->locate(id, &mi) == Status::Ok);
      CHECK(mi.place == Place::InFlight && mi.domain == d && mi.binding == b);
      CHECK(mi.expiresAt > now);
      inFlight.push_back(id);
      // Queue order: the i-th taken message is the next unexpired one of the peeked head.
      // Whatever it passed over was expired (and so is gone from the core).
      if (j < headN) {
        while (j < headN && head[j] != id) {
          MessageInfo skipped;
          CHECK(core->locate(head[j], &skipped) == Status::UnknownId);
          ++j;
        }
        if (j < headN) {
          CHECK(mi.attempts == attemptsAfterTake(headAttempts[j]));
          ++j;
        }  // else it lies past the peeked head
      }
    }
  }

  void opSettleDeferUntake(int which) {
    uint8_t mode = r.u8(), pick = r.u8();
    double id = messageId(mode, pick);
    bool wasInFlight = isInFlight(id);
    MessageInfo before{};
    if (wasInFlight) CHECK(core->locate(id, &before) == Status::Ok && before.place == Place::InFlight);
    Status s;
    double next = 0;
    size_t expBefore = core->pendingExpired();
    if (which == 0) {
      s = core->settle(id);
      TRACE("settle(id=%.17g) -> %s\n", id, statusName(s));
    } else if (which == 1) {
      next = nextAttemptOf(r.u8());
      s = core->defer(id, next, now);
      TRACE("defer(id=%.17g, next=%.17g, now=%.17g) -> %s\n", id, next, now, statusName(s));
    } else {
      s = core->untake(id);
      TRACE("untake(id=%.17g) -> %s\n", id, statusName(s));
    }
    bool argsOk = validId(id) && (which != 1 || timeOk(next));
    if (!argsOk)
      CHECK(s == Status::BadArgument);
    else if (wasInFlight)
      CHECK(s == Status::Ok);
    else
      CHECK(s == Status::NotInFlight || s == Status::UnknownId);
    if (s != Status::Ok) return;
    dropInFlight(id);
    MessageInfo mi;
    if (which == 0) {
      settled += 1;
      CHECK(core->locate(id, &mi) == Status::UnknownId);
    } else if (which == 1) {
      if (next >= before.expiresAt) {
        CHECK(core->pendingExpired() == expBefore + 1);
        CHECK(core->locate(id, &mi) == Status::UnknownId);
      } else {
        CHECK(core->locate(id, &mi) == Status::Ok);
        CHECK(mi.place == (next > now ? Place::Delayed : Place::Active) && mi.nextAttempt == next);
        CHECK(mi.attempts == before.attempts);
      }
    } else {
      CHECK(core->locate(id, &mi) == Status::Ok);
      CHECK(mi.place == Place::Active && mi.domain == before.domain && mi.binding == before.binding);
      CHECK(mi.nextAttempt == before.nextAttempt);
      CHECK(mi.attempts + 1 == before.attempts || (before.attempts == 0 && mi.attempts == 0));
    }
  }

  // applyOutcomes: up to 6 staged settles and defers, as JavaScript stages them, keeping the flight
  // table from then on. Each entry names a message by id and by a handle that may be right (the
  // table's), stale, or garbage; an entry is applied when its id is in flight (the first time in
  // the batch) with a valid time for a defer, else skipped and counted.
  void opApplyOutcomes() {
    if (!core->tracksFlight()) core->trackFlight();
    size_t n = r.u8() % 7;
    std::vector<double> e(Core::kOutcomeStride * n);
    std::vector<double> ids(n);
    std::vector<MessageInfo> before(n);
    std::vector<bool> applies(n);
    std::vector<double> live(inFlight);
    size_t refusedWant = 0;
    for (size_t i = 0; i < n; ++i) {
      uint8_t mode = r.u8(), pick = r.u8(), how = r.u8();
      double id = messageId(mode, pick);
      double t = how & 1 ? nextAttemptOf(r.u8()) : std::nan("");
      double handle;
      const double* set =
          core->flightStorage().get() +
          (validId(id) ? static_cast<size_t>(Core::flightSetOf(id)) * Core::kFlightWays * Core::kFlightStride : 0);
      const double garbage[] = {std::nan(""), -1, 1e300, 0.5, 3, 1099511627776.0};
      handle = garbage[(how >> 1) % 6];
      if ((how >> 4) & 1)
        for (size_t j = 0; j < Core::kFlightWays; ++j)
          if (validId(id) && set[j * Core::kFlightStride] == id + 1) handle = set[j * Core::kFlightStride + 1];
      e[Core::kOutcomeStride * i] = handle;
      e[Core::kOutcomeStride * i + 1] = id;
      e[Core::kOutcomeStride * i + 2] = t;
      ids[i] = id;
      bool inFlightNow = false;
      for (size_t j = 0; j < live.size(); ++j)
        if (live[j] == id) {
          inFlightNow = true;
          if (!(how & 1) || timeOk(t)) {
            live[j] = live.back();
            live.pop_back();
          }
          break;
        }
      applies[i] = validId(id) && inFlightNow && (!(how & 1) || timeOk(t));
      if (applies[i]) CHECK(core->locate(id, &before[i]) == Status::Ok && before[i].place == Place::InFlight);
      if (!applies[i]) ++refusedWant;
    }
    size_t refused = 0;
    size_t expBefore = core->pendingExpired();
    Status s = core->applyOutcomes(e.data(), n, now, &refused);
    if (g_trace) traceIds("applyOutcomes(ids=", ids.data(), n);
    TRACE("  -> %s, refused %zu\n", statusName(s), refused);
    CHECK(s == Status::Ok && refused == refusedWant);
    size_t expired = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!applies[i]) continue;
      dropInFlight(ids[i]);
      MessageInfo mi;
      double t = e[Core::kOutcomeStride * i + 2];
      if (std::isnan(t)) {
        settled += 1;
        CHECK(core->locate(ids[i], &mi) == Status::UnknownId);
      } else if (t >= before[i].expiresAt) {
        ++expired;
        CHECK(core->locate(ids[i], &mi) == Status::UnknownId);
      } else {
        CHECK(core->locate(ids[i], &mi) == Status::Ok);
        CHECK(mi.place == (t > now ? Place::Delayed : Place::Active) && mi.nextAttempt == t);
        CHECK(mi.attempts == before[i].attempts);
      }
    }
    CHECK(core->pendingExpired() == expBefore + expired);
  }

  // settleBatch: all in flight and distinct -> all settled; else nothing changes and failedAt names
  // the first bad entry. The model predicts the status and the index exactly.
  void opSettleBatch() {
    std::vector<double> ids = batchIds(r.u8(), false);
    size_t n = ids.size();
    size_t wantAt = 0;
    Status want = predictInFlightBatch(ids, &wantAt);
    double liveBefore = live();
    size_t failedAt = 12345;
    Status s = core->settleBatch(ids.data(), n, &failedAt);
    if (g_trace) {
      traceIds("settleBatch(ids=", ids.data(), n);
      std::fprintf(stderr, ") -> %s failedAt=%zu\n", statusName(s), failedAt);
    }
    CHECK(s == want);
    if (s != Status::Ok) {
      CHECK(failedAt == wantAt);
      CHECK(live() == liveBefore);
      for (double id : inFlight) {
        MessageInfo mi;
        CHECK(core->locate(id, &mi) == Status::Ok && mi.place == Place::InFlight);
      }
      return;
    }
    CHECK(failedAt == 0);
    CHECK(live() + static_cast<double>(n) == liveBefore);
    for (double id : ids) {
      MessageInfo mi;
      CHECK(core->locate(id, &mi) == Status::UnknownId);
      dropInFlight(id);
      settled += 1;
    }
  }

  // deferBatch: all in flight and distinct (and a finite time) -> each deferred as defer() would
  // (expired when the time is at or past its expiry); else nothing changes and failedAt names the
  // first bad entry.
  void opDeferBatch() {
    uint8_t nm = r.u8(), na = r.u8();
    std::vector<double> ids = batchIds(nm, true);
    double next = nextAttemptOf(na);
    size_t n = ids.size();
    size_t wantAt = 0;
    Status want = timeOk(next) ? predictInFlightBatch(ids, &wantAt) : Status::BadArgument;
    std::vector<MessageInfo> before = inFlightInfo();
    double liveBefore = live(), activeBefore = counter(kActive), delayedBefore = counter(kDelayed);
    size_t expBefore = core->pendingExpired();
    size_t failedAt = 12345;
    Status s = core->deferBatch(ids.data(), n, next, now, &failedAt);
    if (g_trace) {
      traceIds("deferBatch(ids=", ids.data(), n);
      std::fprintf(stderr, ", next=%.17g, now=%.17g) -> %s failedAt=%zu\n", next, now, statusName(s), failedAt);
    }
    CHECK(s == want);
    if (s != Status::Ok) {
      if (timeOk(next)) CHECK(failedAt == wantAt);
      CHECK(live() == liveBefore && counter(kActive) == activeBefore && counter(kDelayed) == delayedBefore);
      CHECK(core->pendingExpired() == expBefore);
      std::vector<MessageInfo> after = inFlightInfo();
      for (size_t i = 0; i < after.size(); ++i) CHECK(sameInfo(after[i], before[i]));
      return;
    }
    size_t expired = 0;
    for (double id : ids) {
      size_t k = 0;
      while (inFlight[k] != id) ++k;
      MessageInfo bi = before[k];
      before[k] = before.back();
      before.pop_back();
      dropInFlight(id);  // (the same swap-with-last as before[])
      MessageInfo mi;
      if (next >= bi.expiresAt) {
        ++expired;
        CHECK(core->locate(id, &mi) == Status::UnknownId);
        continue;
      }
      CHECK(core->locate(id, &mi) == Status::Ok);
      CHECK(mi.place == (next > now ? Place::Delayed : Place::Active) && mi.nextAttempt == next);
      CHECK(mi.domain == bi.domain && mi.binding == bi.binding && mi.priority == bi.priority &&
            mi.attempts == bi.attempts && mi.expiresAt == bi.expiresAt);
    }
    CHECK(core->pendingExpired() == expBefore + expired);
    CHECK(live() + static_cast<double>(expired) == liveBefore);
  }

  // The next slice as the core must hand it out, from the model's snapshot: a new snapshot of the
  // due domains (rotated by the domain-pass rotation, which moves on by one when any is due) when
  // none is in progress or fresh is set; then the next maxDomains of it. *remaining = snapshot
  // entries still to hand out; at 0 the snapshot is dropped.
  std::vector<uint32_t> modelSlice(size_t maxDomains, bool fresh, size_t* remaining) {
    std::vector<uint32_t> v = modelSliceNext(maxDomains, fresh);
    modelSliceTake(v.size(), remaining);
    return v;
  }
  // The first half of modelSlice: the snapshot (a new one if due) and its next maxDomains entries,
  // not yet handed out (a maintainSlice under a grant cap may visit only a prefix of them).
  std::vector<uint32_t> modelSliceNext(size_t maxDomains, bool fresh) {
    if (fresh || passPos >= passSnap.size()) {
      std::vector<uint32_t> due;
      for (uint32_t d = 0; d < D(); ++d)
        if (core->isDue(d, now)) due.push_back(d);
      size_t n = due.size();
      size_t start = n == 0 ? 0 : domainRot++ % n;
      passSnap.resize(n);
      for (size_t i = 0; i < n; ++i) passSnap[i] = due[(start + i) % n];
      passPos = 0;
      if (g_trace) {
        std::fprintf(stderr, "  new snapshot (start %zu) [", start);
        for (size_t i = 0; i < n; ++i) std::fprintf(stderr, "%s%u", i ? "," : "", passSnap[i]);
        std::fprintf(stderr, "]\n");
      }
    }
    size_t left = passSnap.size() - passPos;
    size_t k = maxDomains < left ? maxDomains : left;
    return std::vector<uint32_t>(passSnap.begin() + static_cast<std::ptrdiff_t>(passPos),
                                 passSnap.begin() + static_cast<std::ptrdiff_t>(passPos + k));
  }
  // The second half: n entries of the snapshot were handed out.
  void modelSliceTake(size_t n, size_t* remaining) {
    CHECK(passPos + n <= passSnap.size());
    passPos += n;
    *remaining = passSnap.size() - passPos;
    if (*remaining == 0) {
      passSnap.clear();
      passPos = 0;
    }
  }

  // The queues and connections of every domain, to tell which ones an operation touched.
  struct DomainState {
    std::vector<size_t> active, delayed;
    std::vector<uint32_t> pairs;
  };
  DomainState domainState() const {
    DomainState s;
    for (uint32_t d = 0; d < D(); ++d) {
      s.active.push_back(core->activeTotal(d));
      s.delayed.push_back(core->delayedSize(d));
    }
    s.pairs = pairCounts();
    return s;
  }
  void checkUntouched(const DomainState& s, uint32_t d) const {
    CHECK(core->activeTotal(d) == s.active[d] && core->delayedSize(d) == s.delayed[d]);
    for (uint32_t b = 0; b < B(); ++b)
      CHECK(core->ledger().pairCount(d, b) == s.pairs[static_cast<size_t>(d) * B() + b]);
  }

  // Sliced passes. Mode m % 8: maxDomains 0, 1, 1, 2, 3, all (SIZE_MAX, or with v odd 2^32-1 as
  // the addon passes), or D() + v % 3; bit 3: fresh (abandon the pass in progress); bit 4:
  // nextSlice (the domains only, as the JavaScript pass takes them) instead of maintainSlice; bit
  // 5: each domain nextSlice hands out is then visited as the JavaScript pass does (prepareVisit
  // and the defaults, two more bytes: goalsz and prepareVisit's mode); bits 6-7: 0-3 more calls
  // right after, alternating between the two and not fresh, so they continue one snapshot.
  // Mode 7 calls nextDomainStart((m >> 3) % 6) instead, which moves the rotation but leaves a pass
  // in progress alone (v is read and unused: it was the visits of the two-argument one).
  void opMaintainSlice() {
    uint8_t m = r.u8(), v = r.u8();
    if (m % 8 == 7) {
      size_t dueCount = (m >> 3) % 6;
      size_t start = core->nextDomainStart(dueCount);
      TRACE("nextDomainStart(dueCount=%zu) -> %zu\n", dueCount, start);
      CHECK(start == (dueCount == 0 ? 0 : domainRot % dueCount));
      if (dueCount > 0) ++domainRot;
      return;
    }
    static const size_t kMax[] = {0, 1, 1, 2, 3};
    size_t maxDomains = m % 8 < 5 ? kMax[m % 8] : m % 8 == 5 ? (v & 1 ? 0xffffffffu : SIZE_MAX) : D() + v % 3;
    sliceCalls(m, maxDomains, SIZE_MAX);
  }

  // maintainSlice with a grant cap (numbered after the others): bytes m, v, c. m and v as for
  // opMaintainSlice, except that m % 8 == 7 is maxDomains 2^32-1 (no nextDomainStart) and that
  // every maintainSlice call made passes maxGrants: 1 + c % 8 for c < 224, 2^32-1 (as the addon
  // passes for none) below 240, else SIZE_MAX.
  void opMaintainSliceCapped() {
    uint8_t m = r.u8(), v = r.u8(), c = r.u8();
    static const size_t kMax[] = {0, 1, 1, 2, 3};
    size_t maxDomains = m % 8 < 5    ? kMax[m % 8]
                        : m % 8 == 5 ? (v & 1 ? 0xffffffffu : SIZE_MAX)
                        : m % 8 == 6 ? D() + v % 3
                                     : 0xffffffffu;
    size_t maxGrants = c < 224 ? 1 + c % 8 : c < 240 ? 0xffffffffu : SIZE_MAX;
    sliceCalls(m, maxDomains, maxGrants);
  }

  void sliceCalls(uint8_t m, size_t maxDomains, size_t maxGrants) {
    bool fresh = m & 0x08, js = m & 0x10, visit = m & 0x20;
    uint8_t gz = 0, pm = 0;
    if (visit) {
      gz = r.u8();
      pm = r.u8();
    }
    size_t calls = 1 + (m >> 6);
    for (size_t i = 0; i < calls; ++i) {
      if (i > 0) checkAll();
      if ((i % 2 == 0) == js)
        doNextSlice(maxDomains, i == 0 && fresh, visit, gz, pm);
      else
        doMaintainSlice(maxDomains, i == 0 && fresh, maxGrants);
    }
  }

  // maintainSlice: visits the model's next slice, or under a grant cap a prefix of it: the slice
  // goes on to its next domain only while it has opened fewer than maxGrants connections, so it
  // visits at least one (maxGrants >= 1), and it stops short of the model's slice only right
  // after the domain that brought its count to maxGrants or more. Each domain's own count of
  // opened connections is read from the ledger (nothing is released or migrated in a slice).
  // Those visited get a whole maintainDomain pass (a domain that stopped being due since the
  // snapshot is visited too and nothing changes); the rest are left exactly as they were, and the
  // model's snapshot moves on by the domains visited.
  void doMaintainSlice(size_t maxDomains, bool fresh, size_t maxGrants) {
    std::vector<bool> dueBefore(D());
    std::vector<double> delayedExpiring(D());
    for (uint32_t d = 0; d < D(); ++d) {
      dueBefore[d] = core->isDue(d, now);
      delayedExpiring[d] = dueExpiring(d);
    }
    DomainState before = domainState();
    std::vector<uint32_t> domainBefore(D());
    for (uint32_t d = 0; d < D(); ++d) domainBefore[d] = core->ledger().domainCount(d);
    uint64_t totalBefore = core->ledger().total();
    double expiredBefore = counter(kExpired);
    std::vector<uint32_t> want = modelSliceNext(maxDomains, fresh);
    size_t visited = 12345, remaining = 12345;
    uint32_t opened = core->maintainSlice(now, maxDomains, maxGrants, fresh, &visited, &remaining);
    chargeConnections(before.pairs);
    size_t wantRemaining = 12345;
    if (visited <= want.size()) modelSliceTake(visited, &wantRemaining);
    TRACE(
        "maintainSlice(now=%.17g, maxDomains=%zu, maxGrants=%zu, fresh=%d) -> %u visited=%zu remaining=%zu "
        "(want %zu of %zu, %zu)\n",
        now, maxDomains, maxGrants, fresh ? 1 : 0, opened, visited, remaining, visited, want.size(), wantRemaining);
    CHECK(visited <= want.size());
    if (maxGrants >= 1 && !want.empty()) CHECK(visited >= 1);
    CHECK(remaining == wantRemaining);
    CHECK(core->ledger().total() == totalBefore + opened);
    // The grant cap: the slice went on to the j-th domain only while under it, and stopped early
    // only once it had reached it.
    uint64_t sum = 0;
    for (size_t j = 0; j < visited; ++j) {
      CHECK(sum < maxGrants);
      uint32_t d = want[j];
      CHECK(core->ledger().domainCount(d) >= domainBefore[d]);
      sum += core->ledger().domainCount(d) - domainBefore[d];
    }
    CHECK(sum == opened);
    if (visited < want.size()) CHECK(opened >= maxGrants);
    std::vector<bool> wasVisited(D());
    for (size_t j = 0; j < visited; ++j) wasVisited[want[j]] = true;
    double expiringVisited = 0;
    for (uint32_t d = 0; d < D(); ++d) {
      if (!wasVisited[d] || !dueBefore[d]) checkUntouched(before, d);
      if (!wasVisited[d]) continue;
      checkPrepared(d);
      expectOrder(d);  // (no rotation for a domain that is not due: it has no active mail)
      expiringVisited += delayedExpiring[d];
    }
    removedWant += counter(kExpired) - expiredBefore - expiringVisited;
    afterGrants();
  }

  // nextSlice: hands out the model's next slice and changes nothing else (no promotion, no
  // expiry, no connection, no rotation of a domain's bindings); out has room for exactly the
  // domains expected. With visit, each is then visited as the JavaScript pass does.
  void doNextSlice(size_t maxDomains, bool fresh, bool visit, uint8_t gz, uint8_t pm) {
    DomainState before = domainState();
    std::vector<double> countersBefore(core->counters(), core->counters() + core->counterCount());
    size_t grantsBefore = core->pendingGrants(), expBefore = core->pendingExpired();
    size_t wantRemaining;
    std::vector<uint32_t> want = modelSlice(maxDomains, fresh, &wantRemaining);
    std::vector<uint32_t> out(want.size());
    size_t remaining = 12345;
    size_t n = core->nextSlice(now, maxDomains, fresh, out.data(), &remaining);
    if (g_trace) {
      std::fprintf(stderr, "nextSlice(now=%.17g, maxDomains=%zu, fresh=%d) -> %zu [", now, maxDomains, fresh ? 1 : 0,
                   n);
      for (size_t i = 0; i < n && i < out.size(); ++i) std::fprintf(stderr, "%s%u", i ? "," : "", out[i]);
      std::fprintf(stderr, "] remaining=%zu (want %zu, %zu)\n", remaining, want.size(), wantRemaining);
    }
    CHECK(n == want.size() && remaining == wantRemaining);
    for (size_t i = 0; i < n; ++i) CHECK(out[i] == want[i]);
    for (uint32_t d = 0; d < D(); ++d) checkUntouched(before, d);
    CHECK(core->pendingGrants() == grantsBefore && core->pendingExpired() == expBefore);
    for (size_t i = 0; i < countersBefore.size(); ++i) CHECK(core->counters()[i] == countersBefore[i]);
    if (!visit) return;
    for (uint32_t d : out) doPrepareVisit(d, gz, static_cast<uint8_t>(pm | 1));
  }

  // prepareVisit(d): promote and expire as a pass does; order = bindingOrder (the model's
  // rotation); reserves[j] = reserveFor(d, order[j]); wants[b] = computeGoal - pairCount clamped
  // to 0..2^32-1. Then, with bit 0 of the mode, the visit the JS pass makes from it: the default
  // for each listed pair that wants connections (opening min(wants, headroom)), and with bit 1
  // also for those that want none (opening nothing).
  void opPrepareVisit() {
    uint32_t d = domain();
    uint8_t gz = r.u8(), mode = r.u8();
    doPrepareVisit(d, gz, mode);
  }

  void doPrepareVisit(uint32_t d, uint8_t gz, uint8_t mode) {
    int32_t goalsz = goalszOf(gz);
    double expiredBefore = counter(kExpired), delayedExpiring = dueExpiring(d);
    const uint32_t kUnset = 0xdeadbeefu;
    std::vector<uint32_t> order(B(), kUnset), reserves(B(), kUnset), wants(B(), kUnset);
    size_t n = core->prepareVisit(d, now, goalsz, order.data(), reserves.data(), wants.data());
    visitSet = true;
    visitD = d;
    visitAt = now;
    visitGz = goalsz;
    if (g_trace) {
      std::fprintf(stderr, "prepareVisit(d=%u, now=%.17g, goalsz=%d) -> %zu order/reserve=[", d, now, goalsz, n);
      for (size_t j = 0; j < n && j < B(); ++j) std::fprintf(stderr, "%s%u/%u", j ? "," : "", order[j], reserves[j]);
      std::fprintf(stderr, "] wants=[");
      for (uint32_t b = 0; b < B(); ++b) std::fprintf(stderr, "%s%u", b ? "," : "", wants[b]);
      std::fprintf(stderr, "]\n");
    }
    checkPrepared(d);
    removedWant += counter(kExpired) - expiredBefore - delayedExpiring;
    std::vector<uint32_t> want = expectOrder(d);
    CHECK(n == want.size());
    lastOrder = want;
    for (size_t j = 0; j < n; ++j) {
      CHECK(order[j] == want[j]);
      CHECK(reserves[j] == core->reserveFor(d, order[j]));
    }
    for (uint32_t b = 0; b < B(); ++b) {
      int64_t w = core->computeGoal(d, b, goalsz) - static_cast<int64_t>(core->ledger().pairCount(d, b));
      CHECK(wants[b] == (w <= 0 ? 0 : w > 0xffffffffll ? 0xffffffffu : static_cast<uint32_t>(w)));
      if (core->activeSize(d, b) == 0 || core->ledger().pairLimits(d, b).suspended)
        CHECK(wants[b] == 0);
      else if (goalsz > 0)
        CHECK(wants[b] == static_cast<uint32_t>(goalsz));
    }
    if (!(mode & 1)) return;
    for (size_t j = 0; j < n; ++j) {
      uint32_t b = order[j];
      if (wants[b] == 0 && !(mode & 2)) continue;
      uint32_t headroom = core->ledger().headroom(d, b, reserves[j], now);
      uint64_t totalBefore = core->ledger().total();
      std::vector<uint32_t> pairs = pairCounts();
      bool pendingBefore = core->pendingGrants() > 0;
      uint32_t opened = core->defaultMaintain(d, b, now, goalsz, reserves[j]);
      chargeConnections(pairs);
      TRACE("  defaultMaintain(d=%u, b=%u, goalsz=%d, reserve=%u) -> %u (wants %u, headroom %u)\n", d, b, goalsz,
            reserves[j], opened, wants[b], headroom);
      CHECK(opened == (wants[b] < headroom ? wants[b] : headroom));
      checkOpened(opened, totalBefore, reserves[j], 1);
      afterGrants();
      checkOwnGrants(pendingBefore, opened, d, b);
    }
  }

  // visitDefault(b, reserve, &opened): defaultMaintain(d, b, now, goalsz, reserve) for the domain,
  // now and goalsz of the last prepareVisit. Bytes: mode m, reserve byte rm, then
  //   m % 4 < 3: a prepareVisit first (domain, goalsz and prepareVisit-mode bytes, as opPrepareVisit:
  //     with the mode's bit 0 its visit with defaultMaintain runs first, so the calls below meet
  //     pairs already at their goal); m % 4 == 3: none, the state of the last one (none yet:
  //     BadArgument), whose now may be older than the clock;
  //   bit 4: the clock then moves forward by (next byte) * 7 ms before the calls, so visitDefault
  //     acts at a now older than the clock's;
  //   bits 2-3: the bindings: 0 the prepareVisit order (every binding without one), 1 every binding,
  //     2 a list of 1 + (m >> 5) bytes, each % (B + 3) with B and B + 1 out of range and B + 2
  //     = 2^32-1, 3 one binding (next byte, % (B + 1)) called 2 + (m >> 5) % 3 times in a row.
  //   The reserve of the i-th call: reserveOf(rm + i) (reserveFor the pair, 0, serverReserve, ...).
  void opVisitDefault() {
    uint8_t m = r.u8(), rm = r.u8();
    std::vector<uint32_t> order;
    if (m % 4 < 3) {
      uint32_t d = domain();
      uint8_t gz = r.u8(), pm = r.u8();
      doPrepareVisit(d, gz, pm);
      // The order prepareVisit gave (the bindings of d with active mail, before its own visit).
      order = lastOrder;
    }
    if (m & 0x10) {
      double before = now;
      now += r.u8() * 7.0;
      TRACE("time %.17g -> %.17g\n", before, now);
    }
    std::vector<uint32_t> bs;
    switch ((m >> 2) % 4) {
      case 0:
        if (m % 4 < 3)
          bs = order;
        else
          for (uint32_t b = 0; b < B(); ++b) bs.push_back(b);
        break;
      case 1:
        for (uint32_t b = 0; b < B(); ++b) bs.push_back(b);
        break;
      case 2:
        for (size_t i = 0, k = 1 + (m >> 5); i < k; ++i) {
          uint32_t x = r.below(B() + 3);
          bs.push_back(x == B() + 2 ? 0xffffffffu : x);
        }
        break;
      default: {
        uint32_t b = r.below(B() + 1);
        for (size_t i = 0, k = 2 + (m >> 5) % 3; i < k; ++i) bs.push_back(b);
        break;
      }
    }
    for (size_t i = 0; i < bs.size(); ++i) {
      if (i > 0) checkAll();
      uint32_t b = bs[i];
      uint32_t reserve = visitSet && b < B() ? reserveOf(static_cast<uint8_t>(rm + i), visitD, b)
                                             : reserveOf(static_cast<uint8_t>((rm + i) | 2), 0, 0);
      checkedVisitDefault(b, reserve);
    }
  }

  // The headroom of (d, b) under every limit but its throttle, computed here from the limits as
  // added and the ledger's counts: pair, domain scope, group::domain, group and binding maxima, and
  // the server ceiling (serverMax + serverReserve - reserve, and under the reserve at most one past
  // serverMax per call). It never reads a throttle, so it does not move a throttle's clock.
  uint32_t limitsRoom(uint32_t d, uint32_t b, uint32_t reserve) const {
    const ConnectionLedger& L = core->ledger();
    const PairLimits& pl = L.pairLimits(d, b);
    if (pl.suspended) return 0;
    auto roomOf = [](uint32_t limit, uint64_t count) -> uint64_t { return count >= limit ? 0 : limit - count; };
    uint64_t w = roomOf(pl.maxConnections, L.pairCount(d, b));
    w = std::min(w, roomOf(domainLimits[d].scopeMax, L.domainCount(d)));
    int32_t g = L.groupOf(b);
    if (g != kNoGroup) {
      w = std::min(w, roomOf(domainLimits[d].groupScopeMax[g], L.groupDomainCount(static_cast<uint32_t>(g), d)));
      w = std::min(w, roomOf(cfg().groupMax[g], L.groupCount(static_cast<uint32_t>(g))));
    }
    w = std::min(w, roomOf(cfg().bindingMax[b], L.bindingCount(b)));
    uint64_t ceiling = static_cast<uint64_t>(cfg().serverMax) + cfg().serverReserve;
    uint64_t limit = ceiling > reserve ? ceiling - reserve : 0;
    uint64_t left = limit > L.total() ? limit - L.total() : 0;
    if (reserve < cfg().serverReserve) {
      uint64_t normalLeft = cfg().serverMax > L.total() ? cfg().serverMax - L.total() : 0;
      left = std::min(left, normalLeft + 1);
    }
    if (!hostMax.empty()) {  // the Host scope: one at a time until the MX set is known, else its room
      const std::vector<uint32_t>& set = setOf(d);
      uint64_t hr = set.empty() ? (L.domainCount(d) == 0 ? 1 : 0) : 0;
      for (uint32_t h : set)
        hr += std::min(roomOf(hostMax[h], L.hostCount(h)),
                       roomOf(hostBindingMax[static_cast<size_t>(h) * B() + b], L.hostBindingCount(h, b)));
      left = std::min(left, hr);
    }
    return static_cast<uint32_t>(std::min(w, left));
  }

  // One visitDefault call: BadArgument before any prepareVisit, BadBinding for b out of range,
  // *opened 0 and nothing changed then; else it opens exactly what defaultMaintain would for the
  // last prepareVisit's domain, now and goalsz: nothing when computeGoal is negative (empty queue,
  // suspended pair), else min(goal - pairCount, headroom at that now), all for (domain, b), as new
  // pending grants; within the server ceiling rule; no queue and no other pair moves.
  void checkedVisitDefault(uint32_t b, uint32_t reserve) {
    const ConnectionLedger& L = core->ledger();
    uint64_t totalBefore = L.total();
    size_t grantsBefore = core->pendingGrants(), expBefore = core->pendingExpired();
    DomainState before = domainState();
    Status want = Status::Ok;
    uint32_t wantOpened = 0;
    int64_t goal = -1;
    uint32_t headroom = 0;
    // A throttle's headroom moves its clock (to the latest time it was asked about), so asking it
    // before the call would hide a visitDefault acting at another now than the prepareVisit's: for
    // a throttled pair the headroom is read after the call instead (see below).
    bool throttled = false;
    int64_t w = 0;
    uint32_t room = 0;
    if (!visitSet)
      want = Status::BadArgument;
    else if (b >= B())
      want = Status::BadBinding;
    else {
      goal = core->computeGoal(visitD, b, visitGz);
      w = goal < 0 ? 0 : goal - static_cast<int64_t>(L.pairCount(visitD, b));
      throttled = L.pairLimits(visitD, b).throttle != kNoThrottle;
      room = limitsRoom(visitD, b, reserve);
      if (!throttled) {
        headroom = L.headroom(visitD, b, reserve, visitAt);
        CHECK(headroom == room);
        wantOpened = w <= 0 ? 0 : w < headroom ? static_cast<uint32_t>(w) : headroom;
      } else {
        wantOpened = w <= 0 ? 0 : w < room ? static_cast<uint32_t>(w) : room;  // before the throttle
      }
    }
    uint32_t opened = 0xdeadbeefu;
    Status s = core->visitDefault(b, reserve, &opened);
    if (throttled)
      TRACE("visitDefault(b=%u, reserve=%u) [d=%u now=%.17g goalsz=%d] -> %s opened=%u (goal %" PRId64
            ", throttled, want %s)\n",
            b, reserve, visitD, visitAt, visitGz, statusName(s), opened, goal, statusName(want));
    else
      TRACE("visitDefault(b=%u, reserve=%u) [d=%u now=%.17g goalsz=%d%s] -> %s opened=%u (goal %" PRId64
            ", headroom %u, want %s %u)\n",
            b, reserve, visitD, visitAt, visitGz, visitSet ? "" : " none", statusName(s), opened, goal, headroom,
            statusName(want), wantOpened);
    CHECK(s == want);
    if (s != Status::Ok) {
      CHECK(opened == 0);
      CHECK(L.total() == totalBefore && core->pendingGrants() == grantsBefore);
      for (uint32_t d = 0; d < D(); ++d) checkUntouched(before, d);
      return;
    }
    chargeConnections(before.pairs, visitAt);
    if (!throttled) {
      CHECK(opened == wantOpened);
    } else {
      // opened = min(w, every other limit's room, the throttle's grants available at the visit's
      // now): at most the first two, and short of them only when the throttle has none left at
      // that now after the call.
      uint32_t avail = L.throttle(L.pairLimits(visitD, b).throttle).available(visitAt);
      TRACE("  throttled pair: wants %" PRId64 ", room %u, throttle available after %u\n", w, room, avail);
      CHECK(opened <= wantOpened);
      if (opened < wantOpened) CHECK(avail == 0);
    }
    CHECK(core->pendingGrants() == grantsBefore + opened);
    CHECK(core->pendingExpired() == expBefore);
    if (L.pairLimits(visitD, b).suspended) CHECK(opened == 0);
    for (uint32_t d = 0; d < D(); ++d) {
      CHECK(core->activeTotal(d) == before.active[d] && core->delayedSize(d) == before.delayed[d]);
      for (uint32_t x = 0; x < B(); ++x)
        CHECK(L.pairCount(d, x) ==
              before.pairs[static_cast<size_t>(d) * B() + x] + (d == visitD && x == b ? opened : 0));
    }
    checkOpened(opened, totalBefore, reserve, 1);
    afterGrants();
    checkOwnGrants(grantsBefore > 0, opened, visitD, b);
  }

  // Lazy cancel under load: cancel most (or all, or a pattern) of the head of one active queue so
  // dead entries pile up at its front and purges run, check that the live order is the old one
  // less the cancelled ids, then maybe take from it and enqueue some of the cancelled ids again
  // (their ids are free at once, while their dead entries may still sit in the queue).
  void opCancelMany() {
    uint8_t dm = r.u8(), bm = r.u8(), pat = r.u8(), arg = r.u8(), tk = r.u8(), re = r.u8();
    uint32_t d = dm % D(), b = bm % B();
    for (size_t i = 0; i < static_cast<size_t>(D()) * B() && core->activeSize(d, b) == 0; ++i) {
      b = (b + 1) % B();
      if (b == 0) d = (d + 1) % D();
    }
    size_t size = core->activeSize(d, b);
    if (size == 0) {
      TRACE("cancelMany: no active mail\n");
      return;
    }
    size_t window = size < 512 ? size : 512;
    std::vector<double> head(window);
    CHECK(core->peekActive(d, b, 0, head.data(), window) == window);
    std::vector<bool> cut(window);
    uint32_t h = arg * 2654435761u;
    for (size_t i = 0; i < window; ++i) {
      switch (pat % 5) {
        case 0:
          cut[i] = i + arg % 4 < window;
          break;  // all but the last 0-3 of the head
        case 1:
          cut[i] = i % (3 + arg % 4) != 0;
          break;  // keep one in 3..6
        case 2:
          cut[i] = i <= arg % window;
          break;  // a prefix
        case 3:
          h = h * 1103515245u + 12345u;
          cut[i] = (h >> 16) % 4 != 0;
          break;  // about 3 in 4
        default:
          cut[i] = i >= window / 2;
          break;  // the back half
      }
    }
    std::vector<double> gone, kept;
    for (size_t i = 0; i < window; ++i) {
      if (!cut[i]) {
        kept.push_back(head[i]);
        continue;
      }
      Status s = core->cancel(head[i]);
      CHECK(s == Status::Ok);
      MessageInfo mi;
      CHECK(core->locate(head[i], &mi) == Status::UnknownId);
      gone.push_back(head[i]);
      cancelled += 1;
      removedWant += 1;
      rememberCancelled(head[i]);
    }
    TRACE("cancelMany(d=%u, b=%u, pattern=%u) cancelled %zu of %zu (head %zu)\n", d, b, pat % 5, gone.size(), size,
          window);
    CHECK(core->activeSize(d, b) == size - gone.size());
    // The live order is the old one less the cancelled: the kept ones lead the queue.
    std::vector<double> after(window);
    size_t got = core->peekActive(d, b, 0, after.data(), window);
    CHECK(got == (size - gone.size() < window ? size - gone.size() : window));
    for (size_t i = 0; i < kept.size(); ++i) CHECK(after[i] == kept[i]);
    if (kept.size() > 1) {
      size_t off = arg % kept.size();
      double one;
      CHECK(core->peekActive(d, b, off, &one, 1) == 1 && one == kept[off]);
    }
    checkQueueOrder(d, b);
    if (tk & 1) doTake(d, b, tk >> 1);
    if (!(re & 1) || gone.empty()) return;
    // Enqueue some cancelled ids again: to the same queue (now, or by its old priority) or another.
    size_t again = 1 + (re >> 1) % 8;
    for (size_t i = 0; i < again && i < gone.size(); ++i) {
      double id = gone[(i * 7 + re) % gone.size()];
      uint32_t d2 = re & 2 ? d : (d + 1) % D(), b2 = re & 4 ? b : (b + 1) % B();
      uint8_t prio = (re >> 3) & 1;
      double next = re & 0x10 ? now : now + 100;
      MessageInfo mi;
      if (core->locate(id, &mi) == Status::Ok) continue;  // (a repeat of this loop)
      Status s = core->enqueue(d2, b2, id, prio, next, kNever, now);
      TRACE("  enqueue again(d=%u, b=%u, id=%.17g, prio=%u, next=%.17g) -> %s\n", d2, b2, id, prio, next,
            statusName(s));
      CHECK(s == Status::Ok);
      accepted += 1;
      remember(id);
      noteAccepted(id);
      CHECK(core->locate(id, &mi) == Status::Ok && mi.domain == d2 && mi.binding == b2 && mi.attempts == 0 &&
            mi.priority == prio && mi.nextAttempt == next);
      CHECK(mi.place == (next > now ? Place::Delayed : Place::Active));
    }
    checkQueueOrder(d, b);
  }

  // An id that is queued now (active or delayed) when there is one: from the active queue or the
  // delayed queue that pick names, else a known id.
  double queuedId(uint8_t pick, uint8_t off) const {
    uint32_t d = pick % D(), b = (pick / D()) % B();
    double id;
    if (size_t n = core->activeSize(d, b); n > 0 && core->peekActive(d, b, off % n, &id, 1) == 1) return id;
    if (size_t n = core->delayedSize(d); n > 0 && core->peekDelayed(d, off % n, &id, 1) == 1) return id;
    return knownId(pick);
  }

  // cancelBatch: ids from count byte nm. Below 200: nm % 13 entries of [mode, pick] (a queued id,
  // a repeat of an earlier entry, a known id, one in flight, a lately cancelled id, an id never
  // enqueued, a bogus one). From 200: the head of one active queue (up to 256, in queue order or
  // reversed) and of its domain's delayed queue, repeated in part; from 240 with one entry spoilt
  // (an id in flight, or a bogus id, inserted). The status, failedAt and count are predicted
  // exactly: the first entry that is not an id or is in flight refuses the batch and nothing
  // changes; else every distinct queued id is cancelled (active ones lazily), unknown ones
  // skipped. With bit 0 of the flags byte, some cancelled ids are then enqueued again and the
  // same batch is sent again: it cancels exactly those.
  void opCancelBatch() {
    uint8_t nm = r.u8(), flags = r.u8();
    std::vector<double> ids;
    if (nm < 200) {
      size_t n = nm % 13;
      for (size_t i = 0; i < n; ++i) {
        uint8_t mode = r.u8(), pick = r.u8();
        if (mode < 100)
          ids.push_back(queuedId(pick, static_cast<uint8_t>(mode * 37 + i)));
        else if (mode < 130 && i > 0)
          ids.push_back(ids[pick % i]);
        else if (mode < 160)
          ids.push_back(knownId(pick));
        else if (mode < 180 && !inFlight.empty())
          ids.push_back(inFlight[pick % inFlight.size()]);
        else if (mode < 200 && !cancelledIds.empty())
          ids.push_back(cancelledIds[pick % cancelledIds.size()]);
        else if (mode < 235)
          ids.push_back(nextId + pick);  // never enqueued yet
        else
          ids.push_back(bogusId(pick));
      }
    } else {
      uint8_t pick = r.u8(), spoil = r.u8();
      uint32_t d = pick % D(), b = (pick / D()) % B();
      for (size_t i = 0; i < static_cast<size_t>(D()) * B() && core->activeSize(d, b) == 0; ++i) {
        b = (b + 1) % B();
        if (b == 0) d = (d + 1) % D();
      }
      size_t na = core->activeSize(d, b) < 256 ? core->activeSize(d, b) : 256;
      size_t nd = core->delayedSize(d) < 64 ? core->delayedSize(d) : 64;
      ids.resize(na + nd);
      CHECK(core->peekActive(d, b, 0, ids.data(), na) == na);
      CHECK(core->peekDelayed(d, 0, ids.data() + na, nd) == nd);
      if (nm & 1) std::reverse(ids.begin(), ids.end());
      for (size_t i = 0, reps = (nm >> 1) % 8; i < reps && !ids.empty(); ++i)
        ids.push_back(ids[(i * 31 + pick) % ids.size()]);
      if (nm >= 240) {
        double bad = (nm & 2) && !inFlight.empty() ? inFlight[spoil % inFlight.size()] : bogusId(spoil);
        ids.insert(ids.begin() + static_cast<std::ptrdiff_t>(spoil % (ids.size() + 1)), bad);
      }
    }
    size_t n = ids.size();
    // The prediction, from the core's places before the call (the model's in-flight set agrees).
    Status want = Status::Ok;
    size_t wantAt = 0;
    std::vector<MessageInfo> before(n);
    std::vector<bool> present(n, false);
    for (size_t i = 0; i < n; ++i) {
      if (!validId(ids[i])) {
        if (want == Status::Ok) {
          want = Status::BadArgument;
          wantAt = i;
        }
        continue;
      }
      present[i] = core->locate(ids[i], &before[i]) == Status::Ok;
      CHECK((present[i] && before[i].place == Place::InFlight) == isInFlight(ids[i]));
      if (want == Status::Ok && present[i] && before[i].place == Place::InFlight) {
        want = Status::InFlight;
        wantAt = i;
      }
    }
    // On success: each distinct id present is cancelled, from its active queue or delayed queue.
    std::vector<double> gone;
    std::vector<size_t> activeGone(static_cast<size_t>(D()) * B(), 0), delayedGone(D(), 0);
    for (size_t i = 0; i < n; ++i) {
      if (!present[i] || std::find(gone.begin(), gone.end(), ids[i]) != gone.end()) continue;
      gone.push_back(ids[i]);
      if (before[i].place == Place::Active)
        ++activeGone[static_cast<size_t>(before[i].domain) * B() + before[i].binding];
      else
        ++delayedGone[before[i].domain];
    }
    std::vector<size_t> activeBefore(static_cast<size_t>(D()) * B()), delayedBefore(D());
    for (uint32_t d = 0; d < D(); ++d) {
      delayedBefore[d] = core->delayedSize(d);
      for (uint32_t b = 0; b < B(); ++b) activeBefore[static_cast<size_t>(d) * B() + b] = core->activeSize(d, b);
    }
    // The heads of the queues it cancels from (up to 256), to check the live order afterwards.
    std::vector<std::vector<double>> heads(activeBefore.size());
    for (size_t q = 0; q < heads.size(); ++q) {
      if (activeGone[q] == 0) continue;
      heads[q].resize(activeBefore[q] < 256 ? activeBefore[q] : 256);
      CHECK(core->peekActive(static_cast<uint32_t>(q / B()), static_cast<uint32_t>(q % B()), 0, heads[q].data(),
                             heads[q].size()) == heads[q].size());
    }
    double liveBefore = live(), activeCountBefore = counter(kActive), delayedCountBefore = counter(kDelayed);
    size_t expBefore = core->pendingExpired();
    size_t failedAt = 12345, count = 12345;
    Status s = core->cancelBatch(ids.data(), n, &failedAt, &count);
    if (g_trace) {
      traceIds("cancelBatch(ids=", ids.data(), n);
      std::fprintf(stderr, ") -> %s failedAt=%zu cancelled=%zu (want %s at %zu, %zu)\n", statusName(s), failedAt, count,
                   statusName(want), wantAt, gone.size());
    }
    CHECK(s == want);
    CHECK(core->pendingExpired() == expBefore);
    if (s != Status::Ok) {
      CHECK(failedAt == wantAt);
      CHECK(count == 0);
      CHECK(live() == liveBefore && counter(kActive) == activeCountBefore && counter(kDelayed) == delayedCountBefore);
      checkStillAsBefore(ids, n, present, before);
      for (uint32_t d = 0; d < D(); ++d) {
        CHECK(core->delayedSize(d) == delayedBefore[d]);
        for (uint32_t b = 0; b < B(); ++b)
          CHECK(core->activeSize(d, b) == activeBefore[static_cast<size_t>(d) * B() + b]);
      }
      return;
    }
    CHECK(failedAt == 0);
    CHECK(count == gone.size());
    double nActive = 0;
    for (size_t q = 0; q < activeGone.size(); ++q) nActive += static_cast<double>(activeGone[q]);
    CHECK(counter(kActive) + nActive == activeCountBefore);
    CHECK(counter(kDelayed) + (static_cast<double>(gone.size()) - nActive) == delayedCountBefore);
    CHECK(live() + static_cast<double>(gone.size()) == liveBefore);
    removedWant += nActive;
    cancelled += static_cast<double>(gone.size());
    for (double id : gone) {
      MessageInfo mi;
      CHECK(core->locate(id, &mi) == Status::UnknownId);
      rememberCancelled(id);
    }
    for (uint32_t d = 0; d < D(); ++d) {
      CHECK(core->delayedSize(d) + delayedGone[d] == delayedBefore[d]);
      for (uint32_t b = 0; b < B(); ++b) {
        size_t q = static_cast<size_t>(d) * B() + b;
        CHECK(core->activeSize(d, b) + activeGone[q] == activeBefore[q]);
        if (activeGone[q] == 0) continue;
        // The live order is the old one less the cancelled ids.
        std::vector<double> kept;
        for (double id : heads[q])
          if (std::find(gone.begin(), gone.end(), id) == gone.end()) kept.push_back(id);
        std::vector<double> after(heads[q].size());
        size_t got = core->peekActive(d, b, 0, after.data(), after.size());
        CHECK(got >= kept.size());
        for (size_t i = 0; i < kept.size(); ++i) CHECK(after[i] == kept[i]);
        checkQueueOrder(d, b);
      }
    }
    if (!(flags & 1) || gone.empty()) return;
    // Some cancelled ids come back as new messages (their dead entries may still be queued), and
    // the same batch again cancels exactly those.
    std::vector<double> back;
    for (size_t i = 0; i < 1 + (flags >> 1) % 4 && i < gone.size(); ++i) {
      double id = gone[(i * 7 + flags) % gone.size()];
      if (std::find(back.begin(), back.end(), id) != back.end()) continue;
      uint32_t d = (flags >> 3) % D(), b = (flags >> 5) % B();
      double next = flags & 0x80 ? now + 100 : now;
      Status e = core->enqueue(d, b, id, static_cast<uint8_t>((flags >> 4) & 1), next, kNever, now);
      TRACE("  enqueue again(d=%u, b=%u, id=%.17g, next=%.17g) -> %s\n", d, b, id, next, statusName(e));
      CHECK(e == Status::Ok);
      accepted += 1;
      remember(id);
      noteAccepted(id);
      back.push_back(id);
      if (next <= now) removedWant += 1;  // the second batch takes it out of its active queue
    }
    liveBefore = live();
    s = core->cancelBatch(ids.data(), n, &failedAt, &count);
    TRACE("  cancelBatch again -> %s cancelled=%zu (want %zu)\n", statusName(s), count, back.size());
    CHECK(s == Status::Ok && failedAt == 0 && count == back.size());
    CHECK(live() + static_cast<double>(back.size()) == liveBefore);
    cancelled += static_cast<double>(back.size());
    for (double id : back) {
      MessageInfo mi;
      CHECK(core->locate(id, &mi) == Status::UnknownId);
    }
  }

  // --- enqueueArrivals ---------------------------------------------------------------------------
  // enqueueArrivals: bytes nm (count), flags. flags & 0x0f == 0x0f: a bad now ((flags >> 4) % 4:
  // NaN, +inf, just past the range of a Date, -inf), else the clock's now. nm < 240: nm % 13
  // entries of [pm, im, pick, tm, em] each: the pair from pm (domain (pm & 7) % D, binding
  // ((pm >> 3) & 3) % B, urgent with bit 6); the id from im (< 150 fresh, < 170 a repeat of an earlier entry, < 185 a
  // lately cancelled id, < 205 a known id, < 215 one in flight, < 225 a queued one, < 232 bogus,
  // else fresh with the entry spoilt by spoilArrival(im - 232)); next attempt nextAttemptOf(tm),
  // expiry expiryOf(em). nm >= 240: (nm - 239) * 16 entries of fresh ids over every pair at spread
  // times (some expiring at once), then bytes sp, kb: kb % 8 < 3 leaves them so, else entry sp % n
  // gets one flaw: 3 the id of an earlier entry (of the last one, for entry 0), 4 a queued or
  // known id, 5 an id in flight, 6 spoilArrival(kb >> 3), 7 a repeat there and a spoilt field at
  // entry (sp * 7) % n (which of the two the core reports depends on the validation order only).
  void opEnqueueArrivals() {
    uint8_t nm = r.u8(), flags = r.u8();
    double callNow = now;
    if ((flags & 0x0f) == 0x0f) {
      static const double bad[] = {kNaN, kInf, std::nextafter(mqc::kMaxTime, kInf), -kInf};
      callNow = bad[(flags >> 4) % 4];
    }
    bool big = nm >= 240;
    size_t n = big ? static_cast<size_t>(nm - 239) * 16 : nm % 13;
    std::vector<double> e(kArrival * n);
    if (!big) {
      for (size_t i = 0; i < n; ++i) {
        uint8_t pm = r.u8(), im = r.u8(), pick = r.u8(), tm = r.u8(), em = r.u8();
        double* x = &e[kArrival * i];
        x[0] = (pm & 7) % D();
        x[1] = ((pm >> 3) & 3) % B() + 65536.0 * ((pm >> 6) & 1);
        if (im < 150)
          x[2] = freshId();
        else if (im < 170 && i > 0)
          x[2] = e[kArrival * (pick % i) + 2];
        else if (im < 185 && !cancelledIds.empty())
          x[2] = cancelledIds[pick % cancelledIds.size()];
        else if (im < 205)
          x[2] = knownId(pick);
        else if (im < 215 && !inFlight.empty())
          x[2] = inFlight[pick % inFlight.size()];
        else if (im < 225)
          x[2] = queuedId(pick, static_cast<uint8_t>(im * 37 + i));
        else if (im < 232)
          x[2] = bogusId(pick);
        else
          x[2] = freshId();
        x[3] = nextAttemptOf(tm);
        x[4] = expiryOf(em);
        if (im >= 232) spoilArrival(x, static_cast<uint8_t>(im - 232));
      }
    } else {
      uint32_t h = flags * 2654435761u + nm;
      for (size_t i = 0; i < n; ++i) {
        h = h * 1103515245u + 12345u;
        double* x = &e[kArrival * i];
        x[0] = (h >> 8) % D();
        x[1] = (h >> 12) % B() + ((h >> 16) % 5 == 0 ? 65536.0 : 0);
        x[2] = freshId();
        x[3] = relTime(static_cast<uint8_t>((i * 37 + flags) % 230));
        x[4] = (h >> 20) % 8 == 0 ? relTime(static_cast<uint8_t>((h >> 24) % 230)) : kNever;
      }
      uint8_t sp = r.u8(), kb = r.u8();
      size_t at = sp % n;
      double* x = &e[kArrival * at];
      switch (kb % 8) {
        case 3:
          x[2] = e[kArrival * (at > 0 ? sp % at : n - 1) + 2];
          break;
        case 4:
          x[2] = queuedId(sp, kb);
          break;
        case 5:
          if (!inFlight.empty()) x[2] = inFlight[sp % inFlight.size()];
          break;
        case 6:
          spoilArrival(x, static_cast<uint8_t>(kb >> 3));
          break;
        case 7:
          x[2] = e[kArrival * (at > 0 ? sp % at : n - 1) + 2];
          spoilArrival(&e[kArrival * ((sp * 7u) % n)], static_cast<uint8_t>(kb >> 3));
          break;
        default:
          break;
      }
    }
    checkedEnqueueArrivals(e, n, callNow);
  }

  static constexpr size_t kArrival = Core::kArrivalStride;

  // One flaw in an arrival entry x (whose fields are valid): k % 24 picks a bad domain (out of
  // range, fractional, negative, NaN, infinite, 2^32 above a good one), -0 (a good domain 0), a
  // bad binding field (binding out of range, priority 2, binding 65535, fractional, negative, NaN,
  // -inf, 1e300, 2^32 above a good one), -0 (a good binding 0, priority 0), a bad next attempt
  // (NaN, +inf), a bad expiry (NaN, -inf), an expiry of -1e300 (good: expired at once), or the id
  // 2^53-1 or 0 (both good).
  void spoilArrival(double* x, uint8_t k) const {
    double prio = std::floor(x[1] / 65536.0), bi = x[1] - 65536.0 * prio;
    switch (k % 24) {
      case 0:
        x[0] = D();
        break;
      case 1:
        x[0] += 0.5;
        break;
      case 2:
        x[0] = -1;
        break;
      case 3:
        x[0] = kNaN;
        break;
      case 4:
        x[0] = kInf;
        break;
      case 5:
        x[0] += 4294967296.0;
        break;
      case 6:
        x[0] = -0.0;
        break;
      case 7:
        x[1] = B() + 65536.0 * prio;
        break;
      case 8:
        x[1] = bi + 65536.0 * 2;
        break;
      case 9:
        x[1] = 65535 + 65536.0 * prio;
        break;
      case 10:
        x[1] += 0.5;
        break;
      case 11:
        x[1] = -1;
        break;
      case 12:
        x[1] = kNaN;
        break;
      case 13:
        x[1] = -kInf;
        break;
      case 14:
        x[1] = 1e300;
        break;
      case 15:
        x[1] = -0.0;
        break;
      case 16:
        x[1] += 4294967296.0;
        break;
      case 17:
        x[3] = kNaN;
        break;
      case 18:
        x[3] = kInf;
        break;
      case 19:
        x[4] = kNaN;
        break;
      case 20:
        x[4] = -kInf;
        break;
      case 21:
        x[4] = -1e300;
        break;
      case 22:
        x[2] = kMaxId;
        break;
      default:
        x[2] = 0;
        break;
    }
  }

  static bool wholeBelow(double x, double limit) { return x >= 0 && x < limit && std::floor(x) == x; }

  // The status of one arrival entry's fields, in the core's order: domain, then binding and
  // priority (binding + 65536 * priority a whole number below 65536 * 2, binding below B), then
  // id, next attempt and expiry.
  Status arrivalFieldStatus(const double* x) const {
    if (!wholeBelow(x[0], D())) return Status::BadDomain;
    if (!wholeBelow(x[1], 65536.0 * 2) || static_cast<uint32_t>(x[1]) % 65536 >= B()) return Status::BadBinding;
    if (!validId(x[2]) || !timeOk(x[3]) || std::isnan(x[4]) || x[4] == -kInf) return Status::BadArgument;
    return Status::Ok;
  }

  // A live queue entry with its key: an active queue's order is (priority desc, next attempt asc,
  // sequence asc), a delayed queue's (next attempt, sequence); old marks an entry queued before.
  struct Queued {
    double id;
    int prio;
    double t;
    bool old;
  };
  static constexpr uint32_t kDelayedQ = 0xffffffffu;
  // The first cap live entries of the active queue (d, b), or of d's delayed queue (b == kDelayedQ).
  std::vector<Queued> queuedHead(uint32_t d, uint32_t b, size_t cap) const {
    bool delayed = b == kDelayedQ;
    size_t size = delayed ? core->delayedSize(d) : core->activeSize(d, b);
    size_t k = size < cap ? size : cap;
    std::vector<double> ids(k);
    size_t got = delayed ? core->peekDelayed(d, 0, ids.data(), k) : core->peekActive(d, b, 0, ids.data(), k);
    CHECK(got == k);
    std::vector<Queued> v(k);
    for (size_t i = 0; i < k; ++i) {
      MessageInfo mi;
      CHECK(core->locate(ids[i], &mi) == Status::Ok);
      v[i] = Queued{ids[i], delayed ? 0 : mi.priority, mi.nextAttempt, true};
    }
    return v;
  }

  // enqueueArrivals(e, n, callNow): the status and failedAt predicted exactly (a bad now first,
  // failedAt 0; then the first entry with a bad domain, binding / priority, or id / time / expiry;
  // then the first id the core knows or an earlier entry repeats), and all or nothing: a refusal
  // leaves every id, queue, counter (highestId too) and pending expiry as it was. Accepted, each
  // message sits where a single enqueue() at callNow would put it (expired at once when its time is
  // at or past its expiry, delayed when after callNow, else active), the queues it joined hold it
  // in exactly the place single enqueues in arrival order give (the head of up to 512 entries of
  // each is compared), and highestId is raised to the largest id of the batch.
  void checkedEnqueueArrivals(const std::vector<double>& e, size_t n, double callNow) {
    std::vector<double> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = e[kArrival * i + 2];
    std::vector<MessageInfo> before(n);
    std::vector<bool> present(n);
    for (size_t i = 0; i < n; ++i) present[i] = validId(ids[i]) && core->locate(ids[i], &before[i]) == Status::Ok;
    Status want = timeOk(callNow) ? Status::Ok : Status::BadArgument;
    size_t wantAt = 0;
    for (size_t i = 0; i < n && want == Status::Ok; ++i) {
      Status st = arrivalFieldStatus(&e[kArrival * i]);
      if (st != Status::Ok) {
        want = st;
        wantAt = i;
      }
    }
    for (size_t i = 0; i < n && want == Status::Ok; ++i) {
      bool repeat = present[i];
      for (size_t j = 0; j < i; ++j) repeat |= ids[j] == ids[i];
      if (repeat) {
        want = Status::DuplicateId;
        wantAt = i;
      }
    }
    // Where each would go if accepted, and the heads of the queues they would join.
    const size_t kCap = 512;
    size_t pairs = static_cast<size_t>(D()) * B();
    std::vector<size_t> activeBefore(pairs), delayedBefore(D()), activeNew(pairs, 0), delayedNew(D(), 0);
    for (uint32_t d = 0; d < D(); ++d) {
      delayedBefore[d] = core->delayedSize(d);
      for (uint32_t b = 0; b < B(); ++b) activeBefore[static_cast<size_t>(d) * B() + b] = core->activeSize(d, b);
    }
    std::vector<std::vector<Queued>> activeHead(pairs), delayedHead(D());
    std::vector<bool> activeSeen(pairs, false), delayedSeen(D(), false);
    if (want == Status::Ok) {
      for (size_t i = 0; i < n; ++i) {
        const double* x = &e[kArrival * i];
        uint32_t d = static_cast<uint32_t>(x[0]), b = static_cast<uint32_t>(x[1]) % 65536;
        if (x[3] >= x[4]) continue;
        if (x[3] > callNow) {
          if (!delayedSeen[d]) delayedHead[d] = queuedHead(d, kDelayedQ, kCap);
          delayedSeen[d] = true;
        } else {
          size_t q = static_cast<size_t>(d) * B() + b;
          if (!activeSeen[q]) activeHead[q] = queuedHead(d, b, kCap);
          activeSeen[q] = true;
        }
      }
    }
    std::vector<double> countersBefore(core->counters(), core->counters() + core->counterCount());
    double liveBefore = live();
    size_t expBefore = core->pendingExpired();
    size_t failedAt = 12345;
    Status s = core->enqueueArrivals(e.data(), n, callNow, &failedAt);
    if (g_trace) {
      std::fprintf(stderr, "enqueueArrivals(n=%zu, now=%.17g, [", n, callNow);
      for (size_t i = 0; i < n; ++i) {
        const double* x = &e[kArrival * i];
        std::fprintf(stderr, "%s(%.17g, %.17g, %.17g, %.17g, %.17g)", i ? ", " : "", x[0], x[1], x[2], x[3], x[4]);
      }
      std::fprintf(stderr, "]) -> %s failedAt=%zu (want %s at %zu)\n", statusName(s), failedAt, statusName(want),
                   wantAt);
    }
    CHECK(s == want);
    CHECK(failedAt == wantAt);
    if (s != Status::Ok) {
      for (size_t i = 0; i < countersBefore.size(); ++i) CHECK(core->counters()[i] == countersBefore[i]);
      CHECK(live() == liveBefore && core->pendingExpired() == expBefore);
      for (uint32_t d = 0; d < D(); ++d) {
        CHECK(core->delayedSize(d) == delayedBefore[d]);
        for (uint32_t b = 0; b < B(); ++b)
          CHECK(core->activeSize(d, b) == activeBefore[static_cast<size_t>(d) * B() + b]);
      }
      checkStillAsBefore(ids, n, present, before);
      return;
    }
    accepted += static_cast<double>(n);
    double highest = countersBefore[kHighestId];
    size_t expired = 0;
    for (size_t i = 0; i < n; ++i) {
      const double* x = &e[kArrival * i];
      if (i < 32) remember(ids[i]);
      noteAccepted(ids[i]);
      if (ids[i] > highest) highest = ids[i];
      uint32_t d = static_cast<uint32_t>(x[0]), bp = static_cast<uint32_t>(x[1]);
      uint32_t b = bp % 65536, prio = bp / 65536;
      MessageInfo mi;
      if (x[3] >= x[4]) {
        ++expired;
        CHECK(core->locate(ids[i], &mi) == Status::UnknownId);
        continue;
      }
      CHECK(core->locate(ids[i], &mi) == Status::Ok);
      CHECK(mi.id == ids[i] && mi.domain == d && mi.binding == b && mi.priority == prio && mi.attempts == 0);
      CHECK(mi.nextAttempt == x[3] && mi.expiresAt == x[4]);
      bool delayed = x[3] > callNow;
      CHECK(mi.place == (delayed ? Place::Delayed : Place::Active));
      // Single enqueues in arrival order: each new message after every entry of its key or an
      // earlier one (its sequence is above every one queued before it).
      Queued nq{ids[i], delayed ? 0 : static_cast<int>(prio), x[3], false};
      std::vector<Queued>& q = delayed ? delayedHead[d] : activeHead[static_cast<size_t>(d) * B() + b];
      auto pos = std::find_if(q.begin(), q.end(),
                              [&](const Queued& o) { return o.prio < nq.prio || (o.prio == nq.prio && o.t > nq.t); });
      q.insert(pos, nq);
      if (delayed)
        ++delayedNew[d];
      else
        ++activeNew[static_cast<size_t>(d) * B() + b];
    }
    CHECK(counter(kHighestId) == highest);
    CHECK(counter(kHighestId) >= countersBefore[kHighestId]);
    CHECK(core->pendingExpired() == expBefore + expired);
    CHECK(counter(kExpired) == countersBefore[kExpired] + static_cast<double>(expired));
    CHECK(live() == liveBefore + static_cast<double>(n - expired));
    double nActive = 0, nDelayed = 0;
    for (uint32_t d = 0; d < D(); ++d) {
      CHECK(core->delayedSize(d) == delayedBefore[d] + delayedNew[d]);
      nDelayed += static_cast<double>(delayedNew[d]);
      for (uint32_t b = 0; b < B(); ++b) {
        size_t q = static_cast<size_t>(d) * B() + b;
        CHECK(core->activeSize(d, b) == activeBefore[q] + activeNew[q]);
        nActive += static_cast<double>(activeNew[q]);
      }
    }
    CHECK(counter(kActive) == countersBefore[kActive] + nActive);
    CHECK(counter(kDelayed) == countersBefore[kDelayed] + nDelayed);
    // The order: the predicted head is exact up to the last entry that was queued before when the
    // queue held more than the cap (entries past the cap could come before later new ones), whole
    // otherwise.
    auto checkHead = [&](uint32_t d, uint32_t b, const std::vector<Queued>& want, size_t sizeBefore) {
      size_t len = want.size();
      if (sizeBefore > kCap) {
        len = 0;
        for (size_t i = 0; i < want.size(); ++i)
          if (want[i].old) len = i + 1;
      }
      std::vector<double> got(len);
      bool delayed = b == kDelayedQ;
      size_t k = delayed ? core->peekDelayed(d, 0, got.data(), len) : core->peekActive(d, b, 0, got.data(), len);
      CHECK(k == len);
      for (size_t i = 0; i < len; ++i) {
        if (got[i] != want[i].id)
          TRACE("  queue (%u,%d) entry %zu: %.17g, want %.17g\n", d, delayed ? -1 : static_cast<int>(b), i, got[i],
                want[i].id);
        CHECK(got[i] == want[i].id);
      }
    };
    for (uint32_t d = 0; d < D(); ++d) {
      if (delayedNew[d] > 0) checkHead(d, kDelayedQ, delayedHead[d], delayedBefore[d]);
      for (uint32_t b = 0; b < B(); ++b) {
        size_t q = static_cast<size_t>(d) * B() + b;
        if (activeNew[q] == 0) continue;
        checkHead(d, b, activeHead[q], activeBefore[q]);
        checkQueueOrder(d, b);
      }
    }
  }

  // --- setAttempts -------------------------------------------------------------------------------
  // setAttempts(id, attempts): bytes mode, pick, am, tk. The id: mode < 100 a queued one (active or
  // delayed, from the queues pick names), < 140 one in flight, < 180 a known id, < 200 a lately
  // cancelled one, < 220 one never enqueued, < 230 0 or 2^53-1, else bogus. The count: am < 128
  // 0, 1, 2, 7, 65533, 65534 or 65535 (twice), else am * 257 + pick. BadArgument for a bad id,
  // UnknownId for one the core does not hold, InFlight for one a connection holds (its count
  // unchanged), else Ok: locate gives the new count and nothing else about the message, its queue
  // or any counter moves. With bit 0 of tk and the message active (within its queue's first 64),
  // its queue is then taken up to it: a take counts on from the count set, saturating at 65535.
  void opSetAttempts() {
    uint8_t mode = r.u8(), pick = r.u8(), am = r.u8(), tk = r.u8();
    double id;
    if (mode < 100)
      id = queuedId(pick, static_cast<uint8_t>(mode * 37));
    else if (mode < 140 && !inFlight.empty())
      id = inFlight[pick % inFlight.size()];
    else if (mode < 180)
      id = knownId(pick);
    else if (mode < 200 && !cancelledIds.empty())
      id = cancelledIds[pick % cancelledIds.size()];
    else if (mode < 220)
      id = nextId + pick;  // never enqueued yet
    else if (mode < 230)
      id = mode & 1 ? kMaxId : 0;
    else
      id = bogusId(pick);
    static const uint16_t kCounts[] = {0, 1, 2, 7, 65533, 65534, 65535, 65535};
    uint16_t attempts = am < 128 ? kCounts[am % 8] : static_cast<uint16_t>(am * 257u + pick);
    MessageInfo bi{};
    bool present = validId(id) && core->locate(id, &bi) == Status::Ok;
    if (present) CHECK((bi.place == Place::InFlight) == isInFlight(id));
    Status want = !validId(id)                  ? Status::BadArgument
                  : !present                    ? Status::UnknownId
                  : bi.place == Place::InFlight ? Status::InFlight
                                                : Status::Ok;
    // Its queue's head, which must not move.
    std::vector<double> headBefore, headAfter;
    auto headOf = [&](std::vector<double>* v) {
      if (!present || bi.place == Place::InFlight) return;
      bool delayed = bi.place == Place::Delayed;
      v->resize(64);
      size_t k = delayed ? core->peekDelayed(bi.domain, 0, v->data(), 64)
                         : core->peekActive(bi.domain, bi.binding, 0, v->data(), 64);
      v->resize(k);
    };
    headOf(&headBefore);
    std::vector<double> countersBefore(core->counters(), core->counters() + core->counterCount());
    size_t grantsBefore = core->pendingGrants(), expBefore = core->pendingExpired();
    Status s = core->setAttempts(id, attempts);
    TRACE("setAttempts(id=%.17g, attempts=%u) -> %s (was %s, %u)\n", id, attempts, statusName(s),
          present ? placeName(bi.place) : "-", present ? bi.attempts : 0);
    CHECK(s == want);
    for (size_t i = 0; i < countersBefore.size(); ++i) CHECK(core->counters()[i] == countersBefore[i]);
    CHECK(core->pendingGrants() == grantsBefore && core->pendingExpired() == expBefore);
    headOf(&headAfter);
    CHECK(headAfter == headBefore);
    MessageInfo mi;
    if (s != Status::Ok) {
      if (present)
        CHECK(core->locate(id, &mi) == Status::Ok && sameInfo(mi, bi));
      else if (validId(id))
        CHECK(core->locate(id, &mi) == Status::UnknownId);
      return;
    }
    CHECK(core->locate(id, &mi) == Status::Ok);
    CHECK(mi.attempts == attempts);
    MessageInfo expect = bi;
    expect.attempts = attempts;
    CHECK(sameInfo(mi, expect));
    if (!(tk & 1) || mi.place != Place::Active) return;
    size_t pos = 0;
    while (pos < headAfter.size() && headAfter[pos] != id) ++pos;
    if (pos == headAfter.size()) return;
    doTake(mi.domain, mi.binding, pos + 1);
    // Taken (unless the message throttle held it back or it expired): one attempt more, or 65535.
    if (isInFlight(id)) {
      CHECK(core->locate(id, &mi) == Status::Ok && mi.place == Place::InFlight);
      CHECK(mi.attempts == attemptsAfterTake(attempts));
    }
  }

  void opRemoveActive() {
    uint8_t dm = r.u8(), bm = r.u8(), mode = r.u8(), pick = r.u8();
    uint32_t d = dm < 250 ? dm % D() : D() + (dm - 250);
    uint32_t b = bm < 250 ? bm % B() : B() + (bm - 250);
    double id;
    bool peeked = false;
    if (mode < 128 && d < D() && b < B() && core->activeSize(d, b) > 0) {
      CHECK(core->peekActive(d, b, pick % core->activeSize(d, b), &id, 1) == 1);
      peeked = true;
    } else {
      id = messageId(mode, pick);
    }
    bool wasInFlight = isInFlight(id);
    Status s = core->removeActive(d, b, id);
    TRACE("removeActive(d=%u, b=%u, id=%.17g) -> %s\n", d, b, id, statusName(s));
    if (d >= D())
      CHECK(s == Status::BadDomain);
    else if (b >= B())
      CHECK(s == Status::BadBinding);
    else if (!validId(id))
      CHECK(s == Status::BadArgument);
    else if (peeked)
      CHECK(s == Status::Ok);
    else if (wasInFlight)
      CHECK(s == Status::UnknownId);
    else
      CHECK(s == Status::Ok || s == Status::UnknownId);
    if (s == Status::Ok) {
      removed += 1;
      removedWant += 1;
      MessageInfo mi;
      CHECK(core->locate(id, &mi) == Status::UnknownId);
    }
  }

  void opPromoteDue() {
    uint32_t d = domain();
    size_t delayedBefore = core->delayedSize(d), activeBefore = core->activeTotal(d);
    size_t expBefore = core->pendingExpired();
    size_t moved = core->promoteDue(d, now);
    TRACE("promoteDue(d=%u, now=%.17g) -> %zu\n", d, now, moved);
    size_t exp = core->pendingExpired() - expBefore;
    CHECK(core->delayedSize(d) + moved + exp == delayedBefore);
    CHECK(core->activeTotal(d) == activeBefore + moved);
    double id;
    MessageInfo mi;
    if (core->peekDelayed(d, 0, &id, 1) == 1) {
      CHECK(core->locate(id, &mi) == Status::Ok && mi.nextAttempt > now);
    }
  }

  void opExpireActive() {
    uint32_t d = domain();
    size_t activeBefore = core->activeTotal(d);
    size_t expBefore = core->pendingExpired();
    size_t n = core->expireActive(d, now);
    TRACE("expireActive(d=%u, now=%.17g) -> %zu\n", d, now, n);
    CHECK(core->pendingExpired() == expBefore + n);
    CHECK(core->activeTotal(d) + n == activeBefore);
    removedWant += static_cast<double>(n);
    double ids[64];
    MessageInfo mi;
    for (uint32_t b = 0; b < B(); ++b) {
      size_t k = core->peekActive(d, b, 0, ids, 64);
      for (size_t i = 0; i < k; ++i) CHECK(core->locate(ids[i], &mi) == Status::Ok && mi.expiresAt > now);
    }
  }

  void checkGoal(uint32_t d, uint32_t b, int32_t goalsz, int64_t g) {
    const PairLimits& pl = core->ledger().pairLimits(d, b);
    if (core->activeSize(d, b) == 0 || pl.suspended) {
      CHECK(g == -1);
    } else if (goalsz > 0) {
      CHECK(g == static_cast<int64_t>(core->ledger().pairCount(d, b)) + goalsz);
    } else if (pl.maxConnections == 0) {
      CHECK(g == 0);
    } else {
      CHECK(g >= 1 && g <= static_cast<int64_t>(pl.maxConnections));
    }
  }

  void opGoalOpen() {
    uint32_t d = domain(), b = binding();
    uint8_t gz = r.u8(), gm = r.u8(), rm = r.u8();
    int32_t goalsz = goalszOf(gz);
    int64_t g = core->computeGoal(d, b, goalsz);
    checkGoal(d, b, goalsz, g);
    int64_t goal;
    switch (gm % 8) {
      case 0:
      case 1:
      case 2:
      case 3:
        goal = g;
        break;
      case 4:
        goal = static_cast<int64_t>(gm >> 3) - 4;
        break;
      case 5:
        goal = static_cast<int64_t>(kMaxId);
        break;
      case 6:
        goal = -static_cast<int64_t>(kMaxId);
        break;
      default:
        goal = static_cast<int64_t>(core->ledger().pairCount(d, b)) + (gm >> 3);
        break;
    }
    TRACE("computeGoal(d=%u, b=%u, goalsz=%d) -> %" PRId64 "; ", d, b, goalsz, g);
    checkedOpen(d, b, goal, reserveOf(rm, d, b));
  }

  // openConnections(d, b, goal, reserve): opens exactly min(goal - pairCount, headroom), within the
  // server ceiling rule; the grants drained after it are for (d, b).
  uint32_t checkedOpen(uint32_t d, uint32_t b, int64_t goal, uint32_t reserve) {
    uint64_t totalBefore = core->ledger().total();
    uint32_t pairBefore = core->ledger().pairCount(d, b);
    uint32_t headroom = core->ledger().headroom(d, b, reserve, now);
    std::vector<uint32_t> pairs = pairCounts();
    bool pendingBefore = core->pendingGrants() > 0;
    uint32_t opened = core->openConnections(d, b, goal, reserve, now);
    chargeConnections(pairs);
    TRACE("openConnections(d=%u, b=%u, goal=%" PRId64 ", reserve=%u, now=%.17g) -> %u\n", d, b, goal, reserve, now,
          opened);
    int64_t want = goal - static_cast<int64_t>(pairBefore);
    CHECK(static_cast<int64_t>(opened) <= (want > 0 ? want : 0));
    CHECK(opened <= headroom);
    if (want > 0) CHECK(static_cast<int64_t>(opened) == (want < headroom ? want : headroom));
    if (core->ledger().pairLimits(d, b).suspended) CHECK(opened == 0);
    checkOpened(opened, totalBefore, reserve, 1);
    afterGrants();
    checkOwnGrants(pendingBefore, opened, d, b);
    return opened;
  }

  void opDefaultMaintain() {
    uint32_t d = domain(), b = binding();
    uint8_t gz = r.u8(), rm = r.u8();
    int32_t goalsz = goalszOf(gz);
    uint32_t reserve = reserveOf(rm, d, b);
    int64_t g = core->computeGoal(d, b, goalsz);
    checkGoal(d, b, goalsz, g);
    uint64_t totalBefore = core->ledger().total();
    std::vector<uint32_t> pairs = pairCounts();
    bool pendingBefore = core->pendingGrants() > 0;
    uint32_t opened = core->defaultMaintain(d, b, now, goalsz, reserve);
    chargeConnections(pairs);
    TRACE("defaultMaintain(d=%u, b=%u, now=%.17g, goalsz=%d, reserve=%u) -> %u\n", d, b, now, goalsz, reserve, opened);
    if (g < 0) CHECK(opened == 0);
    checkOpened(opened, totalBefore, reserve, 1);
    afterGrants();
    checkOwnGrants(pendingBefore, opened, d, b);
  }

  void opMaintainDomain() {
    uint32_t d = domain();
    uint8_t gz = r.u8(), rm = r.u8();
    int32_t goalsz = goalszOf(gz);
    int64_t reserve;
    switch (rm % 6) {
      case 0:
      case 1:
      case 2:
        reserve = -1;
        break;
      case 3:
        reserve = 0;
        break;
      case 4:
        reserve = cfg().serverReserve;
        break;
      default:
        reserve = 4294967294ll;
        break;
    }
    uint64_t totalBefore = core->ledger().total();
    std::vector<uint32_t> pairs = pairCounts();
    double expiredBefore = counter(kExpired), delayedExpiring = dueExpiring(d);
    uint32_t opened = core->maintainDomain(d, now, goalsz, reserve);
    chargeConnections(pairs);
    TRACE("maintainDomain(d=%u, now=%.17g, goalsz=%d, reserve=%" PRId64 ") -> %u\n", d, now, goalsz, reserve, opened);
    CHECK(core->ledger().total() == totalBefore + opened);
    checkPrepared(d);
    expectOrder(d);
    removedWant += counter(kExpired) - expiredBefore - delayedExpiring;
    afterGrants();
  }

  void opMaintainAll() {
    uint64_t totalBefore = core->ledger().total();
    std::vector<uint32_t> pairs = pairCounts();
    std::vector<bool> due(D());
    size_t dueCount = 0;
    double expiredBefore = counter(kExpired), delayedExpiring = 0;
    for (uint32_t d = 0; d < D(); ++d) {
      due[d] = core->isDue(d, now);
      dueCount += due[d];
      delayedExpiring += dueExpiring(d);  // (0 for a domain that is not due)
    }
    uint32_t opened = core->maintainAll(now);
    chargeConnections(pairs);
    TRACE("maintainAll(now=%.17g) -> %u\n", now, opened);
    CHECK(core->ledger().total() == totalBefore + opened);
    // A whole pass: a fresh snapshot of every due domain (the rotation moves on by one), all of it
    // visited, so a sliced pass in progress is abandoned.
    if (dueCount > 0) ++domainRot;
    passSnap.clear();
    passPos = 0;
    for (uint32_t d = 0; d < D(); ++d) {
      // A domain that was due got its pass; one that was not has nothing due now either.
      CHECK(!core->isDue(d, now) || core->activeTotal(d) > 0);
      checkPrepared(d);
      if (due[d]) expectOrder(d);
    }
    removedWant += counter(kExpired) - expiredBefore - delayedExpiring;
    afterGrants();
  }

  // releaseConnection of open, released, maybe pending and bogus ids. Modes 248..255 churn the
  // lease table instead (opReleaseMany).
  void opRelease() {
    uint8_t mode = r.u8(), pick = r.u8();
    if (mode >= 248) return opReleaseMany(mode, pick);
    if (mode < 180 && !open.empty()) return releaseOpen(pick % open.size());
    double id;
    int kind;  // 1 closed, 2 maybe pending, 3 bogus
    if (mode < 200 && !closed.empty()) {
      id = closed[pick % closed.size()];
      kind = 1;
    } else if (mode < 215) {
      id = maxGranted + 1 + pick % 4;
      kind = 2;
    } else {
      id = bogusId(pick);
      kind = 3;
    }
    uint64_t totalBefore = core->ledger().total();
    Status s = core->releaseConnection(id);
    TRACE("releaseConnection(id=%.17g) -> %s\n", id, statusName(s));
    if (kind == 1 || kind == 3)
      CHECK(s == Status::UnknownConnection);
    else
      CHECK(s == Status::Ok || s == Status::UnknownConnection);
    if (s == Status::Ok) {
      CHECK(core->ledger().total() + 1 == totalBefore);
      CHECK(core->pendingGrants() > 0);
      CHECK(releasedEarly.insert(id).second);
      rememberClosed(id);
    } else {
      CHECK(core->ledger().total() == totalBefore);
    }
  }

  void rememberClosed(double id) {
    if (closed.size() < 64)
      closed.push_back(id);
    else
      closed[static_cast<size_t>(id) % 64] = id;
  }

  // Releases open[i]: Ok, and exactly its own pair's, domain's, binding's and the total counts go
  // down by one (a lease table that found another lease, or none, would show here).
  void releaseOpen(size_t i) {
    Grant g = open[i];
    const ConnectionLedger& L = core->ledger();
    uint64_t totalBefore = L.total();
    uint32_t pairBefore = L.pairCount(g.domain, g.binding), domainBefore = L.domainCount(g.domain);
    uint32_t bindingBefore = L.bindingCount(g.binding);
    Status s = core->releaseConnection(g.connectionId);
    TRACE("releaseConnection(id=%.17g of (%u,%u)) -> %s\n", g.connectionId, g.domain, g.binding, statusName(s));
    CHECK(s == Status::Ok);
    CHECK(L.total() + 1 == totalBefore && L.pairCount(g.domain, g.binding) + 1 == pairBefore);
    CHECK(L.domainCount(g.domain) + 1 == domainBefore && L.bindingCount(g.binding) + 1 == bindingBefore);
    open[i] = open.back();
    open.pop_back();
    rememberClosed(g.connectionId);
  }

  // Lease-table churn: 1-4 rounds ((mode - 248) >> 1 + 1), each (with bit 0 of mode - 248) first
  // opening as many connections as every pair may take, then releasing part of the open ones in an
  // order other than the one they opened in (pick + round selects it: every other one, newest
  // first, from the middle out, by a stride, about 3 in 4, every third from the newest), each
  // release checked against its own pair. Then every connection still open must still be found (a
  // migrate to its own domain is Ok and moves nothing) and every one released must be unknown.
  void opReleaseMany(uint8_t mode, uint8_t pick) {
    drainGrants(0x7fffffff);  // so the model knows every lease
    size_t rounds = 1 + ((mode - 248) >> 1);
    bool fill = (mode - 248) & 1;
    std::vector<double> gone;
    for (size_t round = 0; round < rounds; ++round) {
      if (fill) {
        size_t pairs = static_cast<size_t>(D()) * B();
        for (size_t i = 0; i < pairs; ++i) {
          size_t p = (i + pick + round) % pairs;
          uint32_t d = static_cast<uint32_t>(p / B()), b = static_cast<uint32_t>(p % B());
          checkedOpen(d, b, static_cast<int64_t>(kMaxId), (pick + i) % 3 == 0 ? 0 : cfg().serverReserve);
        }
        drainGrants(0x7fffffff);
      }
      // The open ids in the order they opened (ids grow), and the positions to release.
      std::vector<Grant> byId = open;
      std::sort(byId.begin(), byId.end(),
                [](const Grant& a, const Grant& b) { return a.connectionId < b.connectionId; });
      size_t n = byId.size();
      std::vector<size_t> sel;
      uint32_t h = (pick + 1u) * 2654435761u;
      switch ((pick + round) % 6) {
        case 0:
          for (size_t i = 1; i < n; i += 2) sel.push_back(i);
          break;
        case 1:
          for (size_t i = n; i > (pick >> 3) % 4; --i) sel.push_back(i - 1);
          break;
        case 2:
          for (size_t k = 0; k < n / 2 + 1 && k < n; ++k) sel.push_back(k % 2 ? n / 2 - (k + 1) / 2 : n / 2 + k / 2);
          break;
        case 3: {
          size_t stride = n < 2 ? 1 : 1 + (pick >> 2) % (n - 1);
          std::vector<bool> seen(n);
          for (size_t k = 0, i = pick % (n ? n : 1); k < n; ++k, i = (i + stride) % n)
            if (!seen[i]) {
              seen[i] = true;
              sel.push_back(i);
            }
          sel.resize(sel.size() * 2 / 3);
          break;
        }
        case 4:
          for (size_t i = 0; i < n; ++i) {
            h = h * 1103515245u + 12345u;
            if ((h >> 16) % 4 != 0) sel.push_back(i);
          }
          break;
        default:
          for (size_t i = n; i >= 3; i -= 3) sel.push_back(i - 1);
          break;
      }
      TRACE("releaseMany: round %zu, pattern %zu, releasing %zu of %zu\n", round, (pick + round) % 6, sel.size(), n);
      for (size_t i : sel) {
        CHECK(i < n);
        size_t k = 0;
        while (k < open.size() && open[k].connectionId != byId[i].connectionId) ++k;
        CHECK(k < open.size());
        releaseOpen(k);
        gone.push_back(byId[i].connectionId);
      }
    }
    const ConnectionLedger& L = core->ledger();
    std::vector<uint32_t> pairs = pairCounts();
    for (const Grant& g : open) CHECK(core->migrateConnection(g.connectionId, g.domain) == Status::Ok);
    CHECK(pairs == pairCounts());
    for (size_t i = 0; i < gone.size() && i < 64; ++i) {
      double id = gone[gone.size() - 1 - i];
      CHECK(core->migrateConnection(id, 0) == Status::UnknownConnection);
      CHECK(core->releaseConnection(id) == Status::UnknownConnection);
    }
    TRACE("releaseMany: %zu released, %zu open, %u in the ledger\n", gone.size(), open.size(), L.total());
  }

  // migrateConnection: Ok exactly when the connection is open and the target is its own domain or
  // has room (not suspended, below its pair, scope and group::domain limits), and then the
  // connection's pair counts move; else TooMany / BadDomain / UnknownConnection and nothing moves.
  void opMigrate() {
    uint8_t mode = r.u8(), pick = r.u8(), dm = r.u8();
    uint32_t to = dm < 240 ? dm % D() : D() + (dm - 240);
    double id;
    int kind;
    size_t at = 0;
    if (mode < 200 && !open.empty()) {
      at = pick % open.size();
      id = open[at].connectionId;
      kind = 0;
    } else if (mode < 220 && !closed.empty()) {
      id = closed[pick % closed.size()];
      kind = 1;
    } else {
      id = bogusId(pick);
      kind = 3;
    }
    const ConnectionLedger& L = core->ledger();
    uint64_t totalBefore = L.total();
    std::vector<uint32_t> bindingBefore(B());
    for (uint32_t b = 0; b < B(); ++b) bindingBefore[b] = L.bindingCount(b);
    std::vector<uint32_t> pairs = pairCounts();
    Status want = Status::UnknownConnection;
    if (kind == 0) {
      const Grant& g = open[at];
      if (to >= D())
        want = Status::BadDomain;
      else if (to == g.domain)
        want = Status::Ok;
      else {
        const PairLimits& pl = L.pairLimits(to, g.binding);
        const DomainLimits& dl = domainLimits[to];
        int32_t grp = L.groupOf(g.binding);
        bool room = !pl.suspended && L.pairCount(to, g.binding) < pl.maxConnections &&
                    L.domainCount(to) < dl.scopeMax &&
                    (grp == kNoGroup || L.groupDomainCount(static_cast<uint32_t>(grp), to) < dl.groupScopeMax[grp]);
        want = room ? Status::Ok : Status::TooMany;
      }
    }
    Status s = core->migrateConnection(id, to);
    TRACE("migrateConnection(id=%.17g, to=%u) -> %s\n", id, to, statusName(s));
    CHECK(s == want);
    CHECK(L.total() == totalBefore);
    for (uint32_t b = 0; b < B(); ++b) CHECK(L.bindingCount(b) == bindingBefore[b]);
    if (s == Status::Ok && kind == 0 && to != open[at].domain) {
      Grant& g = open[at];
      size_t src = static_cast<size_t>(g.domain) * B() + g.binding, dst = static_cast<size_t>(to) * B() + g.binding;
      pairs[src] -= 1;
      pairs[dst] += 1;
      if (!hostMax.empty() && setOf(to).empty() && !setOf(g.domain).empty()) {
        if (domainSets.size() <= to) domainSets.resize(to + 1);
        domainSets[to] = domainSets[g.domain];
      }
      g.domain = to;
    }
    CHECK(pairs == pairCounts());
  }

  // --- the Host scope ---------------------------------------------------------------------------
  // addHost: a new index each time (at most 8 here), with the caps given; a wrong number of binding
  // caps is BadArgument and adds nothing.
  void opAddHost() {
    uint8_t m = r.u8(), k = r.u8();
    if (hostMax.size() >= 8) return;
    std::vector<uint32_t> per(B());
    for (uint32_t b = 0; b < B(); ++b) per[b] = limitOf(r.u8(), 4);
    if (k >= 250) per.push_back(1);
    uint32_t index = kNoHost;
    Status s = core->ledger().addHost(limitOf(m, 6), per, &index);
    TRACE("addHost(max=%u) -> %s %u\n", limitOf(m, 6), statusName(s), index);
    if (k >= 250) {
      CHECK(s == Status::BadArgument);
      return;
    }
    CHECK(s == Status::Ok && index == hostMax.size());
    hostMax.push_back(limitOf(m, 6));
    hostBindingMax.insert(hostBindingMax.end(), per.begin(), per.end());
  }

  // setDomainHosts: Ok for distinct known hosts of a known domain (the set replaces the last one);
  // BadDomain / BadArgument change nothing.
  void opSetDomainHosts() {
    uint8_t dm = r.u8(), n = r.u8();
    uint32_t d = dm < 240 ? dm % D() : D() + (dm - 240);
    std::vector<uint32_t> set;
    bool distinct = true;
    for (uint8_t i = 0; i < n % 5; ++i) {
      uint8_t h = r.u8();
      uint32_t host = h < 240 ? (hostMax.empty() ? 0 : h % static_cast<uint32_t>(hostMax.size())) : 100 + h;
      for (uint32_t x : set) distinct = distinct && x != host;
      set.push_back(host);
    }
    bool known = true;
    for (uint32_t h : set) known = known && h < hostMax.size();
    Status want = d >= D() ? Status::BadDomain : (!known || !distinct) ? Status::BadArgument : Status::Ok;
    Status s = core->ledger().setDomainHosts(d, set);
    TRACE("setDomainHosts(d=%u, %zu hosts) -> %s\n", d, set.size(), statusName(s));
    CHECK(s == want);
    if (s == Status::Ok) {
      if (domainSets.size() <= d) domainSets.resize(d + 1);
      domainSets[d] = set;
    }
    CHECK(core->ledger().domainHosts(d < D() ? d : 0) == setOf(d < D() ? d : 0));
  }

  // claimHost: Ok when the lease is on the host already or the host has room for its binding (the
  // charge moves), TooMany otherwise and nothing moves; UnknownConnection / BadArgument.
  void opClaimHost() {
    uint8_t mode = r.u8(), pick = r.u8(), hm = r.u8();
    const ConnectionLedger& L = core->ledger();
    uint32_t h = hm < 240 && !hostMax.empty() ? hm % static_cast<uint32_t>(hostMax.size()) : 100 + hm;
    double id = mode < 200 && !open.empty()     ? open[pick % open.size()].connectionId
                : mode < 220 && !closed.empty() ? closed[pick % closed.size()]
                                                : bogusId(pick);
    const Grant* g = L.lease(id);
    Status want = Status::UnknownConnection;
    uint32_t before = L.leaseHost(id);
    if (g != nullptr) {
      if (h >= hostMax.size())
        want = Status::BadArgument;
      else if (before == h)
        want = Status::Ok;
      else {
        size_t hb = static_cast<size_t>(h) * B() + g->binding;
        bool room = L.hostCount(h) < hostMax[h] && L.hostBindingCount(h, g->binding) < hostBindingMax[hb];
        want = room ? Status::Ok : Status::TooMany;
      }
    }
    Status s = core->ledger().claimHost(id, h);
    TRACE("claimHost(id=%.17g, h=%u) -> %s (binding %d, was on %u, want %s)\n", id, h, statusName(s),
          g == nullptr ? -1 : static_cast<int>(g->binding), before, statusName(want));
    CHECK(s == want);
    CHECK(L.leaseHost(id) == (s == Status::Ok ? h : before));
  }

  void opFlush() {
    uint32_t d = domain();
    size_t delayedBefore = core->delayedSize(d), activeBefore = core->activeTotal(d);
    size_t expBefore = core->pendingExpired();
    size_t moved = core->flushDomain(d, now);
    TRACE("flushDomain(d=%u, now=%.17g) -> %zu\n", d, now, moved);
    CHECK(core->delayedSize(d) == 0);
    CHECK(moved + (core->pendingExpired() - expBefore) == delayedBefore);
    CHECK(core->activeTotal(d) == activeBefore + moved);
  }

  void opFail() {
    uint32_t d = domain();
    uint8_t m = r.u8();
    size_t max = m % 10;
    bool all = m >= 200;
    size_t activeBefore = core->activeTotal(d);
    size_t queuedBefore = activeBefore + core->delayedSize(d);
    size_t total = 0;
    if (all && max == 0) max = 3;
    for (;;) {
      std::vector<double> out(max);
      size_t n = core->failDomain(d, out.data(), max);
      TRACE("failDomain(d=%u, max=%zu) -> %zu\n", d, max, n);
      CHECK(n <= max);
      for (size_t i = 0; i < n; ++i) {
        CHECK(!isInFlight(out[i]));
        MessageInfo mi;
        CHECK(core->locate(out[i], &mi) == Status::UnknownId);
      }
      total += n;
      if (!all || n == 0) break;
    }
    failed += static_cast<double>(total);
    CHECK(core->activeTotal(d) + core->delayedSize(d) + total == queuedBefore);
    removedWant += static_cast<double>(activeBefore - core->activeTotal(d));
    if (all) CHECK(core->activeTotal(d) == 0 && core->delayedSize(d) == 0);
  }

  void opRetryNow() {
    uint8_t mode = r.u8(), pick = r.u8();
    uint32_t d = domain();
    double id;
    bool peeked = false;
    if (mode < 100 && core->delayedSize(d) > 0) {
      CHECK(core->peekDelayed(d, pick % core->delayedSize(d), &id, 1) == 1);
      peeked = true;
    } else {
      id = messageId(mode, pick);
    }
    bool wasInFlight = isInFlight(id);
    Status s = core->retryNow(id, now);
    TRACE("retryNow(id=%.17g, now=%.17g) -> %s\n", id, now, statusName(s));
    if (!validId(id))
      CHECK(s == Status::BadArgument);
    else if (peeked)
      CHECK(s == Status::Ok);
    else if (wasInFlight)
      CHECK(s == Status::UnknownId);
    else
      CHECK(s == Status::Ok || s == Status::UnknownId);
    if (s == Status::Ok) {
      MessageInfo mi;
      CHECK(core->locate(id, &mi) == Status::Ok && mi.place == Place::Active && mi.nextAttempt == now);
    }
  }

  void opDrainGrants() {
    uint8_t m = r.u8();
    size_t max = m >= 200 ? 0x7fffffff : m % 5;
    size_t before = core->pendingGrants();
    drainGrants(max);
    TRACE("drainGrants(max=%zu) -> %zu\n", max, before - core->pendingGrants());
  }

  void opDrainExpired() {
    uint8_t m = r.u8();
    size_t max = m % 6;
    bool withDomains = m & 0x80;
    size_t pending = core->pendingExpired();
    std::vector<double> out(max), doms(max);
    size_t n = withDomains ? core->drainExpired(out.data(), doms.data(), max) : core->drainExpired(out.data(), max);
    TRACE("drainExpired(max=%zu, domains=%d) -> %zu\n", max, withDomains ? 1 : 0, n);
    CHECK(n == (max < pending ? max : pending));
    CHECK(core->pendingExpired() == pending - n);
    for (size_t i = 0; i < n; ++i) {
      CHECK(validId(out[i]));  // (an expired id may be queued again before it is drained)
      if (withDomains) CHECK(doms[i] >= 0 && doms[i] < D() && std::floor(doms[i]) == doms[i]);
    }
    expiredDrained += static_cast<double>(n);
  }

  void opTime() {
    uint8_t m = r.u8();
    double before = now;
    if (m < 160)
      now += m * 7.0;  // 0 .. ~1.1 s
    else if (m < 220)
      now += (m - 159) * 1000.0;  // 1 .. 61 s
    else if (m < 250)
      now -= (m - 219) * 40.0;  // backwards: 40 .. 1200 ms
    else if (m < 254)
      now += 86400000.0;  // a day
    else
      now -= 60000.0;  // a minute back
    if (now < before) {
      clockMonotone = false;
      throttleGrants.clear();
    }
    TRACE("time %.17g -> %.17g\n", before, now);
  }

  void opSetSuspended() {
    uint32_t d = domain(), b = binding();
    uint8_t m = r.u8();
    if ((m & 0xc0) == 0xc0) return opSetLimits(d, m);
    bool s = m & 1;
    core->ledger().setSuspended(d, b, s);
    TRACE("setSuspended(d=%u, b=%u, %d)\n", d, b, s ? 1 : 0);
    CHECK(core->ledger().pairLimits(d, b).suspended == s);
    if (s) CHECK(core->ledger().headroom(d, b, 0, now) == 0 && core->computeGoal(d, b, 0) == -1);
  }

  // Live reconfiguration: a domain's limits, the server maxima or a throttle's rate set in place,
  // lowered or raised under open connections (ConnectionLedger::setDomainLimits, setServerLimits,
  // setThrottleRate). Counts are left alone; checkLedger then holds a count above its limit to
  // never growing, and the throttle model keeps the newest grants a changed rate keeps.
  void opSetLimits(uint32_t d, uint8_t m) {
    ConnectionLedger& L = core->ledger();
    switch (m % 3) {
      case 0: {
        DomainLimits dl = decodeDomain(L.throttleCount(), nullptr);
        Status st = L.setDomainLimits(d, dl);
        TRACE("setDomainLimits(d=%u, scopeMax=%u) -> %s\n", d, dl.scopeMax, statusName(st));
        CHECK(st == Status::Ok);
        domainLimits[d] = dl;
        for (uint32_t b = 0; b < B(); ++b) {
          CHECK(L.pairLimits(d, b).maxConnections == dl.pairs[b].maxConnections);
          if (L.pairCount(d, b) >= dl.pairs[b].maxConnections) CHECK(L.headroom(d, b, 0, now) == 0);
        }
        break;
      }
      case 1: {
        uint32_t serverMax = r.u8() % 16, reserve = r.u8() % 4;
        std::vector<uint32_t> bm, gm;
        for (uint32_t b = 0; b < B(); ++b) bm.push_back(limitOf(r.u8(), 8));
        for (uint32_t g = 0; g < L.groups(); ++g) gm.push_back(limitOf(r.u8(), 8));
        Status st = L.setServerLimits(serverMax, reserve, bm, gm);
        TRACE("setServerLimits(serverMax=%u, reserve=%u) -> %s\n", serverMax, reserve, statusName(st));
        CHECK(st == Status::Ok && cfg().serverMax == serverMax && cfg().serverReserve == reserve);
        bm.pop_back();  // one short: refused, nothing changed
        CHECK(L.setServerLimits(serverMax + 1, reserve, bm, gm) == Status::BadArgument && cfg().serverMax == serverMax);
        break;
      }
      default: {
        if (L.throttleCount() == 0) break;
        int32_t t = static_cast<int32_t>(r.u8() % L.throttleCount());
        uint32_t count = 1 + r.u8() % 4;
        double window = (1 + r.u8() % 8) * 100.0;
        Status st = L.setThrottleRate(t, count, window);
        TRACE("setThrottleRate(t=%d, count=%u, window=%.17g) -> %s\n", t, count, window, statusName(st));
        CHECK(st == Status::Ok && L.throttle(t).count() == count && L.throttle(t).windowMs() == window);
        if (static_cast<size_t>(t) < throttleGrants.size()) {
          std::vector<double>& g = throttleGrants[static_cast<size_t>(t)];
          if (g.size() > count) g.erase(g.begin(), g.end() - count);
        }
        break;
      }
    }
  }

  void opSetMessageThrottle() {
    uint32_t d = domain(), b = binding();
    uint8_t m = r.u8(), c = r.u8(), w = r.u8();
    ConnectionLedger& L = core->ledger();
    if (m & 0x80) {
      // addThrottle, with bad counts and windows now and then.
      uint32_t count = c < 240 ? 1 + c % 4 : c == 240 ? 0 : c == 241 ? kMaxThrottleCount + 1 : kMaxThrottleCount;
      double window = w < 240    ? (1 + w % 8) * 100.0
                      : w == 240 ? 0
                      : w == 241 ? -5
                      : w == 242 ? kNaN
                      : w == 243 ? 2e12
                                 : 1e12;
      size_t before = L.throttleCount();
      int32_t t = before < 8 ? L.addThrottle(count, window) : -2;
      TRACE("addThrottle(count=%u, window=%.17g) -> %d\n", count, window, t);
      bool ok = count >= 1 && count <= kMaxThrottleCount && window > 0 && window <= 1e12;
      if (t != -2) {
        if (ok)
          CHECK(t == static_cast<int32_t>(before) && L.throttleCount() == before + 1);
        else
          CHECK(t == -1 && L.throttleCount() == before);
      }
    }
    int32_t t = static_cast<int32_t>(m % (L.throttleCount() + 2)) - 1;  // -1 .. throttleCount
    Status s = L.setMessageThrottle(d, b, t);
    TRACE("setMessageThrottle(d=%u, b=%u, t=%d) -> %s\n", d, b, t, statusName(s));
    CHECK(s == (t < static_cast<int32_t>(L.throttleCount()) ? Status::Ok : Status::BadArgument));
  }

  DomainLimits decodeDomain(size_t throttles, bool* suspendedAny) {
    DomainLimits dl;
    uint32_t groups = cfg().groups;
    dl.scopeMax = limitOf(r.u8(), 8);
    for (uint32_t g = 0; g < groups; ++g) dl.groupScopeMax.push_back(limitOf(r.u8(), 6));
    dl.pairs.resize(B());
    for (uint32_t b = 0; b < B(); ++b) {
      PairLimits& p = dl.pairs[b];
      uint8_t a = r.u8(), ag = r.u8(), c = r.u8();
      p.maxConnections = a % 7 == 6 ? 32 : a % 7;  // 0..5, or the default 32
      p.aggressiveness = (ag + 1) / 256.0;         // (0, 1]
      p.throttle = static_cast<int32_t>((c & 3) % (throttles + 1)) - 1;
      p.messageThrottle = static_cast<int32_t>(((c >> 2) & 3) % (throttles + 1)) - 1;
      p.suspended = (c & 0x30) == 0x30;
      if (p.suspended && suspendedAny) *suspendedAny = true;
    }
    return dl;
  }

  void opAddDomain() {
    uint8_t m = r.u8();
    size_t throttles = core->ledger().throttleCount();
    DomainLimits dl = decodeDomain(throttles, nullptr);
    // Now and then a domain the ledger must refuse: a throttle index past the end, or a pairs or
    // groupScopeMax list of the wrong length.
    bool bad = (m & 0x0f) >= 0x0d;
    if ((m & 0x0f) == 0x0f) dl.pairs[m % B()].throttle = static_cast<int32_t>(throttles);
    if ((m & 0x0f) == 0x0e) dl.pairs.resize(m & 0x10 ? B() + 1 : B() - 1);
    if ((m & 0x0f) == 0x0d) dl.groupScopeMax.resize(cfg().groups + 1, kUnlimited);
    if (D() >= kMaxDomains) return;
    size_t before = D();
    uint32_t index = 12345;
    Status s = core->addDomain(dl, &index);
    TRACE("addDomain(scopeMax=%u, bad=%d) -> %s index=%u\n", dl.scopeMax, bad ? 1 : 0, statusName(s), index);
    if (bad) {
      CHECK(s == Status::BadArgument && D() == before);
    } else {
      CHECK(s == Status::Ok && index == before && D() == before + 1);
      domainLimits.push_back(dl);
      for (uint32_t b = 0; b < B(); ++b)
        CHECK(core->activeSize(index, b) == 0 && core->ledger().pairCount(index, b) == 0);
    }
  }

  // forgetDomain(d), and when it is forgotten, addDomain at once: the slot must come back for the
  // new domain (so the slot count stays and every loop over D() still covers live domains). The
  // refusal is predicted: in use (a message active, delayed or in flight, a connection), held (a
  // suspended pair, or a grant or expired message naming d not drained: with some pending, either
  // may come). Once forgotten, d leaves the sliced pass's snapshot and the last prepareVisit (the
  // slice and visitDefault checks then hold the core to that), its binding rotation starts again,
  // its limits are the new ones and it starts empty; it is noted idle only after mail again.
  void opForgetDomain() {
    uint32_t d = domain();
    uint8_t m = r.u8();
    MessageInfo mi;
    bool inUse = core->activeTotal(d) > 0 || core->delayedSize(d) > 0 || core->ledger().domainCount(d) > 0;
    for (double id : inFlight)
      if (core->locate(id, &mi) == Status::Ok && mi.domain == d) inUse = true;
    bool suspended = false;
    for (uint32_t b = 0; b < B(); ++b) suspended = suspended || core->ledger().pairLimits(d, b).suspended;
    bool pending = core->pendingGrants() > 0 || core->pendingExpired() > 0;
    if (!inUse && !suspended && (m & 1) && !pending) {
      // Now and then drain the idle notes first: slots of this core (a domain that emptied, got
      // mail and emptied again since the last drain is listed twice).
      std::vector<uint32_t> idle(2 * D() + 1);
      idle.resize(core->drainIdle(idle.data(), idle.size()));
      for (uint32_t x : idle) CHECK(x < D());
    }
    double domainsBefore = counter(kDomains);
    Status s = core->forgetDomain(d);
    TRACE("forgetDomain(d=%u) -> %s (inUse=%d suspended=%d pending=%d)\n", d, statusName(s), inUse ? 1 : 0,
          suspended ? 1 : 0, pending ? 1 : 0);
    if (inUse)
      CHECK(s == Status::DomainInUse);
    else if (suspended)
      CHECK(s == Status::DomainHeld);
    else if (pending)
      CHECK(s == Status::Ok || s == Status::DomainHeld);
    else
      CHECK(s == Status::Ok);
    if (s != Status::Ok) {
      CHECK(core->domainLive(d) && counter(kDomains) == domainsBefore);
      return;
    }
    CHECK(!core->domainLive(d) && counter(kDomains) == domainsBefore - 1);
    CHECK(core->forgetDomain(d) == Status::BadDomain);
    CHECK(core->enqueue(d, 0, nextId, 0, now, kNever, now) == Status::BadDomain);
    if (!open.empty()) CHECK(core->migrateConnection(open[0].connectionId, d) == Status::BadDomain);
    CHECK(core->checkInvariants());
    // The model lets go of d.
    for (size_t i = 0; i < passSnap.size(); ++i) {
      if (passSnap[i] != d) continue;
      if (i < passPos) --passPos;
      passSnap.erase(passSnap.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
    if (visitSet && visitD == d) visitSet = false;
    if (d < bindingRot.size()) bindingRot[d] = 0;
    // A new domain takes the slot.
    DomainLimits dl = decodeDomain(core->ledger().throttleCount(), nullptr);
    uint32_t index = 12345;
    CHECK(core->addDomain(dl, &index) == Status::Ok && index == d && counter(kDomains) == domainsBefore);
    domainLimits[d] = dl;
    for (uint32_t b = 0; b < B(); ++b) {
      CHECK(core->ledger().setMessageThrottle(d, b, dl.pairs[b].messageThrottle) == Status::Ok);
      CHECK(core->activeSize(d, b) == 0 && core->ledger().pairCount(d, b) == 0);
      CHECK(core->ledger().pairLimits(d, b).maxConnections == dl.pairs[b].maxConnections);
    }
    CHECK(core->delayedSize(d) == 0 && core->ledger().domainCount(d) == 0);
  }

  void opQuery() {
    uint8_t m = r.u8(), pick = r.u8();
    uint32_t d = domain(), b = binding();
    MessageInfo mi;
    switch (m % 8) {
      case 0: {  // locate: the model's in-flight set agrees with the core
        double id = messageId(pick, static_cast<uint8_t>(m >> 3));
        Status s = core->locate(id, &mi);
        TRACE("locate(id=%.17g) -> %s %s\n", id, statusName(s), s == Status::Ok ? placeName(mi.place) : "");
        if (!validId(id))
          CHECK(s == Status::BadArgument);
        else if (isInFlight(id))
          CHECK(s == Status::Ok && mi.place == Place::InFlight);
        else if (s == Status::Ok)
          CHECK(mi.place != Place::InFlight && mi.place != Place::Free && mi.id == id);
        break;
      }
      case 1: {  // peekActive in order, every id active in (d, b)
        size_t off = pick % 70, k = m >> 3;
        std::vector<double> out(k);
        size_t n = core->peekActive(d, b, off, out.data(), k);
        TRACE("peekActive(d=%u, b=%u, off=%zu, k=%zu) -> %zu\n", d, b, off, k, n);
        size_t size = core->activeSize(d, b);
        CHECK(n == (off >= size ? 0 : (size - off < k ? size - off : k)));
        for (size_t i = 0; i < n; ++i)
          CHECK(core->locate(out[i], &mi) == Status::Ok && mi.place == Place::Active && mi.domain == d &&
                mi.binding == b);
        break;
      }
      case 2: {  // peekDelayed in time order
        size_t off = pick % 70, k = m >> 3;
        std::vector<double> out(k);
        size_t n = core->peekDelayed(d, off, out.data(), k);
        TRACE("peekDelayed(d=%u, off=%zu, k=%zu) -> %zu\n", d, off, k, n);
        size_t size = core->delayedSize(d);
        CHECK(n == (off >= size ? 0 : (size - off < k ? size - off : k)));
        double last = -kInf;
        for (size_t i = 0; i < n; ++i) {
          CHECK(core->locate(out[i], &mi) == Status::Ok && mi.place == Place::Delayed && mi.domain == d);
          CHECK(mi.nextAttempt >= last);
          last = mi.nextAttempt;
        }
        break;
      }
      case 3: {  // delayedByBinding adds up to delayedSize
        std::vector<double> out(B());
        core->delayedByBinding(d, out.data());
        double sum = 0;
        for (double x : out) sum += x;
        TRACE("delayedByBinding(d=%u) -> %.17g\n", d, sum);
        CHECK(sum == static_cast<double>(core->delayedSize(d)));
        break;
      }
      case 4: {  // nextDueAt is the earliest delayed front; dueDomains agrees with isDue
        double t = core->nextDueAt();
        double want = kNever;
        for (uint32_t x = 0; x < D(); ++x) {
          double id;
          if (core->peekDelayed(x, 0, &id, 1) == 1) {
            CHECK(core->locate(id, &mi) == Status::Ok);
            if (mi.nextAttempt < want) want = mi.nextAttempt;
          }
        }
        std::vector<uint32_t> due(D());
        size_t n = core->dueDomains(now, due.data(), due.size());
        TRACE("nextDueAt() -> %.17g; dueDomains(now=%.17g) -> %zu\n", t, now, n);
        CHECK(t == want);
        size_t k = 0;
        for (uint32_t x = 0; x < D(); ++x) {
          bool isDue = core->isDue(x, now);
          bool wantDue = core->activeTotal(x) > 0;
          double id;
          if (core->peekDelayed(x, 0, &id, 1) == 1) {
            CHECK(core->locate(id, &mi) == Status::Ok);
            if (mi.nextAttempt <= now) wantDue = true;
          }
          CHECK(isDue == wantDue);
          if (isDue) {
            CHECK(k < n && due[k] == x);
            ++k;
          }
        }
        CHECK(k == n);
        break;
      }
      case 5: {  // bindingOrder: each binding with active mail once, in the rotation's order
        std::vector<uint32_t> out(B());
        size_t n = core->bindingOrder(d, out.data());
        TRACE("bindingOrder(d=%u) -> %zu\n", d, n);
        std::vector<uint32_t> want = expectOrder(d);
        CHECK(n == want.size());
        for (size_t i = 0; i < n; ++i) CHECK(out[i] == want[i]);
        break;
      }
      case 6: {  // message throttle: allowance and next-allowed time agree
        uint32_t a = core->ledger().messageAllowance(d, b, now);
        double t = core->messageNextAllowedAt(d, b, now);
        TRACE("messageAllowance(d=%u, b=%u, now=%.17g) -> %u, nextAllowedAt -> %.17g\n", d, b, now, a, t);
        // With a throttle, the time is the throttle's latest clock reading (>= now) while a message
        // may start, else later than now.
        if (core->ledger().pairLimits(d, b).messageThrottle == kNoThrottle)
          CHECK(a == kUnlimited && t == now);
        else if (a > 0)
          CHECK(std::isfinite(t) && t >= now);
        else
          CHECK(t > now);
        break;
      }
      default: {  // reserveFor and headroom
        uint32_t rf = core->reserveFor(d, b);
        CHECK(rf == (core->ledger().pairCount(d, b) == 0 ? 0 : cfg().serverReserve));
        uint32_t h = core->ledger().headroom(d, b, rf, now);
        size_t bytes = core->bytesReserved();
        TRACE("reserveFor(d=%u, b=%u) -> %u, headroom -> %u, bytesReserved -> %zu\n", d, b, rf, h, bytes);
        CHECK(bytes >= D() * sizeof(void*));
        const PairLimits& pl = core->ledger().pairLimits(d, b);
        // A count at or above its limit (it may be above one opSetLimits lowered) leaves no room.
        uint32_t pc = core->ledger().pairCount(d, b);
        uint64_t ceiling = static_cast<uint64_t>(cfg().serverMax) + cfg().serverReserve;
        CHECK(pc >= pl.maxConnections ? h == 0 : static_cast<uint64_t>(h) + pc <= pl.maxConnections);
        CHECK(core->ledger().total() >= ceiling ? h == 0
                                                : static_cast<uint64_t>(h) + core->ledger().total() <= ceiling);
        break;
      }
    }
  }

  // --- the end of an input: give everything back ----------------------------------------------------
  void teardown() {
    TRACE("teardown\n");
    double removedBefore = counter(kActiveRemoved);
    removedWant = counter(kActive);  // every active message leaves by failDomain below
    drainGrants(0x7fffffff);
    while (!open.empty()) {
      double id = open.back().connectionId;
      open.pop_back();
      CHECK(core->releaseConnection(id) == Status::Ok);
    }
    CHECK(core->ledger().total() == 0);
    CHECK(core->ledger().openedEver() == core->ledger().releasedEver());
    while (!inFlight.empty()) {
      CHECK(core->settle(inFlight.back()) == Status::Ok);
      inFlight.pop_back();
      settled += 1;
    }
    double buf[16];
    for (uint32_t d = 0; d < D(); ++d) {
      size_t n;
      while ((n = core->failDomain(d, buf, 16)) > 0) failed += static_cast<double>(n);
    }
    size_t n;
    while ((n = core->drainExpired(buf, 16)) > 0) expiredDrained += static_cast<double>(n);
    CHECK(core->pendingExpired() == 0);
    checkAll();
    checkRemoved(removedBefore);
    CHECK(live() == 0);
    CHECK(accepted == cancelled + settled + removed + failed + expiredDrained);
  }

  void run() {
    // Configuration.
    uint8_t flags = r.u8();
    LedgerConfig c;
    c.bindings = 1 + flags % 4;
    c.groups = (flags >> 2) % 3;
    autoDrain = (flags >> 6) != 3;
    for (uint32_t b = 0; b < c.bindings; ++b) {
      c.groupOfBinding.push_back(static_cast<int32_t>(r.below(c.groups + 1)) - 1);
      c.bindingMax.push_back(limitOf(r.u8(), 8));
    }
    for (uint32_t g = 0; g < c.groups; ++g) c.groupMax.push_back(limitOf(r.u8(), 8));
    // serverMax 0-15, or from 0xf0 16-256: enough connections for the lease table to grow.
    uint8_t sm = r.u8();
    c.serverMax = sm < 0xf0 ? sm % 16 : 16u * (sm - 0xefu);
    c.serverReserve = r.u8() % 4;
    uint8_t nt = r.u8() % 4;
    Core local(c);
    core = &local;
    if (g_trace) {
      std::fprintf(stderr, "config: bindings=%u groups=%u serverMax=%u serverReserve=%u autoDrain=%d\n", c.bindings,
                   c.groups, c.serverMax, c.serverReserve, autoDrain ? 1 : 0);
      for (uint32_t b = 0; b < c.bindings; ++b)
        std::fprintf(stderr, "  binding %u: group=%d bindingMax=%u\n", b, c.groupOfBinding[b], c.bindingMax[b]);
      for (uint32_t g = 0; g < c.groups; ++g) std::fprintf(stderr, "  group %u: groupMax=%u\n", g, c.groupMax[g]);
    }
    for (uint8_t t = 0; t < nt; ++t) {
      uint32_t count = 1 + r.u8() % 4;
      double window = (1 + r.u8() % 8) * 100.0;
      int32_t idx = local.ledger().addThrottle(count, window);
      CHECK(idx == t);
      TRACE("  throttle %d: %u per %.17g ms\n", idx, count, window);
    }
    uint32_t nd = 1 + r.u8() % 6;
    for (uint32_t i = 0; i < nd; ++i) {
      DomainLimits dl = decodeDomain(nt, nullptr);
      uint32_t index;
      CHECK(local.addDomain(dl, &index) == Status::Ok && index == i);
      domainLimits.push_back(dl);
      for (uint32_t b = 0; b < c.bindings; ++b)
        CHECK(local.ledger().setMessageThrottle(i, b, dl.pairs[b].messageThrottle) == Status::Ok);
      if (g_trace) {
        std::fprintf(stderr, "  domain %u: scopeMax=%u groupScopeMax=[", i, dl.scopeMax);
        for (size_t g = 0; g < dl.groupScopeMax.size(); ++g)
          std::fprintf(stderr, "%s%u", g ? "," : "", dl.groupScopeMax[g]);
        std::fprintf(stderr, "]\n");
        for (uint32_t b = 0; b < c.bindings; ++b) {
          const PairLimits& p = dl.pairs[b];
          std::fprintf(stderr, "    pair (%u,%u): max=%u aggr=%.17g throttle=%d msgThrottle=%d suspended=%d\n", i, b,
                       p.maxConnections, p.aggressiveness, p.throttle, p.messageThrottle, p.suspended ? 1 : 0);
        }
      }
    }
    checkAll();

    // Operations.
    while (!r.done()) {
      ++g_step;
      uint8_t op = r.u8() % kOpCount;
      if (g_trace) std::fprintf(stderr, "[%zu @%zu] ", g_step, r.i - 1);
      double removedBefore = counter(kActiveRemoved);
      removedWant = 0;
      switch (op) {
        case kEnqueue:
          opEnqueue();
          break;
        case kEnqueueBatch:
          opEnqueueBatch();
          break;
        case kCancel:
          opCancel();
          break;
        case kTake:
          opTake();
          break;
        case kSettle:
          opSettleDeferUntake(0);
          break;
        case kDefer:
          opSettleDeferUntake(1);
          break;
        case kUntake:
          opSettleDeferUntake(2);
          break;
        case kRemoveActive:
          opRemoveActive();
          break;
        case kPromoteDue:
          opPromoteDue();
          break;
        case kExpireActive:
          opExpireActive();
          break;
        case kGoalOpen:
          opGoalOpen();
          break;
        case kDefaultMaintain:
          opDefaultMaintain();
          break;
        case kMaintainDomain:
          opMaintainDomain();
          break;
        case kMaintainAll:
          opMaintainAll();
          break;
        case kRelease:
          opRelease();
          break;
        case kMigrate:
          opMigrate();
          break;
        case kFlush:
          opFlush();
          break;
        case kFail:
          opFail();
          break;
        case kRetryNow:
          opRetryNow();
          break;
        case kDrainGrants:
          opDrainGrants();
          break;
        case kDrainExpired:
          opDrainExpired();
          break;
        case kTime:
          opTime();
          break;
        case kSetSuspended:
          opSetSuspended();
          break;
        case kSetMessageThrottle:
          opSetMessageThrottle();
          break;
        case kAddDomain:
          opAddDomain();
          break;
        case kQuery:
          opQuery();
          break;
        case kSettleBatch:
          opSettleBatch();
          break;
        case kEnqueueBatchAt:
          opEnqueueBatchAt();
          break;
        case kDeferBatch:
          opDeferBatch();
          break;
        case kMaintainSlice:
          opMaintainSlice();
          break;
        case kPrepareVisit:
          opPrepareVisit();
          break;
        case kCancelMany:
          opCancelMany();
          break;
        case kCancelBatch:
          opCancelBatch();
          break;
        case kVisitDefault:
          opVisitDefault();
          break;
        case kMaintainSliceCapped:
          opMaintainSliceCapped();
          break;
        case kEnqueueArrivals:
          opEnqueueArrivals();
          break;
        case kAddHost:
          opAddHost();
          break;
        case kSetDomainHosts:
          opSetDomainHosts();
          break;
        case kClaimHost:
          opClaimHost();
          break;
        case kSetAttempts:
          opSetAttempts();
          break;
        case kApplyOutcomes:
          opApplyOutcomes();
          break;
        default:
          opForgetDomain();
          break;
      }
      checkAll();
      checkRemoved(removedBefore);
    }
    ++g_step;
    // Bit 4 of the first byte: skip the teardown, so the core is destroyed with its queues, leases
    // and pending grants still in it (LeakSanitizer checks that nothing is lost).
    if (!(flags & 0x10))
      teardown();
    else
      TRACE("destroyed without teardown\n");
    core = nullptr;
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* t = std::getenv("MQC_FUZZ_TRACE");
  g_trace = t != nullptr && *t != '\0' && std::strcmp(t, "0") != 0;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  g_step = 0;
  Fuzz f;
  f.r = Reader{data, size};
  f.run();
  return 0;
}

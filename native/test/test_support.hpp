// Test utilities shared by the native/test executables: the ENSURE macros, a seeded RNG, printing
// of lists and statuses for failure messages, and the small builders and model computations that
// more than one test file needs. Included after <doctest/doctest.h> by every *_test.cpp.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "connection_ledger.hpp"
#include "message_table.hpp"
#include "status.hpp"

namespace mqc {
// Prints a Status by name in CHECK and ENSURE_STATUS messages.
inline std::ostream& operator<<(std::ostream& os, Status s) { return os << statusName(s); }
}  // namespace mqc

// Exceptions are off, so REQUIRE cannot unwind: ENSURE records a check and leaves the current
// function at the first failure, so a random walk reports its first divergence only.
#define ENSURE_MSG(cond, msg)                               \
  do {                                                      \
    const bool ensure_ok_ = static_cast<bool>(cond);        \
    CHECK_MESSAGE(ensure_ok_, "ENSURE(" #cond ") " << msg); \
    if (!ensure_ok_) return;                                \
  } while (0)
#define ENSURE(cond) ENSURE_MSG(cond, "")
// ENSURE(expr == want) for a Status, with both statuses named in the message.
#define ENSURE_STATUS(expr, want)                                                                         \
  do {                                                                                                    \
    const ::mqc::Status ensure_got_ = (expr);                                                             \
    const ::mqc::Status ensure_want_ = (want);                                                            \
    CHECK_MESSAGE(ensure_got_ == ensure_want_, #expr " -> " << ensure_got_ << ", want " << ensure_want_); \
    if (ensure_got_ != ensure_want_) return;                                                              \
  } while (0)

namespace test_support {

// Grants of a model still inside the window that ends at `now`: (now - windowMs, now].
inline size_t inWindow(const std::vector<double>& grants, double now, double windowMs) {
  size_t n = 0;
  for (double g : grants) n += g > now - windowMs;
  return n;
}

// Deterministic on every platform (std distributions are not): splitmix64.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
  int64_t range(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo + 1))); }
  bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }
};

// "[a,b,c]" for failure messages: the first 30 elements, then the count; doubles in full precision.
template <class T>
std::string fmt(const std::vector<T>& v) {
  std::ostringstream os;
  os.precision(17);
  os << "[";
  for (size_t i = 0; i < v.size() && i < 30; ++i) os << (i ? "," : "") << v[i];
  if (v.size() > 30) os << ",...(" << v.size() << ")";
  os << "]";
  return os.str();
}

// The most grants that fall in any half-open window [s, s + windowMs). It is enough to start
// windows at grant times.
inline size_t maxInAnyWindow(std::vector<double> grants, double windowMs) {
  std::sort(grants.begin(), grants.end());
  size_t best = 0, j = 0;
  for (size_t i = 0; i < grants.size(); ++i) {
    if (j < i) j = i;
    while (j < grants.size() && grants[j] < grants[i] + windowMs) ++j;
    best = std::max(best, j - i);
  }
  return best;
}

// Messages whose records serve as queue keys: the skiplists and active queues hold bare handles,
// ordered by the (nextAttempt, seq) in their records. add(t, seq) makes a message with a fresh id
// and that key and returns its handle.
struct KeyedMessages {
  mqc::MessageTable table;
  double nextId = 1;

  uint32_t add(double t, uint64_t seq) {
    uint32_t h = table.add(nextId++);
    table.at(h).nextAttempt = t;
    table.at(h).setSeq(seq);
    return h;
  }
};

// A random connection configuration: the ledger's config, its throttles and its domains.
struct Setup {
  mqc::LedgerConfig cfg;
  std::vector<std::pair<uint32_t, double>> throttles;  // (count, windowMs)
  std::vector<mqc::DomainLimits> domains;
};

// kUnlimited with probability pUnlimited, else a limit in [lo, hi].
inline uint32_t limitOrUnlimited(Rng& rng, double pUnlimited, int64_t lo, int64_t hi) {
  return rng.chance(pUnlimited) ? mqc::kUnlimited : static_cast<uint32_t>(rng.range(lo, hi));
}

// A domain with no scope or group limits and maxConnections on every binding.
inline mqc::DomainLimits plainDomain(uint32_t bindings, uint32_t groups = 0, uint32_t maxConnections = 32) {
  mqc::DomainLimits dl;
  dl.groupScopeMax.assign(groups, mqc::kUnlimited);
  dl.pairs.resize(bindings);
  for (auto& p : dl.pairs) p.maxConnections = maxConnections;
  return dl;
}

// A config with ungrouped bindings and no binding or group limits.
inline mqc::LedgerConfig plainConfig(uint32_t bindings, uint32_t serverMax = 20000, uint32_t serverReserve = 200) {
  mqc::LedgerConfig c;
  c.bindings = bindings;
  c.serverMax = serverMax;
  c.serverReserve = serverReserve;
  return c;
}

}  // namespace test_support

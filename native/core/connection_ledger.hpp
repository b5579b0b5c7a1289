// The connection ledger: how many connections are open or opening for each (domain, binding), each
// domain, each (binding group, domain), each binding, each binding group and in total, and the
// limits they are held to (docs/architecture.md §7). A connection is a lease on every one of those counts;
// acquire() clips a request to the smallest headroom first and never lets a count pass its limit,
// release() gives every count back exactly once. Nothing here can make a count negative: a
// connection id is released once, and an unknown id is refused.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lease_table.hpp"
#include "rate_throttle.hpp"
#include "status.hpp"

namespace mqc {

constexpr uint32_t kUnlimited = 0xffffffffu;
constexpr int32_t kNoGroup = -1;
constexpr int32_t kNoThrottle = -1;

// The limit that held a request back (acquire() was asked for more than it could open), in the
// order headroom() applies them; the first of equal ones is named.
enum class Refusal : uint8_t { Pair = 0, Domain, GroupDomain, Group, Binding, Server, Throttle, Suspended };
constexpr size_t kRefusalScopes = 8;
// The counts behind a lease that leaseExcess() reports, in Refusal order: pair, domain,
// group::domain, group, binding, server.
constexpr size_t kExcessScopes = 6;

struct PairLimits {
  uint32_t maxConnections = 32;           // max_outbound_connections for binding::domain
  double aggressiveness = 0.3;            // connection_allocation_aggressiveness
  int32_t throttle = kNoThrottle;         // outbound_throttle_connections bucket, shared by reference
  bool suspended = false;                 // suspend_delivery for binding::domain
  int32_t messageThrottle = kNoThrottle;  // outbound_throttle_messages bucket, shared by reference
};

struct DomainLimits {
  uint32_t scopeMax = kUnlimited;       // scope_max_outbound_connections, Global::Domain
  std::vector<uint32_t> groupScopeMax;  // per group: Binding_Group::Domain (kUnlimited = none)
  std::vector<PairLimits> pairs;        // per binding slot
};

struct LedgerConfig {
  uint32_t bindings = 1;
  std::vector<int32_t> groupOfBinding;  // per binding: group index or kNoGroup
  uint32_t groups = 0;
  uint32_t serverMax = 20000;        // server_max_outbound_connections (global)
  uint32_t serverReserve = 200;      // server_reserve_outbound_connections
  std::vector<uint32_t> bindingMax;  // per binding: server_max in binding scope (kUnlimited)
  std::vector<uint32_t> groupMax;    // per group: server_max in binding_group scope (kUnlimited)
};

class ConnectionLedger {
 public:
  explicit ConnectionLedger(LedgerConfig cfg);

  const LedgerConfig& config() const { return cfg_; }
  uint32_t bindings() const { return cfg_.bindings; }
  uint32_t groups() const { return cfg_.groups; }
  int32_t groupOf(uint32_t b) const { return cfg_.groupOfBinding[b]; }

  // Throttle buckets are created once at configuration time and referenced by index; -1 when the
  // count is outside 1..kMaxThrottleCount or the window is not positive.
  int32_t addThrottle(uint32_t count, double windowMs);
  size_t throttleCount() const { return throttles_.size(); }
  const RateThrottle& throttle(int32_t i) const { return throttles_[static_cast<size_t>(i)]; }

  Status addDomain(const DomainLimits& limits, uint32_t* index);

  // --- live reconfiguration (docs/configuration.md) ------------------------------------------
  // Each checks its arguments as the constructor and addDomain() do and changes nothing on
  // BadArgument. Counts are left alone: a count above a lowered limit only means no new grants
  // until it falls below it; this side never closes a connection.
  // A domain's limits in place (every pair's, its scope cap, its group::domain caps).
  Status setDomainLimits(uint32_t d, const DomainLimits& limits);
  // server_max, server_reserve, and the per-binding and per-group maxima (sizes as configured).
  Status setServerLimits(uint32_t serverMax, uint32_t serverReserve, const std::vector<uint32_t>& bindingMax,
                         const std::vector<uint32_t>& groupMax);
  // A new rate for a throttle bucket, keeping the grants it has recorded (RateThrottle::setRate).
  Status setThrottleRate(int32_t throttle, uint32_t count, double windowMs);
  // How far each count behind an open connection's lease is above its limit (0 where it is not),
  // in kExcessScopes order; the server's is against server_max + server_reserve. False for an
  // unknown connection.
  bool leaseExcess(double connectionId, uint32_t excess[kExcessScopes]) const;
  size_t domains() const { return domainTotal_.size(); }
  const PairLimits& pairLimits(uint32_t d, uint32_t b) const { return pairLimits_[pairIndex(d, b)]; }
  void setSuspended(uint32_t d, uint32_t b, bool s) { pairLimits_[pairIndex(d, b)].suspended = s; }
  // Points (d, b) at a message-rate bucket (kNoThrottle: none). BadArgument for an unknown bucket.
  Status setMessageThrottle(uint32_t d, uint32_t b, int32_t throttle);
  // outbound_throttle_messages: how many messages (d, b) may start at `now`, recording k started.
  uint32_t messageAllowance(uint32_t d, uint32_t b, double now) const;
  // A hint: fetch the pair's limits (messageAllowance and a release read them).
  void prefetchPair(uint32_t d, uint32_t b) const { __builtin_prefetch(&pairLimits_[pairIndex(d, b)]); }
  void consumeMessages(uint32_t d, uint32_t b, uint32_t k, double now);
  // When (d, b) may start its next message (now when it may already).
  double messageNextAllowedAt(uint32_t d, uint32_t b, double now) const;
  // Moves an open connection to another domain on the same binding (a sibling with the same MX
  // set), if that domain's per-pair, per-domain and group::domain limits have room and it is not
  // suspended. The binding, group and total counts do not change; no throttle is charged (it is
  // not a new connection). UnknownConnection or TooMany (no room).
  Status migrate(double connectionId, uint32_t toDomain, Grant* moved);

  // How many more connections (domain, binding) may open at `now`, with `reserve` connections of
  // the server ceiling kept back: the smallest headroom of every limit, throttle last.
  uint32_t headroom(uint32_t d, uint32_t b, uint32_t reserve, double now) const;
  // Opens min(want, headroom) connections, appending a Grant for each; returns how many. When it
  // opens fewer than want, lastRefusal() names the limit that held the rest back.
  uint32_t acquire(uint32_t d, uint32_t b, uint32_t want, uint32_t reserve, double now, std::vector<Grant>* out);
  Refusal lastRefusal() const { return lastRefusal_; }
  Status release(double connectionId, Grant* released);
  // The open connection with this id (its domain is the one it migrated to, if it did), or nullptr.
  const Grant* lease(double connectionId) const;

  uint32_t pairCount(uint32_t d, uint32_t b) const { return pairCount_[pairIndex(d, b)]; }
  uint32_t domainCount(uint32_t d) const { return domainTotal_[d]; }
  uint32_t groupDomainCount(uint32_t g, uint32_t d) const { return groupDomain_[groupIndex(d, g)]; }
  uint32_t bindingCount(uint32_t b) const { return bindingCount_[b]; }
  uint32_t groupCount(uint32_t g) const { return groupCount_[g]; }
  uint32_t total() const { return total_; }
  uint64_t openedEver() const { return opened_; }
  uint64_t releasedEver() const { return released_; }

  // Every count equals the sum of the leases behind it and none is above its limit (unless a
  // setter lowered a limit below a live count: then counts are only checked against their leases).
  bool checkInvariants() const;

 private:
  size_t pairIndex(uint32_t d, uint32_t b) const { return static_cast<size_t>(d) * cfg_.bindings + b; }
  // A whole number from 1 below the next id to issue: a connection id this ledger may have issued.
  bool issued(double connectionId) const;
  size_t groupIndex(uint32_t d, uint32_t g) const { return static_cast<size_t>(d) * cfg_.groups + g; }
  // Which limit gives headroom() its value (the slow path of a clipped acquire()).
  Refusal limitingScope(uint32_t d, uint32_t b, uint32_t reserve, double now) const;
  // The sizes and throttle indices of a domain's limits fit this ledger (addDomain, setDomainLimits).
  bool validLimits(const DomainLimits& limits) const;
  // The server ceiling's room left for a call with this reserve (headroom()'s rule).
  uint32_t serverRoom(uint32_t reserve) const;

  LedgerConfig cfg_;
  std::vector<RateThrottle> throttles_;
  // Per domain and per (domain, binding) or (domain, group), each in one flat array indexed by
  // domain first: a pass reads a domain's entries from adjacent memory, however the domains' creation
  // interleaved with other allocations.
  std::vector<PairLimits> pairLimits_;   // [d * bindings + b]
  std::vector<uint32_t> pairCount_;      // [d * bindings + b]
  std::vector<uint32_t> groupScopeMax_;  // [d * groups + g]: Binding_Group::Domain (kUnlimited = none)
  std::vector<uint32_t> groupDomain_;    // [d * groups + g]: connections of group g to domain d
  std::vector<uint32_t> scopeMax_;       // [d]: Global::Domain scope cap
  std::vector<uint32_t> domainTotal_;    // [d]: connections to domain d
  std::vector<uint32_t> bindingCount_;
  std::vector<uint32_t> groupCount_;
  uint32_t total_ = 0;
  uint64_t opened_ = 0;
  uint64_t released_ = 0;
  double nextConnectionId_ = 1;
  Refusal lastRefusal_ = Refusal::Pair;
  bool lowered_ = false;  // a setter put a limit below its live count (checkInvariants)
  LeaseTable leases_;
};

}  // namespace mqc

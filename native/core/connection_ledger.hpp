// The connection ledger: how many connections are open or opening for each (domain, binding), each
// domain, each (binding group, domain), each binding, each binding group and in total, and the
// limits they are held to (docs/architecture.md §7). A connection is a lease on every one of those counts;
// acquire() clips a request to the smallest headroom first and never lets a count pass its limit,
// release() gives every count back exactly once. Nothing here can make a count negative: a
// connection id is released once, and an unknown id is refused.
#pragma once
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "lease_table.hpp"
#include "rate_throttle.hpp"
#include "status.hpp"

namespace mqc {

constexpr uint32_t kUnlimited = 0xffffffffu;
constexpr int32_t kNoGroup = -1;
constexpr int32_t kNoThrottle = -1;

// The limit that held a request back (acquire() was asked for more than it could open), in the
// order headroom() applies them; the first of equal ones is named. Host and Cluster were added
// last: headroom() applies Host after Server and before Throttle; Cluster is the slots this node
// holds leases for in a fleet-wide cap (lib/cluster).
enum class Refusal : uint8_t {
  Pair = 0,
  Domain,
  GroupDomain,
  Group,
  Binding,
  Server,
  Throttle,
  Suspended,
  Host,
  Cluster
};
constexpr size_t kRefusalScopes = 10;
constexpr uint32_t kNoHost = 0xffffffffu;
constexpr size_t kMaxDomainHosts = 256;  // hosts of one domain's MX set at most
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

// A pair's buckets of fleet-wide throttles (lib/cluster): clusterOutboundThrottleConnections and
// clusterOutboundThrottleMessages, each a bucket of this ledger whose allowance is the slots of the
// fleet's rate this node holds; checked beside the pair's own throttles. kNoThrottle: none.
struct ClusterThrottles {
  int32_t connections = kNoThrottle;
  int32_t messages = kNoThrottle;
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
  // A domain slot made again for a new domain (Core::forgetDomain freed it): its limits are
  // overwritten in place and its counts, which must be zero (no connection), stay so. BadDomain for
  // an index out of range, BadArgument as addDomain, DomainInUse when it still has a connection.
  Status reuseDomain(uint32_t d, const DomainLimits& limits);

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
  // A hint: fetch the lease slot of this id, if it could be one (no read of the table).
  void prefetchLease(double connectionId) const {
    if (connectionId >= 1 && connectionId < 9007199254740992.0) leases_.prefetch(static_cast<uint64_t>(connectionId));
  }

  uint32_t pairCount(uint32_t d, uint32_t b) const { return pairCount_[pairIndex(d, b)]; }
  uint32_t domainCount(uint32_t d) const { return domainTotal_[d]; }
  uint32_t groupDomainCount(uint32_t g, uint32_t d) const { return groupDomain_[groupIndex(d, g)]; }
  uint32_t bindingCount(uint32_t b) const { return bindingCount_[b]; }
  uint32_t groupCount(uint32_t g) const { return groupCount_[g]; }
  uint32_t total() const { return total_; }
  uint64_t openedEver() const { return opened_; }
  uint64_t releasedEver() const { return released_; }

  // The Host scope (per MX host caps; decision 47). Off until the first addHost(): then every
  // grant of a domain whose MX set is known is charged to one of its hosts, the first in the set's
  // order with room under the host's cap and the (binding, host) cap, and a domain whose set is not
  // known yet gets one connection at a time (uncharged; the session charges it with claimHost()).
  // addHost: a host record with its cap and per binding caps (kUnlimited: none); TooMany past 2^31.
  Status addHost(uint32_t maxConnections, const std::vector<uint32_t>& bindingMax, uint32_t* index);
  size_t hosts() const { return hostMax_.size(); }
  bool hostScope() const { return !hostMax_.empty(); }
  // Domain d's MX hosts in preference order (distinct known hosts, at most kMaxDomainHosts):
  // BadDomain or BadArgument. Empty: not known.
  Status setDomainHosts(uint32_t d, const std::vector<uint32_t>& hosts);
  const std::vector<uint32_t>& domainHosts(uint32_t d) const;
  // The session of a connection is about to connect to host h: its charge moves there (Ok, also
  // when it is there already), or TooMany when h has no room for the lease's binding.
  // UnknownConnection, BadArgument (no such host).
  Status claimHost(double connectionId, uint32_t h);
  // The host a connection is charged to, or kNoHost.
  uint32_t leaseHost(double connectionId) const;
  uint32_t hostCount(uint32_t h) const { return hostCount_[h]; }
  uint32_t hostBindingCount(uint32_t h, uint32_t b) const { return hostBindingCount_[hostIndex(h, b)]; }
  // Held caps of a fleet (docs/architecture.md §7, decision 48): how many slots of a cluster-wide
  // cap this node holds leases for, per (domain, binding), per domain and server-wide, each an
  // extra limit in headroom() (Refusal::Cluster); kUnlimited (the default) when not cluster-capped.
  // A held cap may drop below the open count (leases lost): nothing new opens until it is below.
  void setHeldPair(uint32_t d, uint32_t b, uint32_t held) { heldPair_[pairIndex(d, b)] = held; }
  void setHeldDomain(uint32_t d, uint32_t held) { heldDomain_[d] = held; }
  void setHeldServer(uint32_t held) { heldServer_ = held; }
  uint32_t heldPair(uint32_t d, uint32_t b) const { return heldPair_[pairIndex(d, b)]; }
  uint32_t heldDomain(uint32_t d) const { return heldDomain_[d]; }
  uint32_t heldServer() const { return heldServer_; }
  // Fleet-wide throttles (lib/cluster, decision 51): points (d, b) at a connection bucket and a
  // message bucket (kNoThrottle: none), each one more throttle in headroom() (Refusal::Cluster) or
  // messageAllowance(), charged beside the pair's own. BadDomain, BadArgument (an unknown binding or
  // bucket, or the pair's own bucket of that kind). A domain slot reused starts with none.
  Status setClusterThrottles(uint32_t d, uint32_t b, int32_t connections, int32_t messages);
  ClusterThrottles clusterThrottles(uint32_t d, uint32_t b) const;
  // A bucket's allowance (RateThrottle::setAllowance): the grants this node may make in its window.
  // BadArgument for an unknown bucket or an allowance above its count.
  Status setThrottleAllowance(int32_t throttle, uint32_t allowance);

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
  // addDomain's, reuseDomain's and setDomainLimits' checks of a domain's limits.
  Status checkLimits(const DomainLimits& limits) const;
  // The room under the held caps of a fleet (pair, domain, server).
  uint32_t clusterRoom(uint32_t d, size_t pi) const;
  // The room under (d, b)'s fleet-wide connection throttle (kUnlimited without one).
  uint32_t clusterThrottleRoom(size_t pi, double now) const;
  bool validBucket(int32_t t) const {
    return t == kNoThrottle || (t >= 0 && static_cast<size_t>(t) < throttles_.size());
  }
  // The server ceiling's room left for a call with this reserve (headroom()'s rule).
  uint32_t serverRoom(uint32_t reserve) const;
  size_t hostIndex(uint32_t h, uint32_t b) const { return static_cast<size_t>(h) * cfg_.bindings + b; }
  // Room at host h for binding b: its cap and the (binding, host) cap.
  uint32_t hostRoom(uint32_t h, uint32_t b) const;
  // Room for (d, b) under the Host scope: the sum over d's MX set; kUnlimited without host records.
  uint32_t hostHeadroom(uint32_t d, uint32_t b) const;
  void chargeHost(uint32_t h, uint32_t b, bool add);
  bool checkHostInvariants() const;

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
  // The Host scope: per host and per [h * bindings + b]; the MX set per domain (made on demand,
  // shorter than the domain count until every domain's is known); the host of each charged lease.
  std::vector<uint32_t> hostMax_;
  std::vector<uint32_t> hostCount_;
  std::vector<uint32_t> hostBindingMax_;
  std::vector<uint32_t> hostBindingCount_;
  std::vector<std::vector<uint32_t>> domainHosts_;
  std::unordered_map<uint64_t, uint32_t> leaseHost_;
  std::vector<uint32_t> heldPair_;    // [d * bindings + b]: cluster slots held (kUnlimited = none)
  std::vector<uint32_t> heldDomain_;  // [d]: cluster slots held for the domain (kUnlimited = none)
  uint32_t heldServer_ = kUnlimited;  // cluster slots held server-wide

  // [d * bindings + b]: the pairs' fleet-wide throttle buckets; read only once some pair has one.
  std::vector<ClusterThrottles> clusterThrottles_;
  bool clusterThrottled_ = false;
};

}  // namespace mqc

// outbound_throttle_connections ("N" per second or "N/secs"): at most N grants in any window of
// `secs` seconds. A sliding window, not a token bucket: a bucket refilled at N/secs lets 2N through
// a window that straddles a burst, which a receiver counting its own connections would see as a
// broken limit. The ring holds the times of the last N grants; a grant is allowed when the oldest
// of them left the window. One RateThrottle per configuration scope that sets the option, shared by
// every (domain, binding) that falls back to that scope ("by reference", as Momentum does).
// A fleet-wide throttle's bucket (lib/cluster) also has an allowance: at most that many grants in
// the window (0..count), set as the node's share of the fleet's rate changes; the ring keeps every
// grant of the window whatever the allowance, so lowering it and raising it again forgets nothing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace mqc {

constexpr uint32_t kMaxThrottleCount = 1000000;

class RateThrottle {
 public:
  RateThrottle(uint32_t count, double windowMs) : count_(count), windowMs_(windowMs) {}

  // Grants available at `now` (0..count).
  uint32_t available(double now) const;
  // Records k grants at `now`. Precondition: k <= available(now).
  void consume(double now, uint32_t k);
  // The earliest time at which one more grant is allowed (now when one is available).
  double nextAllowedAt(double now) const;
  // A new rate for a live bucket (live reconfiguration): the newest min(count, held) grant times
  // are kept, so grants already made still count against the new window.
  void setRate(uint32_t count, double windowMs);
  uint32_t count() const { return count_; }
  double windowMs() const { return windowMs_; }
  // At most `allowance` grants in any window (clipped to count; count by default). The grants
  // already in the window count against it: a lowered allowance grants nothing until fewer than it
  // are left in the window.
  void setAllowance(uint32_t allowance) { allowance_ = allowance; }
  uint32_t allowance() const { return allowance_ < count_ ? allowance_ : count_; }

 private:
  uint32_t count_;
  double windowMs_;

  // setAllowance()'s; above count_ (the default): count_ applies.
  uint32_t allowance_ = std::numeric_limits<uint32_t>::max();
  std::vector<double> ring_;  // grant times in order, oldest at head_ once full
  size_t head_ = 0;
  // Times are samples of one clock that only moves forward: a time earlier than one already seen
  // (a stale sample, such as a pass's `now` after a hook read the clock) counts as the latest one.
  // That is also the only reading under which a grant made "at" a stale time is correctly placed.
  // expired_ counts the oldest entries known to be out of the window at seen_.
  double effective(double now) const { return now > seen_ ? (seen_ = now) : seen_; }
  mutable size_t expired_ = 0;
  mutable double seen_ = -std::numeric_limits<double>::infinity();
};

}  // namespace mqc

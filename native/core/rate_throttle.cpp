#include "rate_throttle.hpp"

#include <utility>

namespace mqc {

uint32_t RateThrottle::available(double now) const {
  if (count_ == 0) return 0;
  now = effective(now);
  size_t filled = ring_.size();
  // Entries that left the window stay out of it (time only moves forward), so the scan resumes
  // where the last one stopped: amortised O(1) a grant.
  while (expired_ < filled && ring_[(head_ + expired_) % filled] <= now - windowMs_) ++expired_;
  if (allowance_ >= count_) return static_cast<uint32_t>(count_ - filled + expired_);
  size_t inWindow = filled - expired_;
  return allowance_ > inWindow ? static_cast<uint32_t>(allowance_ - inWindow) : 0;
}

void RateThrottle::consume(double now, uint32_t k) {
  uint32_t avail = available(now);
  if (k > avail) k = avail;  // never record more than the window allows
  double t = seen_;
  for (uint32_t i = 0; i < k; ++i) {
    if (ring_.size() < count_) {
      ring_.push_back(t);  // not full yet: head_ stays 0, order is push order
    } else {
      ring_[head_] = t;  // overwrite the oldest, which has left the window
      head_ = (head_ + 1) % ring_.size();
      --expired_;
    }
  }
}

double RateThrottle::nextAllowedAt(double now) const {
  if (count_ == 0 || allowance_ == 0) return std::numeric_limits<double>::infinity();
  if (available(now) > 0) return seen_;
  // The window holds at least allowance() grants: one more is allowed when all but allowance() - 1
  // of them have left it (full, allowance count: the oldest grant leaves first).
  size_t filled = ring_.size();
  size_t inWindow = filled - expired_;
  return ring_[(head_ + expired_ + (inWindow - allowance())) % filled] + windowMs_;
}

void RateThrottle::setRate(uint32_t count, double windowMs) {
  size_t filled = ring_.size();
  size_t keep = filled < count ? filled : count;
  std::vector<double> times;
  times.reserve(keep);
  for (size_t i = filled - keep; i < filled; ++i) times.push_back(ring_[(head_ + i) % filled]);
  ring_ = std::move(times);  // oldest first, head_ at 0; full when it holds `count` times
  head_ = 0;
  expired_ = 0;  // available() rescans from the oldest kept time
  count_ = count;
  windowMs_ = windowMs;
}

}  // namespace mqc

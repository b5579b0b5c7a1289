#include "connection_goal.hpp"

#include <cmath>

namespace mqc {

uint32_t connectionGoal(uint32_t maxConnections, uint64_t queued, double aggressiveness) {
  if (maxConnections == 0 || queued == 0) return 0;
  double m = static_cast<double>(maxConnections);
  double raw = m * (1.0 - std::exp(-aggressiveness * static_cast<double>(queued) / m));
  // A hair of tolerance so that a value that is an integer in exact arithmetic is not pushed up
  // by rounding error in exp().
  double goal = std::ceil(raw - 1e-9);
  if (goal < 1) goal = 1;
  if (goal > m) goal = m;
  return static_cast<uint32_t>(goal);
}

}  // namespace mqc

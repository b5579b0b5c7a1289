// The default connection goal for one (domain, binding): Momentum's connection_allocation_
// aggressiveness curve. The documentation's figure (queue 0..400, M = 32) fits
// M * (1 - exp(-a * q / M)) to about 0.1 connection; we round up so a single queued message
// always gets a connection, and never pass M.
#pragma once
#include <cstdint>

namespace mqc {

constexpr double kAggressivenessNormal = 0.3;
constexpr double kAggressivenessHigh = 0.75;

// goal = min(M, max(1, ceil(M * (1 - exp(-a * q / M))))) for q > 0 and M > 0; 0 otherwise.
uint32_t connectionGoal(uint32_t maxConnections, uint64_t queued, double aggressiveness);

}  // namespace mqc

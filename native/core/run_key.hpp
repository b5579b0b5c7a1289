// The sort key shared by every queue: (time, insertion sequence). Sequences are unique per core, so
// two keys are never equal unless they name the same entry.
#pragma once
#include <cstdint>

namespace mqc {

struct RunKey {
  double t;      // next-attempt time, ms since the epoch
  uint64_t seq;  // insertion sequence: FIFO among equal times
};

inline bool keyLess(const RunKey& a, const RunKey& b) { return a.t < b.t || (a.t == b.t && a.seq < b.seq); }

inline bool keyEqual(const RunKey& a, const RunKey& b) { return a.t == b.t && a.seq == b.seq; }

}  // namespace mqc

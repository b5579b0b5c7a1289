// MessageTable: dense handles, the open-addressing id index and its backward-shift deletion,
// against a std::unordered_map model.
#include <doctest/doctest.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "message_table.hpp"
#include "test_support.hpp"

using namespace mqc;
using namespace test_support;

namespace {

constexpr double kMaxSafe = 9007199254740991.0;  // 2^53 - 1

// Ids the way MTAs make them: sequential, clustered in strides, random up to 2^53 - 1, near the top.
double pickId(Rng& rng, uint64_t& counter) {
  switch (rng.below(5)) {
    case 0:
      return static_cast<double>(counter++);
    case 1:
      return static_cast<double>((rng.below(4096)) << 20);  // equal low bits
    case 2:
      return static_cast<double>(rng.below(1ull << 53));  // anywhere safe
    case 3:
      return kMaxSafe - static_cast<double>(rng.below(5000));  // near 2^53 - 1
    default:
      return static_cast<double>(1000000 + rng.below(3000) * 1024);  // strided cluster
  }
}

struct Model {
  std::unordered_map<double, uint32_t> byId;  // id -> handle
};

// Empty when the table holds exactly the model: every id found at its handle, payload intact.
std::string diffAll(const MessageTable& t, const Model& m) {
  std::ostringstream os;
  if (t.size() != m.byId.size()) {
    os << "size " << t.size() << ", model " << m.byId.size();
    return os.str();
  }
  for (const auto& kv : m.byId) {
    uint32_t h = t.find(kv.first);
    if (h != kv.second) {
      os << "id " << kv.first << " found at " << h << ", added at " << kv.second;
      return os.str();
    }
    if (t.at(h).id != kv.first || t.at(h).place() == Place::Free) {
      os << "handle " << h << " no longer holds id " << kv.first;
      return os.str();
    }
    if (t.at(h).nextAttempt != kv.first * 0.5 || t.at(h).domain != static_cast<uint32_t>(h * 7u)) {
      os << "payload of handle " << h << " was clobbered";
      return os.str();
    }
  }
  return "";
}

void randomWalk(uint64_t seed, int ops, size_t maxLive) {
  Rng rng(seed);
  MessageTable t;
  Model m;
  std::vector<double> live;  // for random picks
  std::unordered_set<uint32_t> liveHandles;
  uint64_t counter = rng.below(1000000);
  size_t peak = 0;
  for (int step = 0; step < ops; ++step) {
    INFO("seed " << seed << " step " << step << " live " << live.size());
    bool add = live.empty() || (live.size() < maxLive && rng.chance(live.size() < maxLive / 2 ? 0.7 : 0.5));
    if (add) {
      double id = pickId(rng, counter);
      if (m.byId.count(id)) {
        ENSURE(t.find(id) == m.byId[id]);
        continue;
      }
      ENSURE(t.find(id) == kNoHandle);
      uint32_t h = t.add(id);
      ENSURE(h != kNoHandle);
      ENSURE_MSG(liveHandles.insert(h).second, "handle " << h << " handed out twice");
      t.at(h).nextAttempt = id * 0.5;
      t.at(h).domain = h * 7u;
      m.byId[id] = h;
      live.push_back(id);
      if (live.size() > peak) peak = live.size();
      // Dense handles: never beyond the most messages that were ever live at once.
      ENSURE_MSG(h < peak, "handle " << h << " with peak " << peak);
    } else {
      size_t i = rng.below(live.size());
      double id = live[i];
      uint32_t h = m.byId[id];
      t.free(h);
      liveHandles.erase(h);
      m.byId.erase(id);
      live[i] = live.back();
      live.pop_back();
      ENSURE_MSG(t.find(id) == kNoHandle, "freed id " << id << " still found");
      // Backward-shift deletion must leave every other probe chain intact.
      if (live.size() < 700 || step % 32 == 0) {
        std::string diff = diffAll(t, m);
        ENSURE_MSG(diff.empty(), "after free: " << diff);
      }
    }
    if (live.size() < 700 || step % 64 == 0) ENSURE(t.checkInvariants());
  }
  std::string diff = diffAll(t, m);
  ENSURE_MSG(diff.empty(), "end: " << diff);
  ENSURE(t.checkInvariants());
}

}  // namespace

TEST_CASE("MessageTable: an empty table finds nothing") {
  MessageTable t;
  CHECK(t.size() == 0u);
  CHECK(t.find(0) == kNoHandle);
  CHECK(t.find(kMaxSafe) == kNoHandle);
  CHECK(t.checkInvariants());
}

TEST_CASE("MessageTable: sequential ids; growth; free; re-add with recycled handles") {
  MessageTable t;
  const uint32_t n = 20000;  // grows the index many times from its first size
  std::vector<uint32_t> handleOf(n);
  std::unordered_set<uint32_t> seen;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t h = t.add(i);
    handleOf[i] = h;
    CHECK_MESSAGE(seen.insert(h).second, "handle " << h << " given twice");
    t.at(h).setSeq(i);
  }
  CHECK(t.size() == n);
  CHECK(t.checkInvariants());
  bool ok = true;
  for (uint32_t i = 0; i < n && ok; ++i) ok = t.find(i) == handleOf[i] && t.at(handleOf[i]).seq() == i;
  CHECK_MESSAGE(ok, "an id is not found at its handle after growth");
  // Free the even ids.
  for (uint32_t i = 0; i < n; i += 2) t.free(handleOf[i]);
  CHECK(t.size() == n / 2);
  CHECK(t.checkInvariants());
  ok = true;
  for (uint32_t i = 0; i < n && ok; ++i) ok = (i % 2 == 0) ? t.find(i) == kNoHandle : t.find(i) == handleOf[i];
  CHECK_MESSAGE(ok, "find after freeing half");
  // Re-adding recycles the freed handles: nothing beyond the first n handles is used.
  for (uint32_t i = n; i < n + n / 2; ++i) {
    uint32_t h = t.add(i);
    if (h >= n) {
      FAIL_CHECK("re-add used a new handle " << h << " while " << n / 2 << " were free");
      break;
    }
  }
  CHECK(t.size() == n);
  CHECK(t.checkInvariants());
}

TEST_CASE("MessageTable: clustered ids (equal low bits; strides; near 2^53 - 1)") {
  MessageTable t;
  std::vector<double> ids;
  for (uint64_t k = 0; k < 1500; ++k) ids.push_back(static_cast<double>(k << 32));
  for (uint64_t k = 0; k < 1500; ++k) ids.push_back(static_cast<double>((k << 20) | 1));
  for (uint64_t k = 0; k < 1500; ++k) ids.push_back(kMaxSafe - static_cast<double>(k));
  for (uint64_t k = 0; k < 1500; ++k) ids.push_back(static_cast<double>(1024 * k + 3));
  std::unordered_map<double, uint32_t> model;
  for (double id : ids) {
    if (model.count(id)) continue;
    model[id] = t.add(id);
  }
  CHECK(t.size() == model.size());
  CHECK(t.checkInvariants());
  size_t wrong = 0;
  for (const auto& kv : model) wrong += t.find(kv.first) != kv.second;
  CHECK(wrong == 0u);
  // Neighbours of present ids are absent (the index compares whole ids, not hashes).
  CHECK(t.find(kMaxSafe - 1500) == kNoHandle);
  CHECK(t.find(static_cast<double>(1ull << 32) + 1) == kNoHandle);
  CHECK(t.find(2) == kNoHandle);
  // Free every other one and check the rest.
  size_t i = 0;
  for (auto it = model.begin(); it != model.end();) {
    if (i++ % 2 == 0) {
      t.free(it->second);
      it = model.erase(it);
    } else {
      ++it;
    }
  }
  CHECK(t.checkInvariants());
  wrong = 0;
  for (const auto& kv : model) wrong += t.find(kv.first) != kv.second;
  CHECK(wrong == 0u);
  for (double id : ids)
    if (!model.count(id)) wrong += t.find(id) != kNoHandle;
  CHECK(wrong == 0u);
}

// Fills a table with `live` ids, then replaces a random one `steps` times, checking the table
// against the model (and its invariants) after every step. Returns the most far slots (7 or more
// from home) seen at once. Churn at a steady size must not grow anything.
size_t churnAtSteadyLoad(uint64_t seed, size_t liveCount, int steps) {
  MessageTable t;
  Rng rng(seed);
  Model m;
  std::vector<double> live;
  uint64_t counter = 0;
  auto addNew = [&]() {
    double id;
    do id = pickId(rng, counter);
    while (m.byId.count(id));
    uint32_t h = t.add(id);
    t.at(h).nextAttempt = id * 0.5;
    t.at(h).domain = h * 7u;
    m.byId[id] = h;
    return id;
  };
  while (live.size() < liveCount) live.push_back(addNew());
  size_t before = 0;
  size_t mostFar = t.farSlots();
  for (int step = 0; step < steps; ++step) {
    if (step == 100) before = t.bytesReserved();  // after the free list has warmed up
    size_t i = rng.below(live.size());
    t.free(m.byId[live[i]]);
    m.byId.erase(live[i]);
    live[i] = addNew();
    if (t.farSlots() > mostFar) mostFar = t.farSlots();
    std::string diff = diffAll(t, m);
    if (!diff.empty() || !t.checkInvariants()) {
      FAIL_CHECK("churn step " << step << ": " << (diff.empty() ? "checkInvariants() false" : diff));
      break;
    }
  }
  CHECK(t.bytesReserved() == before);
  // An unknown id probes through whatever chains are there to an empty slot.
  CHECK(t.find(kMaxSafe - 1e6) == kNoHandle);
  return mostFar;
}

TEST_CASE("MessageTable: churn at half load keeps every probe chain (backward-shift deletion)") {
  // The index starts at 1024 slots: 511 live ids, probe chains that wrap around the slot array.
  churnAtSteadyLoad(4242, 511, 4000);
}

TEST_CASE("MessageTable: far slots (7 or more from home) at 3/4 load: found, shifted back, counted") {
  // 767 live ids in 1024 slots, the fullest the index gets before it grows: some slots lie 7 or
  // more from their home, where the slot keeps no exact distance and a probe or a backward shift
  // reads the record. They must really occur.
  size_t mostFar = churnAtSteadyLoad(777, 767, 3000);
  CHECK_MESSAGE(mostFar > 0, "no slot ever lay 7 or more from its home");
}

TEST_CASE("MessageTable: seeded random add/find/free against std::unordered_map") {
  for (uint64_t seed = 1; seed <= 4; ++seed) randomWalk(seed, 6000, 3000);
  randomWalk(99, 20000, 400);
}

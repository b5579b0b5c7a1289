// Core: the message lifecycle against a naive model (std::map and sorting), the default maintain
// and maintainAll against limits counted in the test, grants/expiry draining, and refusal of bad
// arguments without any change of state.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "connection_goal.hpp"
#include "core.hpp"
#include "test_support.hpp"

using namespace mqc;
using namespace test_support;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();
constexpr double kTwo53 = 9007199254740992.0;

std::vector<double> peekAllActive(const Core& c, uint32_t d, uint32_t b) {
  std::vector<double> out(c.activeSize(d, b) + 4);
  out.resize(c.peekActive(d, b, 0, out.data(), out.size()));
  return out;
}

std::vector<double> peekAllDelayed(const Core& c, uint32_t d) {
  std::vector<double> out(c.delayedSize(d) + 4);
  out.resize(c.peekDelayed(d, 0, out.data(), out.size()));
  return out;
}

// ---------------------------------------------------------------------------------------------
// The model: every message with its place, ordered by sorting when asked.

struct MMsg {
  uint32_t d, b;
  uint8_t prio;
  double next, exp;
  uint64_t seq;
  Place place;
  uint16_t attempts;
};

bool safeId(double id) { return id >= 0 && id < kTwo53 && std::floor(id) == id; }
bool timeOk(double t) { return std::isfinite(t) && std::fabs(t) <= mqc::kMaxTime; }

struct Model {
  uint32_t D, B;
  std::map<double, MMsg> msgs;
  uint64_t seq = 1;
  std::multiset<double> expiredPending;
  uint64_t expiredTotal = 0;

  void expire(double id) {
    msgs.erase(id);
    expiredPending.insert(id);
    ++expiredTotal;
  }
  // Served order of one active queue: urgent first, then next-attempt, then arrival.
  std::vector<double> activeOrder(uint32_t d, uint32_t b) const {
    std::vector<std::pair<std::tuple<int, double, uint64_t>, double>> v;
    for (const auto& kv : msgs)
      if (kv.second.place == Place::Active && kv.second.d == d && kv.second.b == b)
        v.push_back({{-kv.second.prio, kv.second.next, kv.second.seq}, kv.first});
    std::sort(v.begin(), v.end());
    std::vector<double> ids;
    for (const auto& e : v) ids.push_back(e.second);
    return ids;
  }
  std::vector<double> delayedOrder(uint32_t d) const {
    std::vector<std::pair<std::pair<double, uint64_t>, double>> v;
    for (const auto& kv : msgs)
      if (kv.second.place == Place::Delayed && kv.second.d == d)
        v.push_back({{kv.second.next, kv.second.seq}, kv.first});
    std::sort(v.begin(), v.end());
    std::vector<double> ids;
    for (const auto& e : v) ids.push_back(e.second);
    return ids;
  }
  // Every queue's order in one pass: active[d * B + b] and delayed[d].
  void allOrders(std::vector<std::vector<double>>* active, std::vector<std::vector<double>>* delayed) const {
    std::vector<std::vector<std::pair<std::tuple<int, double, uint64_t>, double>>> a(D * B), dl(D);
    for (const auto& kv : msgs) {
      const MMsg& mm = kv.second;
      if (mm.place == Place::Active)
        a[mm.d * B + mm.b].push_back({{-mm.prio, mm.next, mm.seq}, kv.first});
      else if (mm.place == Place::Delayed)
        dl[mm.d].push_back({{0, mm.next, mm.seq}, kv.first});
    }
    active->assign(D * B, {});
    delayed->assign(D, {});
    for (size_t i = 0; i < a.size(); ++i) {
      std::sort(a[i].begin(), a[i].end());
      for (const auto& e : a[i]) (*active)[i].push_back(e.second);
    }
    for (size_t i = 0; i < dl.size(); ++i) {
      std::sort(dl[i].begin(), dl[i].end());
      for (const auto& e : dl[i]) (*delayed)[i].push_back(e.second);
    }
  }
  size_t count(Place p) const {
    size_t n = 0;
    for (const auto& kv : msgs) n += kv.second.place == p;
    return n;
  }

  Status enqueueBatch(uint32_t d, uint32_t b, const std::vector<double>& ids, const std::vector<uint8_t>* prios,
                      double next, double exp, double now, size_t* failedAt) {
    *failedAt = 0;
    if (d >= D) return Status::BadDomain;
    if (b >= B) return Status::BadBinding;
    if (!timeOk(next) || std::isnan(exp) || exp == -kInf || !timeOk(now)) return Status::BadArgument;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!safeId(ids[i]) || (prios && (*prios)[i] >= 2)) {
        *failedAt = i;
        return Status::BadArgument;
      }
    }
    std::set<double> inBatch;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (msgs.count(ids[i]) || !inBatch.insert(ids[i]).second) {
        *failedAt = i;
        return Status::DuplicateId;
      }
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      msgs[ids[i]] = MMsg{
          d, b, prios ? (*prios)[i] : uint8_t{0}, next, exp, seq++, next > now ? Place::Delayed : Place::Active, 0};
      if (next >= exp) expire(ids[i]);  // its first attempt could only come after its expiry
    }
    return Status::Ok;
  }
  std::vector<double> take(uint32_t d, uint32_t b, size_t k, double now) {
    std::vector<double> got;
    for (double id : activeOrder(d, b)) {
      if (got.size() >= k) break;
      MMsg& m = msgs[id];
      if (m.exp <= now) {
        expire(id);
        continue;
      }
      m.place = Place::InFlight;
      if (m.attempts < 0xffff) ++m.attempts;
      got.push_back(id);
    }
    return got;
  }
  Status lookup(double id, MMsg** out) {
    if (!safeId(id)) return Status::BadArgument;
    auto it = msgs.find(id);
    if (it == msgs.end()) return Status::UnknownId;
    *out = &it->second;
    return Status::Ok;
  }
  Status cancel(double id) {
    MMsg* m;
    Status s = lookup(id, &m);
    if (s != Status::Ok) return s;
    if (m->place == Place::InFlight) return Status::InFlight;
    msgs.erase(id);
    return Status::Ok;
  }
  Status settle(double id) {
    MMsg* m;
    Status s = lookup(id, &m);
    if (s != Status::Ok) return s;
    if (m->place != Place::InFlight) return Status::NotInFlight;
    msgs.erase(id);
    return Status::Ok;
  }
  Status defer(double id, double next, double now) {
    if (!safeId(id) || !timeOk(next) || !timeOk(now)) return Status::BadArgument;
    MMsg* m;
    Status s = lookup(id, &m);
    if (s != Status::Ok) return s;
    if (m->place != Place::InFlight) return Status::NotInFlight;
    if (next >= m->exp) {  // the retry would come after the message expired
      expire(id);
      return Status::Ok;
    }
    m->next = next;
    m->seq = seq++;
    m->place = next > now ? Place::Delayed : Place::Active;
    return Status::Ok;
  }
  Status untake(double id) {
    MMsg* m;
    Status s = lookup(id, &m);
    if (s != Status::Ok) return s;
    if (m->place != Place::InFlight) return Status::NotInFlight;
    m->place = Place::Active;  // same key: back where it was taken from
    if (m->attempts > 0) --m->attempts;
    return Status::Ok;
  }
  Status removeActive(uint32_t d, uint32_t b, double id) {
    MMsg* m;
    Status s = lookup(id, &m);
    if (s != Status::Ok) return s;
    if (m->place != Place::Active || m->d != d || m->b != b) return Status::UnknownId;
    msgs.erase(id);
    return Status::Ok;
  }
  size_t promoteDue(uint32_t d, double now) {
    size_t moved = 0;
    for (double id : delayedOrder(d)) {
      MMsg& m = msgs[id];
      if (m.next > now) break;
      if (m.exp <= now) {
        expire(id);
        continue;
      }
      m.place = Place::Active;
      ++moved;
    }
    return moved;
  }
  size_t expireActive(uint32_t d, double now) {
    std::vector<double> gone;
    for (const auto& kv : msgs)
      if (kv.second.place == Place::Active && kv.second.d == d && kv.second.exp <= now) gone.push_back(kv.first);
    for (double id : gone) expire(id);
    return gone.size();
  }
  bool isDue(uint32_t d, double now) const {
    for (const auto& kv : msgs)
      if (kv.second.d == d &&
          (kv.second.place == Place::Active || (kv.second.place == Place::Delayed && kv.second.next <= now)))
        return true;
    return false;
  }
};

// Empty when the core's queues, sizes and counters are those of the model.
std::string compareState(const Core& c, const Model& m, double now) {
  std::ostringstream os;
  os.precision(17);
  if (!c.checkInvariants()) return "checkInvariants() is false";
  const double* k = c.counters();
  size_t active = m.count(Place::Active), delayed = m.count(Place::Delayed), inFlight = m.count(Place::InFlight);
  if (k[kActive] != static_cast<double>(active)) os << "counter active " << k[kActive] << " vs " << active << "; ";
  if (k[kDelayed] != static_cast<double>(delayed)) os << "counter delayed " << k[kDelayed] << " vs " << delayed << "; ";
  if (k[kInFlight] != static_cast<double>(inFlight))
    os << "counter inFlight " << k[kInFlight] << " vs " << inFlight << "; ";
  if (k[kExpired] != static_cast<double>(m.expiredTotal))
    os << "counter expired " << k[kExpired] << " vs " << m.expiredTotal << "; ";
  if (k[kDomains] != static_cast<double>(m.D)) os << "counter domains " << k[kDomains] << "; ";
  if (c.pendingExpired() != m.expiredPending.size())
    os << "pendingExpired " << c.pendingExpired() << " vs " << m.expiredPending.size() << "; ";
  if (c.counterCount() != kFixedCounters + 2 * static_cast<size_t>(m.B))
    os << "counterCount " << c.counterCount() << "; ";
  std::vector<std::vector<double>> activeOrders, delayedOrders;
  m.allOrders(&activeOrders, &delayedOrders);
  for (uint32_t d = 0; d < m.D; ++d) {
    size_t domActive = 0;
    for (uint32_t b = 0; b < m.B; ++b) {
      const std::vector<double>& want = activeOrders[d * m.B + b];
      std::vector<double> have = peekAllActive(c, d, b);
      if (have != want) os << "active(" << d << "," << b << ") " << fmt(have) << " vs model " << fmt(want) << "; ";
      if (c.activeSize(d, b) != want.size()) os << "activeSize(" << d << "," << b << ") " << c.activeSize(d, b) << "; ";
      domActive += want.size();
    }
    if (c.activeTotal(d) != domActive)
      os << "activeTotal(" << d << ") " << c.activeTotal(d) << " vs " << domActive << "; ";
    const std::vector<double>& want = delayedOrders[d];
    std::vector<double> have = peekAllDelayed(c, d);
    if (have != want) os << "delayed(" << d << ") " << fmt(have) << " vs model " << fmt(want) << "; ";
    if (c.delayedSize(d) != want.size()) os << "delayedSize(" << d << ") " << c.delayedSize(d) << "; ";
    if (c.isDue(d, now) != m.isDue(d, now)) os << "isDue(" << d << ") " << c.isDue(d, now) << "; ";
  }
  std::vector<uint32_t> due(m.D + 1), wantDue;
  due.resize(c.dueDomains(now, due.data(), due.size()));
  for (uint32_t d = 0; d < m.D; ++d)
    if (m.isDue(d, now)) wantDue.push_back(d);
  if (due != wantDue) os << "dueDomains: " << due.size() << " domains, model " << wantDue.size() << "; ";
  if (!wantDue.empty() && c.dueDomains(now, due.data(), 1) != 1) os << "dueDomains(max 1) did not return 1; ";
  for (uint32_t b = 0; b < m.B; ++b) {
    size_t n = 0;
    for (const auto& kv : m.msgs) n += kv.second.place == Place::Active && kv.second.b == b;
    if (k[kFixedCounters + m.B + b] != static_cast<double>(n))
      os << "active counter of binding " << b << " " << k[kFixedCounters + m.B + b] << " vs " << n << "; ";
  }
  return os.str();
}

std::string compareLocate(const Core& c, const Model& m, double id) {
  std::ostringstream os;
  os.precision(17);
  MessageInfo info{};
  Status s = c.locate(id, &info);
  auto it = m.msgs.find(id);
  if (it == m.msgs.end()) {
    if (s != Status::UnknownId) os << "locate(" << id << ") " << statusName(s) << ", model: gone";
    return os.str();
  }
  const MMsg& mm = it->second;
  if (s != Status::Ok) {
    os << "locate(" << id << ") " << statusName(s);
  } else if (info.id != id || info.domain != mm.d || info.binding != mm.b || info.place != mm.place ||
             info.priority != mm.prio || info.attempts != mm.attempts || info.nextAttempt != mm.next ||
             !(info.expiresAt == mm.exp)) {
    os << "locate(" << id << "): domain " << info.domain << "/" << mm.d << " binding " << info.binding << "/" << mm.b
       << " place " << int(info.place) << "/" << int(mm.place) << " prio " << int(info.priority) << "/" << int(mm.prio)
       << " attempts " << info.attempts << "/" << mm.attempts << " next " << info.nextAttempt << "/" << mm.next
       << " expires " << info.expiresAt << "/" << mm.exp;
  }
  return os.str();
}

// A fresh id: sequential mostly, sometimes anywhere up to 2^53 - 1.
double freshId(Rng& rng, uint64_t& counter, const Model& m) {
  for (;;) {
    double id = rng.chance(0.8) ? static_cast<double>(counter++) : kMaxId - static_cast<double>(rng.below(1ull << 40));
    if (!m.msgs.count(id)) return id;
  }
}

double pickPlaced(Rng& rng, const Model& m, int placeFilter) {  // -1: any place
  std::vector<double> ids;
  for (const auto& kv : m.msgs)
    if (placeFilter < 0 || static_cast<int>(kv.second.place) == placeFilter) ids.push_back(kv.first);
  if (ids.empty()) return -1;
  return ids[rng.below(ids.size())];
}

void lifecycleWalk(uint64_t seed, int steps) {
  Rng rng(seed);
  const uint32_t D = 3, B = 3;
  Core c(plainConfig(B));
  for (uint32_t d = 0; d < D; ++d) {
    uint32_t idx;
    ENSURE(c.addDomain(plainDomain(B), &idx) == Status::Ok);
    ENSURE(idx == d);
  }
  Model m;
  m.D = D;
  m.B = B;
  uint64_t counter = 1 + rng.below(1000);
  std::vector<double> retired;  // ids that left the core: absent now, and free to come back
  double now = 1e12 + static_cast<double>(rng.below(1000000));
  std::vector<double> out(256);
  auto someDomain = [&]() {
    return rng.chance(0.03) ? D + static_cast<uint32_t>(rng.below(3)) : static_cast<uint32_t>(rng.below(D));
  };
  auto someBinding = [&]() {
    return rng.chance(0.03) ? B + static_cast<uint32_t>(rng.below(3)) : static_cast<uint32_t>(rng.below(B));
  };
  auto someNext = [&]() { return now + static_cast<double>(rng.range(-100, 300)); };
  auto someExpiry = [&]() { return rng.chance(0.4) ? kNever : now + static_cast<double>(rng.range(-20, 800)); };
  auto retire = [&](double id) {
    if (retired.size() < 2000) retired.push_back(id);
  };
  auto absentId = [&]() -> double {
    if (!retired.empty() && rng.chance(0.6)) {
      double id = retired[rng.below(retired.size())];
      if (!m.msgs.count(id)) return id;
    }
    return static_cast<double>(counter + 1000000 + rng.below(1000));
  };

  for (int step = 0; step < steps; ++step) {
    INFO("seed " << seed << " step " << step << " now " << now);
    uint64_t r = rng.below(100);
    if (rng.chance(0.3)) now += static_cast<double>(rng.below(60));
    if (rng.chance(0.02)) now -= static_cast<double>(rng.below(100));  // the core takes `now` as given
    if (m.msgs.size() > 300 && r < 28) {
      // Keep the population small enough to compare everything at every step: settle or cancel
      // a handful.
      for (int i = 0; i < 12 && !m.msgs.empty(); ++i) {
        double id = pickPlaced(rng, m, -1);
        bool inFlight = m.msgs[id].place == Place::InFlight;
        Status want = inFlight ? m.settle(id) : m.cancel(id);
        ENSURE_STATUS(inFlight ? c.settle(id) : c.cancel(id), want);
        retire(id);
      }
    } else if (r < 18) {
      // enqueue one: fresh, a duplicate of a live id, or an id that left and comes back
      uint32_t d = someDomain(), b = someBinding();
      double id = rng.chance(0.12) && !m.msgs.empty()   ? pickPlaced(rng, m, -1)
                  : rng.chance(0.1) && !retired.empty() ? retired[rng.below(retired.size())]
                                                        : freshId(rng, counter, m);
      uint8_t prio = static_cast<uint8_t>(rng.below(2));
      double next = someNext(), exp = someExpiry();
      size_t failedAt;
      Status want = m.enqueueBatch(d, b, {id}, nullptr, next, exp, now, &failedAt);
      auto placed = m.msgs.find(id);  // absent when it bounced at once (next attempt after expiry)
      if (want == Status::Ok && placed != m.msgs.end()) placed->second.prio = prio;
      INFO("enqueue d " << d << " b " << b << " id " << id);
      ENSURE_STATUS(c.enqueue(d, b, id, prio, next, exp, now), want);
    } else if (r < 28) {
      // enqueueBatch: all or nothing, a duplicate (with the core or inside the batch) or a bad
      // entry refuses the whole batch.
      uint32_t d = someDomain(), b = someBinding();
      size_t n = static_cast<size_t>(rng.below(40));
      std::vector<double> ids;
      std::vector<uint8_t> prios;
      for (size_t i = 0; i < n; ++i) {
        double id;
        do id = freshId(rng, counter, m);
        while (std::find(ids.begin(), ids.end(), id) != ids.end());
        ids.push_back(id);
        prios.push_back(static_cast<uint8_t>(rng.below(2)));
      }
      uint64_t flaw = rng.below(10);
      if (n > 0 && flaw == 0 && !m.msgs.empty()) {
        ids[rng.below(n)] = pickPlaced(rng, m, -1);  // already in the core
      } else if (n > 1 && flaw == 1) {
        size_t i = rng.below(n - 1) + 1;
        ids[i] = ids[rng.below(i)];  // twice in the batch
      } else if (n > 0 && flaw == 2) {
        const double bad[] = {kNaN, -1, 0.5, kTwo53, kInf};
        ids[rng.below(n)] = bad[rng.below(5)];
      } else if (n > 0 && flaw == 3) {
        prios[rng.below(n)] = static_cast<uint8_t>(2 + rng.below(254));
      }
      bool withPrios = rng.chance(0.7) || flaw == 3;
      double next = someNext(), exp = someExpiry();
      size_t wantAt = 0, gotAt = 999;
      Status want = m.enqueueBatch(d, b, ids, withPrios ? &prios : nullptr, next, exp, now, &wantAt);
      Status got = c.enqueueBatch(d, b, ids.data(), withPrios ? prios.data() : nullptr, n, next, exp, now, &gotAt);
      INFO("enqueueBatch d " << d << " b " << b << " n " << n << " flaw " << flaw << " ids " << fmt(ids));
      ENSURE_MSG(got == want, "status " << got << ", model " << want);
      if (want != Status::Ok && want != Status::BadDomain && want != Status::BadBinding)
        ENSURE_MSG(gotAt == wantAt, "failedAt " << gotAt << ", model " << wantAt);
    } else if (r < 34) {
      double id = rng.chance(0.8) ? pickPlaced(rng, m, -1) : absentId();
      if (id < 0) continue;
      Status want = m.cancel(id);
      ENSURE_STATUS(c.cancel(id), want);
      if (want == Status::Ok) retire(id);
    } else if (r < 46) {
      uint32_t d = static_cast<uint32_t>(rng.below(D)), b = static_cast<uint32_t>(rng.below(B));
      size_t k = static_cast<size_t>(rng.below(20));
      std::vector<double> want = m.take(d, b, k, now);
      size_t got = c.take(d, b, k, now, out.data());
      std::vector<double> have(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(got));
      ENSURE_MSG(have == want, "take(" << d << "," << b << "," << k << ") " << fmt(have) << " vs model " << fmt(want));
    } else if (r < 56) {
      double id = rng.chance(0.85) ? pickPlaced(rng, m, static_cast<int>(Place::InFlight)) : pickPlaced(rng, m, -1);
      if (id < 0) id = absentId();
      Status want = m.settle(id);
      ENSURE_STATUS(c.settle(id), want);
      if (want == Status::Ok) retire(id);
    } else if (r < 64) {
      double id = rng.chance(0.85) ? pickPlaced(rng, m, static_cast<int>(Place::InFlight)) : pickPlaced(rng, m, -1);
      if (id < 0) id = absentId();
      double next = now + static_cast<double>(rng.range(-50, 400));
      Status want = m.defer(id, next, now);
      ENSURE_STATUS(c.defer(id, next, now), want);
    } else if (r < 70) {
      double id = rng.chance(0.85) ? pickPlaced(rng, m, static_cast<int>(Place::InFlight)) : pickPlaced(rng, m, -1);
      if (id < 0) id = absentId();
      Status want = m.untake(id);
      ENSURE_STATUS(c.untake(id), want);
    } else if (r < 76) {
      uint32_t d = static_cast<uint32_t>(rng.below(D));
      size_t want = m.promoteDue(d, now);
      ENSURE_MSG(c.promoteDue(d, now) == want, "promoteDue(" << d << ")");
    } else if (r < 80) {
      uint32_t d = static_cast<uint32_t>(rng.below(D));
      size_t want = m.expireActive(d, now);
      ENSURE_MSG(c.expireActive(d, now) == want, "expireActive(" << d << ")");
    } else if (r < 86) {
      uint32_t d = static_cast<uint32_t>(rng.below(D)), b = static_cast<uint32_t>(rng.below(B));
      std::vector<double> all = m.activeOrder(d, b);
      size_t offset = static_cast<size_t>(rng.below(all.size() + 5)), k = static_cast<size_t>(rng.below(100));
      std::vector<double> want;
      for (size_t i = offset; i < all.size() && want.size() < k; ++i) want.push_back(all[i]);
      size_t got = c.peekActive(d, b, offset, out.data(), k);
      std::vector<double> have(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(got));
      ENSURE_MSG(have == want, "peekActive(" << d << "," << b << "," << offset << "," << k << ")");
      if (!all.empty() || rng.chance(0.5)) {
        std::vector<double> dall = m.delayedOrder(d);
        offset = static_cast<size_t>(rng.below(dall.size() + 3));
        want.clear();
        for (size_t i = offset; i < dall.size() && want.size() < k; ++i) want.push_back(dall[i]);
        got = c.peekDelayed(d, offset, out.data(), k);
        have.assign(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(got));
        ENSURE_MSG(have == want, "peekDelayed(" << d << "," << offset << "," << k << ")");
      }
    } else if (r < 91) {
      // removeActive: an id of this queue, or one that is elsewhere (another queue, delayed, in
      // flight) or gone.
      uint32_t d = static_cast<uint32_t>(rng.below(D)), b = static_cast<uint32_t>(rng.below(B));
      std::vector<double> q = m.activeOrder(d, b);
      double id = !q.empty() && rng.chance(0.7) ? q[rng.below(q.size())]
                  : rng.chance(0.7)             ? pickPlaced(rng, m, -1)
                                                : absentId();
      if (id < 0) continue;
      Status want = m.removeActive(d, b, id);
      ENSURE_STATUS(c.removeActive(d, b, id), want);
      if (want == Status::Ok) retire(id);
    } else if (r < 95) {
      // drainExpired in small pieces: each id expired once, none made up.
      size_t max = static_cast<size_t>(rng.below(6));
      size_t got = c.drainExpired(out.data(), max);
      ENSURE(got == std::min(max, m.expiredPending.size()));
      for (size_t i = 0; i < got; ++i) {
        auto it = m.expiredPending.find(out[i]);
        ENSURE_MSG(it != m.expiredPending.end(), "drained " << out[i] << " which did not expire (or twice)");
        m.expiredPending.erase(it);
        retire(out[i]);
      }
    } else {
      // locate a few ids
      for (int i = 0; i < 4; ++i) {
        double id = rng.chance(0.8) ? pickPlaced(rng, m, -1) : absentId();
        if (id < 0) break;
        std::string diff = compareLocate(c, m, id);
        ENSURE_MSG(diff.empty(), diff);
      }
    }
    std::string diff = compareState(c, m, now);
    ENSURE_MSG(diff.empty(), diff);
    if (step % 50 == 0) {
      for (const auto& kv : m.msgs) {
        std::string ld = compareLocate(c, m, kv.first);
        ENSURE_MSG(ld.empty(), ld);
      }
    }
  }
  // Drain what expired: the ids are exactly the model's.
  std::vector<double> rest(m.expiredPending.size() + 3);
  size_t got = c.drainExpired(rest.data(), rest.size());
  rest.resize(got);
  std::sort(rest.begin(), rest.end());
  std::vector<double> want(m.expiredPending.begin(), m.expiredPending.end());
  ENSURE_MSG(rest == want, "drained " << fmt(rest) << " vs " << fmt(want));
  ENSURE(c.pendingExpired() == 0u);
}

// ---------------------------------------------------------------------------------------------
// Connections: counts computed here from the grants drained, against every configured limit.

Setup randomSetup(Rng& rng) {
  Setup s;
  LedgerConfig& c = s.cfg;
  c.bindings = static_cast<uint32_t>(rng.range(1, 4));
  c.groups = static_cast<uint32_t>(rng.range(0, 2));
  c.groupOfBinding.resize(c.bindings);
  for (auto& g : c.groupOfBinding) g = c.groups == 0 ? kNoGroup : static_cast<int32_t>(rng.range(-1, c.groups - 1));
  c.serverMax = static_cast<uint32_t>(rng.range(0, 25));
  c.serverReserve = static_cast<uint32_t>(rng.range(0, 6));
  c.bindingMax.resize(c.bindings);
  for (auto& m : c.bindingMax) m = limitOrUnlimited(rng, 0.6, 0, 12);
  c.groupMax.resize(c.groups);
  for (auto& m : c.groupMax) m = limitOrUnlimited(rng, 0.6, 0, 12);
  int nt = static_cast<int>(rng.range(0, 2));
  for (int i = 0; i < nt; ++i)
    s.throttles.push_back({static_cast<uint32_t>(rng.range(1, 5)), rng.chance(0.5) ? 1000.0 : 300.0});
  int nd = static_cast<int>(rng.range(2, 6));
  const double aggr[] = {kAggressivenessNormal, kAggressivenessHigh, 1.0};
  for (int d = 0; d < nd; ++d) {
    DomainLimits dl;
    dl.scopeMax = limitOrUnlimited(rng, 0.6, 0, 15);
    dl.groupScopeMax.resize(c.groups);
    for (auto& m : dl.groupScopeMax) m = limitOrUnlimited(rng, 0.6, 0, 8);
    dl.pairs.resize(c.bindings);
    for (auto& p : dl.pairs) {
      p.maxConnections = rng.chance(0.05) ? 0 : static_cast<uint32_t>(rng.range(1, 12));
      p.aggressiveness = aggr[rng.below(3)];
      p.throttle =
          (nt > 0 && rng.chance(0.3)) ? static_cast<int32_t>(rng.below(static_cast<uint64_t>(nt))) : kNoThrottle;
      p.suspended = rng.chance(0.08);
    }
    s.domains.push_back(dl);
  }
  return s;
}

struct Conns {
  std::map<double, std::pair<uint32_t, uint32_t>> open;  // connection id -> (domain, binding)
  std::set<double> everIssued;
  std::vector<std::vector<double>> throttleGrants;
  uint64_t opened = 0, released = 0;
  uint32_t pair(uint32_t d, uint32_t b) const {
    uint32_t n = 0;
    for (const auto& kv : open) n += kv.second == std::make_pair(d, b);
    return n;
  }
};

// Empty when no count (computed from the drained grants) is above its limit and the core's
// counts and counters agree with them.
std::string checkLimits(const Core& c, const Setup& s, const Conns& k) {
  std::ostringstream os;
  const uint32_t nd = static_cast<uint32_t>(s.domains.size()), nb = s.cfg.bindings, ng = s.cfg.groups;
  std::vector<uint32_t> pair(nd * nb, 0), dom(nd, 0), gdom(nd * (ng + 1), 0), bind(nb, 0), grp(ng + 1, 0);
  uint32_t total = 0;
  for (const auto& kv : k.open) {
    uint32_t d = kv.second.first, b = kv.second.second;
    int32_t g = s.cfg.groupOfBinding[b];
    ++pair[d * nb + b];
    ++dom[d];
    ++bind[b];
    ++total;
    if (g != kNoGroup) {
      ++gdom[d * (ng + 1) + static_cast<uint32_t>(g)];
      ++grp[static_cast<uint32_t>(g)];
    }
  }
  const ConnectionLedger& l = c.ledger();
  for (uint32_t d = 0; d < nd; ++d) {
    const DomainLimits& dl = s.domains[d];
    for (uint32_t b = 0; b < nb; ++b) {
      if (pair[d * nb + b] > dl.pairs[b].maxConnections)
        os << "pair (" << d << "," << b << ") has " << pair[d * nb + b] << " > max " << dl.pairs[b].maxConnections
           << "; ";
      if (l.pairCount(d, b) != pair[d * nb + b])
        os << "pairCount(" << d << "," << b << ") " << l.pairCount(d, b) << "; ";
    }
    if (dom[d] > dl.scopeMax) os << "domain " << d << " has " << dom[d] << " > scope max " << dl.scopeMax << "; ";
    if (l.domainCount(d) != dom[d]) os << "domainCount(" << d << ") " << l.domainCount(d) << "; ";
    for (uint32_t g = 0; g < ng; ++g)
      if (gdom[d * (ng + 1) + g] > dl.groupScopeMax[g])
        os << "group " << g << " in domain " << d << " has " << gdom[d * (ng + 1) + g] << " > " << dl.groupScopeMax[g]
           << "; ";
  }
  for (uint32_t b = 0; b < nb; ++b) {
    if (bind[b] > s.cfg.bindingMax[b])
      os << "binding " << b << " has " << bind[b] << " > " << s.cfg.bindingMax[b] << "; ";
    if (c.counters()[kFixedCounters + b] != static_cast<double>(bind[b]))
      os << "connection counter of binding " << b << " " << c.counters()[kFixedCounters + b] << " vs " << bind[b]
         << "; ";
  }
  for (uint32_t g = 0; g < ng; ++g)
    if (grp[g] > s.cfg.groupMax[g]) os << "group " << g << " has " << grp[g] << " > " << s.cfg.groupMax[g] << "; ";
  if (static_cast<uint64_t>(total) > static_cast<uint64_t>(s.cfg.serverMax) + s.cfg.serverReserve)
    os << "total " << total << " > server_max + server_reserve; ";
  if (c.counters()[kConnections] != static_cast<double>(total))
    os << "connections counter " << c.counters()[kConnections] << " vs " << total << "; ";
  if (c.counters()[kOpened] != static_cast<double>(k.opened))
    os << "opened counter " << c.counters()[kOpened] << " vs " << k.opened << "; ";
  if (c.counters()[kReleased] != static_cast<double>(k.released))
    os << "released counter " << c.counters()[kReleased] << " vs " << k.released << "; ";
  return os.str();
}

// Moves every pending grant into the test's bookkeeping; returns the grants in order.
std::vector<Grant> drainAll(Core& c, Rng& rng, Conns& k, const Setup& s, double now) {
  std::vector<Grant> got;
  double buf[3 * 8];
  for (;;) {
    size_t max = 1 + static_cast<size_t>(rng.below(8));
    size_t n = c.drainGrants(buf, max);
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i) {
      Grant g{buf[3 * i], static_cast<uint32_t>(buf[3 * i + 1]), static_cast<uint32_t>(buf[3 * i + 2])};
      got.push_back(g);
      k.open[g.connectionId] = {g.domain, g.binding};
      k.everIssued.insert(g.connectionId);
      ++k.opened;
      int32_t t = s.domains[g.domain].pairs[g.binding].throttle;
      if (t != kNoThrottle) k.throttleGrants[static_cast<size_t>(t)].push_back(now);
    }
  }
  return got;
}

void maintainWalk(uint64_t seed, int passes) {
  Rng rng(seed);
  Setup s = randomSetup(rng);
  Core c(s.cfg);
  for (const auto& t : s.throttles) c.ledger().addThrottle(t.first, t.second);
  for (const DomainLimits& dl : s.domains) {
    uint32_t idx;
    ENSURE(c.addDomain(dl, &idx) == Status::Ok);
  }
  const uint32_t nd = static_cast<uint32_t>(s.domains.size()), nb = s.cfg.bindings;
  Conns k;
  k.throttleGrants.resize(s.throttles.size());
  std::vector<std::vector<bool>> suspended(nd, std::vector<bool>(nb));
  for (uint32_t d = 0; d < nd; ++d)
    for (uint32_t b = 0; b < nb; ++b) suspended[d][b] = s.domains[d].pairs[b].suspended;
  double now = 5e11;
  uint64_t nextId = 1;
  auto enqueueSome = [&](uint32_t d, uint32_t b, size_t n) {
    std::vector<double> ids(n);
    for (auto& id : ids) id = static_cast<double>(nextId++);
    size_t at;
    double next = rng.chance(0.3) ? now + static_cast<double>(rng.below(2000)) : now;
    double exp = rng.chance(0.2) ? now + static_cast<double>(rng.range(100, 5000)) : kNever;
    return c.enqueueBatch(d, b, ids.data(), nullptr, n, next, exp, now, &at);
  };
  for (uint32_t d = 0; d < nd; ++d)
    for (uint32_t b = 0; b < nb; ++b)
      if (rng.chance(0.7)) ENSURE(enqueueSome(d, b, static_cast<size_t>(rng.below(80))) == Status::Ok);

  std::vector<double> out(64);
  for (int pass = 0; pass < passes; ++pass) {
    INFO("seed " << seed << " pass " << pass << " serverMax " << s.cfg.serverMax << " reserve " << s.cfg.serverReserve);
    now += static_cast<double>(rng.below(400));
    std::vector<uint32_t> before(nd * nb);
    for (uint32_t d = 0; d < nd; ++d)
      for (uint32_t b = 0; b < nb; ++b) before[d * nb + b] = k.pair(d, b);
    uint32_t totalBefore = static_cast<uint32_t>(k.open.size());
    uint32_t opened = c.maintainAll(now);
    std::vector<Grant> grants = drainAll(c, rng, k, s, now);
    ENSURE_MSG(opened == grants.size(), "maintainAll said " << opened << ", drained " << grants.size());
    ENSURE(c.pendingGrants() == 0u);
    ENSURE(c.checkInvariants());
    std::string diff = checkLimits(c, s, k);
    ENSURE_MSG(diff.empty(), diff);
    // Grants in the order they were made: ids are new, pairs have mail and are not suspended, and
    // a pair that already had a connection never takes the total past server_max (the reserve is
    // only for pairs without one).
    uint32_t running = totalBefore;
    std::set<double> seenThisPass;
    for (const Grant& g : grants) {
      ++running;
      ENSURE(g.domain < nd && g.binding < nb);
      ENSURE_MSG(seenThisPass.insert(g.connectionId).second, "connection id " << g.connectionId << " granted twice");
      ENSURE_MSG(!suspended[g.domain][g.binding], "grant for suspended pair (" << g.domain << "," << g.binding << ")");
      ENSURE_MSG(c.activeSize(g.domain, g.binding) > 0,
                 "grant for an empty queue (" << g.domain << "," << g.binding << ")");
      if (before[g.domain * nb + g.binding] > 0)
        ENSURE_MSG(running <= s.cfg.serverMax,
                   "a pair with connections took the total to " << running << " > server_max");
    }
    // Nothing was left unopened that a limit allowed: each pair with mail reached its goal or
    // has no headroom left.
    for (uint32_t d = 0; d < nd; ++d) {
      for (uint32_t b = 0; b < nb; ++b) {
        size_t q = c.activeSize(d, b);
        if (q == 0 || suspended[d][b]) continue;
        uint32_t goal = connectionGoal(s.domains[d].pairs[b].maxConnections, q, s.domains[d].pairs[b].aggressiveness);
        uint32_t reserve = k.pair(d, b) == 0 ? 0 : s.cfg.serverReserve;
        ENSURE_MSG(c.reserveFor(d, b) == reserve, "reserveFor(" << d << "," << b << ")");
        ENSURE_MSG(k.pair(d, b) >= goal || c.ledger().headroom(d, b, reserve, now) == 0,
                   "pair (" << d << "," << b << ") has " << k.pair(d, b) << " of goal " << goal << " with headroom "
                            << c.ledger().headroom(d, b, reserve, now));
      }
    }
    // Traffic between passes: connections close, messages are taken and settled or retried,
    // new mail arrives, pairs are suspended and resumed.
    std::vector<double> ids;
    for (const auto& kv : k.open) ids.push_back(kv.first);
    for (double id : ids) {
      if (!rng.chance(0.35)) continue;
      ENSURE_STATUS(c.releaseConnection(id), Status::Ok);
      k.open.erase(id);
      ++k.released;
    }
    ENSURE_STATUS(c.releaseConnection(1e15 + static_cast<double>(pass)), Status::UnknownConnection);
    for (int i = 0; i < 4; ++i) {
      uint32_t d = static_cast<uint32_t>(rng.below(nd)), b = static_cast<uint32_t>(rng.below(nb));
      size_t got = c.take(d, b, static_cast<size_t>(rng.below(30)), now, out.data());
      for (size_t j = 0; j < got; ++j) {
        if (rng.chance(0.8))
          ENSURE_STATUS(c.settle(out[j]), Status::Ok);
        else if (rng.chance(0.5))
          ENSURE_STATUS(c.defer(out[j], now + static_cast<double>(rng.below(3000)), now), Status::Ok);
        else
          ENSURE_STATUS(c.untake(out[j]), Status::Ok);
      }
    }
    if (rng.chance(0.3)) {
      uint32_t d = static_cast<uint32_t>(rng.below(nd)), b = static_cast<uint32_t>(rng.below(nb));
      ENSURE(enqueueSome(d, b, static_cast<size_t>(rng.below(60))) == Status::Ok);
    }
    if (rng.chance(0.1)) {
      uint32_t d = static_cast<uint32_t>(rng.below(nd)), b = static_cast<uint32_t>(rng.below(nb));
      suspended[d][b] = !suspended[d][b];
      c.ledger().setSuspended(d, b, suspended[d][b]);
    }
    ENSURE(c.checkInvariants());
    diff = checkLimits(c, s, k);
    ENSURE_MSG(diff.empty(), diff);
  }
  for (size_t t = 0; t < s.throttles.size(); ++t) {
    size_t worst = maxInAnyWindow(k.throttleGrants[t], s.throttles[t].second);
    CHECK_MESSAGE(worst <= s.throttles[t].first, "throttle " << t << " granted " << worst << " in one window");
  }
  for (const auto& kv : k.open) ENSURE_STATUS(c.releaseConnection(kv.first), Status::Ok);
  ENSURE(c.ledger().total() == 0u);
  ENSURE(c.counters()[kConnections] == 0.0);
  ENSURE(c.checkInvariants());
}

// Everything observable about a core, for "a refused call changes nothing".
struct Snapshot {
  std::vector<double> counters;
  std::vector<std::vector<double>> queues;
  std::vector<std::string> located;
  size_t grants, expired, domains;
  uint64_t opened, released;
  bool operator==(const Snapshot& o) const {
    return counters == o.counters && queues == o.queues && located == o.located && grants == o.grants &&
           expired == o.expired && domains == o.domains && opened == o.opened && released == o.released;
  }
};

Snapshot snapshot(const Core& c, const std::vector<double>& ids) {
  Snapshot s;
  s.counters.assign(c.counters(), c.counters() + c.counterCount());
  for (uint32_t d = 0; d < c.domains(); ++d) {
    for (uint32_t b = 0; b < c.bindings(); ++b) s.queues.push_back(peekAllActive(c, d, b));
    s.queues.push_back(peekAllDelayed(c, d));
  }
  for (double id : ids) {
    MessageInfo info{};
    std::ostringstream os;
    os.precision(17);
    Status st = c.locate(id, &info);
    os << statusName(st);
    if (st == Status::Ok)
      os << " " << info.domain << " " << info.binding << " " << int(info.place) << " " << int(info.priority) << " "
         << info.attempts << " " << info.nextAttempt << " " << info.expiresAt;
    s.located.push_back(os.str());
  }
  s.grants = c.pendingGrants();
  s.expired = c.pendingExpired();
  s.domains = c.domains();
  s.opened = c.ledger().openedEver();
  s.released = c.ledger().releasedEver();
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("Core: randomized message lifecycle matches a naive model") {
  for (uint64_t seed = 1; seed <= 6; ++seed) lifecycleWalk(seed, 2500);
}

TEST_CASE("Core: enqueue places due mail in the active queue and later mail in the delayed queue") {
  Core c(plainConfig(2));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(2), &d) == Status::Ok);
  CHECK(c.enqueue(d, 1, 10, 0, 1000, kNever, 1000) == Status::Ok);  // due exactly now
  CHECK(c.enqueue(d, 1, 11, 0, 999, kNever, 1000) == Status::Ok);   // overdue
  CHECK(c.enqueue(d, 1, 12, 0, 1001, kNever, 1000) == Status::Ok);  // later
  CHECK(c.enqueue(d, 0, 13, 1, 5000, 9000, 1000) == Status::Ok);
  CHECK(peekAllActive(c, d, 1) == std::vector<double>{11, 10});
  CHECK(peekAllDelayed(c, d) == std::vector<double>{12, 13});
  CHECK(c.activeSize(d, 0) == 0u);
  CHECK(c.isDue(d, 1000));
  MessageInfo info{};
  REQUIRE(c.locate(13, &info) == Status::Ok);
  CHECK(info.place == Place::Delayed);
  CHECK(info.priority == 1);
  CHECK(info.binding == 0u);
  CHECK(info.expiresAt == 9000.0);
  CHECK(info.attempts == 0u);
  // Promotion at 5000 moves both delayed messages; the urgent one is served first.
  CHECK(c.promoteDue(d, 4999) == 1u);
  CHECK(c.promoteDue(d, 5000) == 1u);
  CHECK(c.delayedSize(d) == 0u);
  CHECK(peekAllActive(c, d, 0) == std::vector<double>{13});
  CHECK(peekAllActive(c, d, 1) == std::vector<double>{11, 10, 12});
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: times within the range of a Date, both ends included, keep their order; past it refused") {
  // Next attempts from -kMaxTime to +kMaxTime in one active queue and one delayed queue: the runs'
  // time summaries must cover spans of 1.7e16 ms next to sub-millisecond ones.
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  const double now = 0;
  const double due[] = {-kMaxTime, -1e15, -0.25, -0.5, -kMaxTime + 1, -1e15 + 0.5};
  const double later[] = {kMaxTime, 1e15, 0.25, 0.5, kMaxTime - 1, 1e15 - 0.5, 0.25};
  double id = 100;
  for (double t : due) CHECK(c.enqueue(d, 0, id++, 0, t, kNever, now) == Status::Ok);
  for (double t : later) CHECK(c.enqueue(d, 0, id++, 0, t, kNever, now) == Status::Ok);
  CHECK(c.checkInvariants());
  CHECK(peekAllActive(c, d, 0) == std::vector<double>{100, 104, 101, 105, 103, 102});
  CHECK(peekAllDelayed(c, d) == std::vector<double>{108, 112, 109, 111, 107, 110, 106});
  for (double t : {kMaxTime * 1.0000001, -kMaxTime * 1.0000001, 1e300, -1e300, kNaN}) {
    CAPTURE(t);
    CHECK(c.enqueue(d, 0, 999, 0, t, kNever, now) == Status::BadArgument);
    CHECK(c.enqueue(d, 0, 999, 0, 10, kNever, t) == Status::BadArgument);  // now, too
    CHECK(c.flushDomain(d, t) == 0u);  // flush makes now the queue time: refused, nothing moves
  }
  CHECK(c.delayedSize(d) == 7u);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: enqueueBatch is all or nothing") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 5, 0, 0, kNever, 0) == Status::Ok);
  const double* k = c.counters();
  size_t at = 99;
  SUBCASE("a duplicate inside the batch") {
    const double ids[] = {1, 2, 3, 2, 4};
    CHECK(c.enqueueBatch(d, 0, ids, nullptr, 5, 0, kNever, 0, &at) == Status::DuplicateId);
    CHECK(at == 3u);
  }
  SUBCASE("a duplicate of a queued id") {
    const double ids[] = {1, 2, 5, 4};
    CHECK(c.enqueueBatch(d, 0, ids, nullptr, 4, 0, kNever, 0, &at) == Status::DuplicateId);
    CHECK(at == 2u);
  }
  SUBCASE("a duplicate of an in-flight id") {
    double taken;
    REQUIRE(c.take(d, 0, 1, 0, &taken) == 1u);
    const double ids[] = {1, 5};
    CHECK(c.enqueueBatch(d, 0, ids, nullptr, 2, 10, kNever, 0, &at) == Status::DuplicateId);
    CHECK(at == 1u);
    CHECK(k[kInFlight] == 1.0);
    CHECK(c.settle(5) == Status::Ok);
    CHECK(c.enqueueBatch(d, 0, ids, nullptr, 2, 10, kNever, 0, &at) == Status::Ok);  // gone: welcome back
    CHECK(c.delayedSize(d) == 2u);
    CHECK(c.checkInvariants());
    return;
  }
  SUBCASE("a bad priority") {
    const double ids[] = {1, 2, 3};
    const uint8_t prios[] = {0, 1, 2};
    CHECK(c.enqueueBatch(d, 0, ids, prios, 3, 0, kNever, 0, &at) == Status::BadArgument);
    CHECK(at == 2u);
  }
  SUBCASE("a bad id") {
    const double ids[] = {1, 2, 3, 4.5};
    CHECK(c.enqueueBatch(d, 0, ids, nullptr, 4, 0, kNever, 0, &at) == Status::BadArgument);
    CHECK(at == 3u);
  }
  // Nothing of the refused batch is queued, and the same ids go in once the flaw is gone.
  MessageInfo info{};
  for (double id : {1.0, 2.0, 3.0, 4.0}) CHECK(c.locate(id, &info) == Status::UnknownId);
  CHECK(peekAllActive(c, d, 0) == std::vector<double>{5});
  CHECK(k[kActive] == 1.0);
  CHECK(c.checkInvariants());
  const double good[] = {1, 2, 3, 4};
  const uint8_t prios[] = {0, 1, 0, 1};
  CHECK(c.enqueueBatch(d, 0, good, prios, 4, 0, kNever, 0, &at) == Status::Ok);
  CHECK(peekAllActive(c, d, 0) == std::vector<double>{2, 4, 5, 1, 3});
  CHECK(k[kActive] == 5.0);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: enqueueArrivals places many pairs' messages as the same single enqueues would") {
  // Two cores: one takes 600 arrivals for 3 domains x 2 bindings one enqueue() at a time, the other
  // in two enqueueArrivals() calls. Queues, delayed queues, counters and records must agree.
  Core one(plainConfig(2)), many(plainConfig(2));
  for (int i = 0; i < 3; ++i) {
    uint32_t d;
    REQUIRE(one.addDomain(plainDomain(2), &d) == Status::Ok);
    REQUIRE(many.addDomain(plainDomain(2), &d) == Status::Ok);
  }
  std::vector<double> entries;
  uint64_t x = 12345;
  for (int i = 0; i < 600; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const uint32_t d = (x >> 33) % 3, b = (x >> 40) % 2, p = (x >> 50) % 8 == 0 ? 1 : 0;
    const double next = (x >> 20) % 5 == 0 ? 500 : 100;    // a fifth delayed
    const double exp = (x >> 10) % 7 == 0 ? 100 : kNever;  // some expire at once
    entries.insert(entries.end(), {double(d), double(b + 65536 * p), double(1000 + i), next, exp});
    REQUIRE(one.enqueue(d, b, 1000 + i, static_cast<uint8_t>(p), next, exp, 100) == Status::Ok);
  }
  size_t at = 99;
  REQUIRE(many.enqueueArrivals(entries.data(), 250, 100, &at) == Status::Ok);
  REQUIRE(many.enqueueArrivals(entries.data() + 5 * 250, 350, 100, &at) == Status::Ok);
  for (uint32_t d = 0; d < 3; ++d) {
    for (uint32_t b = 0; b < 2; ++b) CHECK(peekAllActive(many, d, b) == peekAllActive(one, d, b));
    CHECK(peekAllDelayed(many, d) == peekAllDelayed(one, d));
  }
  for (uint32_t i = 0; i < Core::counterCountFor(plainConfig(2)); ++i) CHECK(many.counters()[i] == one.counters()[i]);
  CHECK(many.counters()[kHighestId] == 1599.0);
  MessageInfo a{}, b{};
  for (int i = 0; i < 600; ++i) {
    Status sa = one.locate(1000 + i, &a), sb = many.locate(1000 + i, &b);
    REQUIRE(sa == sb);
    if (sa == Status::Ok)
      CHECK((a.place == b.place && a.priority == b.priority && a.domain == b.domain && a.binding == b.binding));
  }
  CHECK(many.checkInvariants());
}

TEST_CASE("Core: enqueueArrivals refuses a bad batch whole, and leaves highestId as it was") {
  Core c(plainConfig(2));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(2), &d) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 7, 0, 100, kNever, 100) == Status::Ok);
  CHECK(c.counters()[kHighestId] == 7.0);
  size_t at = 0;
  const double dup[] = {0, 0, 10, 100, kNever, 0, 1, 7, 100, kNever};  // 7 is queued
  CHECK(c.enqueueArrivals(dup, 2, 100, &at) == Status::DuplicateId);
  CHECK(at == 1);
  const double twice[] = {0, 0, 10, 100, kNever, 0, 1, 10, 100, kNever};
  CHECK(c.enqueueArrivals(twice, 2, 100, &at) == Status::DuplicateId);
  CHECK(at == 1);
  const double badDomain[] = {0, 0, 10, 100, kNever, 3, 0, 11, 100, kNever};
  CHECK(c.enqueueArrivals(badDomain, 2, 100, &at) == Status::BadDomain);
  CHECK(at == 1);
  const double badBinding[] = {0, 2, 10, 100, kNever};
  CHECK(c.enqueueArrivals(badBinding, 1, 100, &at) == Status::BadBinding);
  const double badPriority[] = {0, 2 * 65536, 10, 100, kNever};
  CHECK(c.enqueueArrivals(badPriority, 1, 100, &at) == Status::BadBinding);
  const double badId[] = {0, 0, -1, 100, kNever};
  CHECK(c.enqueueArrivals(badId, 1, 100, &at) == Status::BadArgument);
  const double badTime[] = {0, 0, 10, std::nan(""), kNever};
  CHECK(c.enqueueArrivals(badTime, 1, 100, &at) == Status::BadArgument);
  const double fractional[] = {0.5, 0, 10, 100, kNever};
  CHECK(c.enqueueArrivals(fractional, 1, 100, &at) == Status::BadDomain);
  CHECK(c.enqueueArrivals(dup, 0, std::nan(""), &at) == Status::BadArgument);
  CHECK(c.counters()[kActive] == 1.0);
  CHECK(c.counters()[kHighestId] == 7.0);
  CHECK(peekAllActive(c, d, 0) == std::vector<double>{7});
  CHECK(peekAllActive(c, d, 1).empty());
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: a duplicate is refused when the shared highestId counter was written lower") {
  // The counters are memory the embedder may write (JavaScript holds them as an ArrayBuffer): the
  // core skips the duplicate lookup only above its own bound, never above a lowered counter.
  auto cfg = plainConfig(1);
  std::shared_ptr<double> store(new double[Core::counterCountFor(cfg)](), std::default_delete<double[]>());
  Core c(cfg, store);
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 50, 0, 100, kNever, 100) == Status::Ok);
  store.get()[kHighestId] = 0;
  size_t at = 0;
  const double again[] = {0, 0, 50, 100, kNever};
  CHECK(c.enqueueArrivals(again, 1, 100, &at) == Status::DuplicateId);
  CHECK(c.enqueue(d, 0, 50, 0, 100, kNever, 100) == Status::DuplicateId);
  const double fresh[] = {0, 0, 51, 100, kNever};
  CHECK(c.enqueueArrivals(fresh, 1, 100, &at) == Status::Ok);
  CHECK(store.get()[kHighestId] == 51.0);
  CHECK(c.counters()[kActive] == 2.0);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: setAttempts restores a queued message's attempt count") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 1, 0, 100, kNever, 100) == Status::Ok);  // active
  REQUIRE(c.enqueue(d, 0, 2, 0, 900, kNever, 100) == Status::Ok);  // delayed
  MessageInfo info{};
  CHECK(c.setAttempts(1, 7) == Status::Ok);
  CHECK(c.setAttempts(2, 65535) == Status::Ok);
  REQUIRE(c.locate(1, &info) == Status::Ok);
  CHECK(info.attempts == 7u);
  CHECK(info.place == Place::Active);
  REQUIRE(c.locate(2, &info) == Status::Ok);
  CHECK(info.attempts == 65535u);
  CHECK(info.place == Place::Delayed);
  CHECK(info.nextAttempt == 900.0);
  // A take counts on from the restored value; the count saturates instead of wrapping.
  double out[2];
  REQUIRE(c.take(d, 0, 1, 100, out) == 1u);
  REQUIRE(c.locate(1, &info) == Status::Ok);
  CHECK(info.attempts == 8u);
  CHECK(c.setAttempts(1, 0) == Status::InFlight);
  CHECK(c.setAttempts(3, 1) == Status::UnknownId);
  CHECK(c.setAttempts(-1, 1) == Status::BadArgument);
  CHECK(c.setAttempts(0.5, 1) == Status::BadArgument);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: take; settle; defer; untake") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  const double ids[] = {1, 2, 3, 4, 5, 6};
  size_t at;
  REQUIRE(c.enqueueBatch(d, 0, ids, nullptr, 6, 100, kNever, 100, &at) == Status::Ok);
  double out[8];
  REQUIRE(c.take(d, 0, 3, 100, out) == 3u);
  CHECK(std::vector<double>(out, out + 3) == std::vector<double>{1, 2, 3});
  MessageInfo info{};
  REQUIRE(c.locate(2, &info) == Status::Ok);
  CHECK(info.place == Place::InFlight);
  CHECK(info.attempts == 1u);
  CHECK(c.cancel(2) == Status::InFlight);
  CHECK(c.settle(4) == Status::NotInFlight);
  CHECK(c.defer(4, 500, 100) == Status::NotInFlight);
  CHECK(c.untake(4) == Status::NotInFlight);
  // untake puts a message back at the head, where it was.
  CHECK(c.untake(3) == Status::Ok);
  CHECK(c.untake(2) == Status::Ok);
  CHECK(peekAllActive(c, d, 0) == std::vector<double>{2, 3, 4, 5, 6});
  REQUIRE(c.locate(2, &info) == Status::Ok);
  CHECK(info.attempts == 0u);  // the attempt never happened
  CHECK(c.untake(2) == Status::NotInFlight);
  // settle: gone for good.
  CHECK(c.settle(1) == Status::Ok);
  CHECK(c.settle(1) == Status::UnknownId);
  CHECK(c.locate(1, &info) == Status::UnknownId);
  // defer: a retry later goes to the delayed queue and comes back when due, behind mail that is
  // already waiting with an earlier time.
  REQUIRE(c.take(d, 0, 1, 100, out) == 1u);
  CHECK(out[0] == 2.0);
  CHECK(c.defer(2, 400, 100) == Status::Ok);
  CHECK(peekAllDelayed(c, d) == std::vector<double>{2});
  REQUIRE(c.locate(2, &info) == Status::Ok);
  CHECK(info.attempts == 1u);
  CHECK(info.nextAttempt == 400.0);
  CHECK(c.promoteDue(d, 400) == 1u);
  CHECK(peekAllActive(c, d, 0) == std::vector<double>{3, 4, 5, 6, 2});
  // defer to a time not after now: straight back to the active queue, in time order.
  REQUIRE(c.take(d, 0, 1, 400, out) == 1u);
  CHECK(out[0] == 3.0);
  CHECK(c.defer(3, 50, 400) == Status::Ok);
  CHECK(peekAllActive(c, d, 0) == std::vector<double>{3, 4, 5, 6, 2});
  CHECK(c.checkInvariants());
}

// The flight-table entry of id (a pointer to its 4 doubles), or nullptr.
const double* flightEntry(const Core& c, double id) {
  const double* set =
      c.flightStorage().get() + static_cast<size_t>(Core::flightSetOf(id)) * Core::kFlightWays * Core::kFlightStride;
  for (size_t j = 0; j < Core::kFlightWays; ++j)
    if (set[j * Core::kFlightStride] == id + 1) return set + j * Core::kFlightStride;
  return nullptr;
}

TEST_CASE("Core: the flight table holds what is in flight; applyOutcomes applies staged outcomes in order") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  const double ids[] = {1, 2, 3, 4, 5, 6, 7};
  size_t at;
  REQUIRE(c.enqueueBatch(d, 0, ids, nullptr, 7, 100, 9000, 100, &at) == Status::Ok);
  double out[8];
  // Not kept until asked for: a take writes nothing.
  REQUIRE(c.take(d, 0, 1, 100, out) == 1u);
  CHECK(flightEntry(c, 1) == nullptr);
  CHECK(c.untake(1) == Status::Ok);
  CHECK(!c.tracksFlight());
  c.trackFlight();
  CHECK(flightEntry(c, 1) == nullptr);  // queued, not in flight
  REQUIRE(c.take(d, 0, 6, 100, out) == 6u);
  for (double id : {1, 2, 3, 4, 5, 6}) {
    const double* e = flightEntry(c, id);
    REQUIRE(e != nullptr);
    MessageInfo info{};
    REQUIRE(c.locate(id, &info) == Status::Ok);
    CHECK(e[2] == 9000.0);  // the expiry
    CHECK(e[3] == static_cast<double>(d));
  }
  CHECK(flightEntry(c, 7) == nullptr);
  // Every way out of flight clears the entry: settle, defer, untake, settleBatch, deferBatch.
  CHECK(c.settle(1) == Status::Ok);
  CHECK(flightEntry(c, 1) == nullptr);
  CHECK(c.untake(2) == Status::Ok);
  CHECK(flightEntry(c, 2) == nullptr);
  const double three[] = {3};
  CHECK(c.settleBatch(three, 1, &at) == Status::Ok);
  CHECK(flightEntry(c, 3) == nullptr);
  CHECK(c.checkInvariants());
  // Staged: settle 4 (by its handle), defer 5 (by a handle that is wrong: found by id), defer 6 to
  // a time past its expiry (expires), and three refusals: 4 again (no longer in flight), an
  // unknown id, a defer of 7 (queued, not in flight).
  const double h4 = flightEntry(c, 4)[1];
  const double staged[] = {h4, 4, NAN, 12345, 5, 500, flightEntry(c, 6)[1], 6, 9000, h4, 4, NAN, 0, 99, NAN, 0, 7, 700};
  size_t refused = 0;
  REQUIRE(c.applyOutcomes(staged, 6, 100, &refused) == Status::Ok);
  CHECK(refused == 3u);
  MessageInfo info{};
  CHECK(c.locate(4, &info) == Status::UnknownId);
  REQUIRE(c.locate(5, &info) == Status::Ok);
  CHECK(info.place == Place::Delayed);
  CHECK(info.nextAttempt == 500.0);
  CHECK(c.locate(6, &info) == Status::UnknownId);
  CHECK(c.pendingExpired() == 1u);
  REQUIRE(c.locate(7, &info) == Status::Ok);
  CHECK(info.place == Place::Active);
  CHECK(flightEntry(c, 5) == nullptr);
  CHECK(c.counters()[kInFlight] == 0.0);
  CHECK(c.checkInvariants());
  // A bad now applies nothing.
  CHECK(c.applyOutcomes(staged, 1, NAN, &refused) == Status::BadArgument);
  // A full set: the oldest entry gives way; the newer ones stay findable.
  std::vector<double> same;
  for (double id = 100; same.size() < Core::kFlightWays + 1; ++id)
    if (Core::flightSetOf(id) == Core::flightSetOf(100)) same.push_back(id);
  REQUIRE(c.enqueueBatch(d, 0, same.data(), nullptr, same.size(), 100, kNever, 100, &at) == Status::Ok);
  REQUIRE(c.take(d, 0, 8, 100, out) == 2u + same.size());  // 2 (untaken above), 7, then these
  CHECK(flightEntry(c, same[0]) == nullptr);
  for (size_t j = 1; j < same.size(); ++j) CHECK(flightEntry(c, same[j]) != nullptr);
  // An entry cleared in the middle of the set leaves room: the next one pushes nothing out.
  const double mid[] = {same[2]};
  CHECK(c.settleBatch(mid, 1, &at) == Status::Ok);
  double another = same.back() + 1;
  while (Core::flightSetOf(another) != Core::flightSetOf(100)) ++another;
  REQUIRE(c.enqueue(d, 0, another, 0, 100, kNever, 100) == Status::Ok);
  REQUIRE(c.take(d, 0, 1, 100, out) == 1u);
  CHECK(flightEntry(c, another) != nullptr);
  for (size_t j = 1; j < same.size(); ++j)
    if (j != 2) CHECK(flightEntry(c, same[j]) != nullptr);
  CHECK(c.checkInvariants());
  // The one pushed out is still in flight, and still settled by id.
  const double pushed[] = {12345, same[0], NAN};
  REQUIRE(c.applyOutcomes(pushed, 1, 100, &refused) == Status::Ok);
  CHECK(refused == 0u);
  CHECK(c.locate(same[0], &info) == Status::UnknownId);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: expiry in take; promoteDue; defer and expireActive; drainExpired") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 1, 0, 0, 100, 0) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 2, 0, 0, kNever, 0) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 3, 0, 0, 50, 0) == Status::Ok);
  // A first attempt after its own expiry: bounced at once, never queued.
  REQUIRE(c.enqueue(d, 0, 4, 0, 200, 150, 0) == Status::Ok);
  CHECK(c.pendingExpired() == 1u);
  CHECK(c.delayedSize(d) == 0u);
  REQUIRE(c.enqueue(d, 0, 5, 0, 0, 300, 0) == Status::Ok);
  double out[8];
  // take at 100: 1 and 3 have expired; they are reported, not handed out.
  REQUIRE(c.take(d, 0, 2, 100, out) == 2u);
  CHECK(std::vector<double>(out, out + 2) == std::vector<double>{2, 5});
  CHECK(c.pendingExpired() == 3u);
  CHECK(c.counters()[kExpired] == 3.0);
  // promoteDue: nothing delayed is left (4 never entered the delayed queue).
  CHECK(c.promoteDue(d, 200) == 0u);
  CHECK(c.pendingExpired() == 3u);
  // defer past the expiry: expired rather than queued.
  CHECK(c.defer(5, 300, 200) == Status::Ok);
  CHECK(c.pendingExpired() == 4u);
  CHECK(c.untake(2) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 6, 1, 0, 250, 200) == Status::Ok);
  CHECK(c.expireActive(d, 249) == 0u);
  CHECK(c.expireActive(d, 250) == 1u);
  CHECK(peekAllActive(c, d, 0) == std::vector<double>{2});
  CHECK(c.checkInvariants());
  // Drain in two pieces; each expired id exactly once.
  double drained[8];
  CHECK(c.drainExpired(drained, 3) == 3u);
  CHECK(c.pendingExpired() == 2u);
  CHECK(c.drainExpired(drained + 3, 8) == 2u);
  CHECK(c.drainExpired(drained, 8) == 0u);
  std::vector<double> all(drained, drained + 5);
  std::sort(all.begin(), all.end());
  CHECK(all == std::vector<double>{1, 3, 4, 5, 6});
  CHECK(c.counters()[kExpired] == 5.0);
}

TEST_CASE("Core: bad arguments return the right status and change nothing") {
  const uint32_t B = 2;
  Core c(plainConfig(B, 100, 5));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(B), &d) == Status::Ok);
  uint32_t d2;
  REQUIRE(c.addDomain(plainDomain(B), &d2) == Status::Ok);
  size_t at;
  const double active[] = {1, 2, 3, 4, 5, 6, 7, 8};
  REQUIRE(c.enqueueBatch(d, 0, active, nullptr, 8, 10, kNever, 10, &at) == Status::Ok);
  const double later[] = {20, 21};
  REQUIRE(c.enqueueBatch(d2, 1, later, nullptr, 2, 5000, 9000, 10, &at) == Status::Ok);
  REQUIRE(c.enqueue(d, 1, kMaxId, 1, 10, 100, 10) == Status::Ok);  // the largest safe id is fine
  double out[4];
  REQUIRE(c.take(d, 0, 2, 10, out) == 2u);  // 1 and 2 in flight
  REQUIRE(c.enqueue(d, 0, 30, 0, 10, 11, 10) == Status::Ok);
  REQUIRE(c.expireActive(d, 11) == 1u);  // one expired id pending
  REQUIRE(c.maintainAll(12) > 0u);       // grants pending
  std::vector<double> known{1, 2, 3, 8, 20, 21, kMaxId, 30, 99};
  const Snapshot before = snapshot(c, known);
  REQUIRE(c.checkInvariants());

  auto unchanged = [&](const char* what) {
    INFO(what);
    CHECK(c.checkInvariants());
    CHECK(snapshot(c, known) == before);
  };
  const double badIds[] = {kNaN, -1, -0.5, 0.5, 1.5, kTwo53, kTwo53 + 2, 1e300, kInf, -kInf};
  for (double id : badIds) {
    CAPTURE(id);
    CHECK(c.enqueue(d, 0, id, 0, 10, kNever, 10) == Status::BadArgument);
    CHECK(c.cancel(id) == Status::BadArgument);
    CHECK(c.settle(id) == Status::BadArgument);
    CHECK(c.defer(id, 20, 10) == Status::BadArgument);
    CHECK(c.untake(id) == Status::BadArgument);
    CHECK(c.removeActive(d, 0, id) == Status::BadArgument);
    MessageInfo info{};
    CHECK(c.locate(id, &info) == Status::BadArgument);
    unchanged("bad id");
  }
  // Domain and binding indices.
  CHECK(c.enqueue(2, 0, 50, 0, 10, kNever, 10) == Status::BadDomain);
  CHECK(c.enqueue(0xffffffffu, 0, 50, 0, 10, kNever, 10) == Status::BadDomain);
  CHECK(c.enqueue(d, B, 50, 0, 10, kNever, 10) == Status::BadBinding);
  CHECK(c.enqueue(d, 0xffffffffu, 50, 0, 10, kNever, 10) == Status::BadBinding);
  CHECK(c.enqueueBatch(7, 0, active, nullptr, 8, 10, kNever, 10, &at) == Status::BadDomain);
  CHECK(c.enqueueBatch(d, 3, active, nullptr, 8, 10, kNever, 10, &at) == Status::BadBinding);
  CHECK(c.removeActive(2, 0, 3) != Status::Ok);
  CHECK(c.removeActive(d, B, 3) != Status::Ok);
  unchanged("bad indices");
  // Priorities.
  for (uint8_t p : {uint8_t{2}, uint8_t{3}, uint8_t{255}}) {
    CHECK(c.enqueue(d, 0, 50, p, 10, kNever, 10) == Status::BadArgument);
    const double ids[] = {50, 51};
    const uint8_t prios[] = {1, p};
    CHECK(c.enqueueBatch(d, 0, ids, prios, 2, 10, kNever, 10, &at) == Status::BadArgument);
    CHECK(at == 1u);
  }
  unchanged("bad priority");
  // Times.
  for (double t : {kNaN, kInf, -kInf}) {
    CAPTURE(t);
    CHECK(c.enqueue(d, 0, 50, 0, t, kNever, 10) == Status::BadArgument);  // nextAttempt
    CHECK(c.enqueue(d, 0, 50, 0, 10, kNever, t) == Status::BadArgument);  // now
    CHECK(c.defer(1, t, 10) == Status::BadArgument);
    CHECK(c.defer(1, 20, t) == Status::BadArgument);
  }
  CHECK(c.enqueue(d, 0, 50, 0, 10, kNaN, 10) == Status::BadArgument);  // expiresAt
  CHECK(c.enqueue(d, 0, 50, 0, 10, -kInf, 10) == Status::BadArgument);
  unchanged("bad times");
  // Well-formed, but wrong for the state.
  CHECK(c.enqueue(d, 0, 3, 0, 10, kNever, 10) == Status::DuplicateId);
  CHECK(c.enqueue(d, 1, 1, 0, 10, kNever, 10) == Status::DuplicateId);  // in flight
  CHECK(c.cancel(99) == Status::UnknownId);
  CHECK(c.cancel(30) == Status::UnknownId);  // expired
  CHECK(c.cancel(1) == Status::InFlight);
  CHECK(c.settle(3) == Status::NotInFlight);
  CHECK(c.settle(20) == Status::NotInFlight);
  CHECK(c.settle(99) == Status::UnknownId);
  CHECK(c.defer(3, 20, 10) == Status::NotInFlight);
  CHECK(c.untake(20) == Status::NotInFlight);
  CHECK(c.untake(99) == Status::UnknownId);
  CHECK(c.removeActive(d, 1, 3) == Status::UnknownId);    // in binding 0
  CHECK(c.removeActive(d2, 0, 3) == Status::UnknownId);   // in domain d
  CHECK(c.removeActive(d2, 1, 20) == Status::UnknownId);  // delayed, not active
  CHECK(c.removeActive(d, 0, 1) == Status::UnknownId);    // in flight
  CHECK(c.releaseConnection(123456) == Status::UnknownConnection);
  unchanged("state errors");
  // addDomain with limits that do not fit the configuration.
  uint32_t idx = 77;
  CHECK(c.addDomain(plainDomain(B + 1), &idx) == Status::BadArgument);
  CHECK(c.addDomain(plainDomain(B, 1), &idx) == Status::BadArgument);
  CHECK(idx == 77u);
  unchanged("addDomain");
}

// Regression: a bad domain or binding index is reported as such, not as an unknown id.
TEST_CASE("Core: removeActive reports bad domain and binding indices as such") {
  Core c(plainConfig(2));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(2), &d) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 1, 0, 0, kNever, 0) == Status::Ok);
  CHECK(c.removeActive(1, 0, 1) == Status::BadDomain);
  CHECK(c.removeActive(d, 2, 1) == Status::BadBinding);
  CHECK(c.activeSize(d, 0) == 1u);
}

// Regression: a fractional connection id releases nothing.
TEST_CASE("Core: releaseConnection refuses a fractional connection id") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 1, 0, 0, kNever, 0) == Status::Ok);
  REQUIRE(c.maintainAll(0) == 1u);
  double g[3];
  REQUIRE(c.drainGrants(g, 1) == 1u);
  CHECK(c.releaseConnection(g[0] + 0.5) != Status::Ok);
  CHECK(c.counters()[kConnections] == 1.0);
  CHECK(c.releaseConnection(g[0]) == Status::Ok);
}

// Regression: Message::binding is 16 bits, so a binding slot above 65535 is refused, never
// folded onto binding 0.
TEST_CASE("Core: binding slots above 65535 are kept apart") {
  const uint32_t B = 65537;
  Core c(plainConfig(B));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(B), &d) == Status::Ok);
  Status s = c.enqueue(d, 65536, 1, 0, 0, kNever, 0);
  if (s == Status::Ok) {
    MessageInfo info{};
    REQUIRE(c.locate(1, &info) == Status::Ok);
    CHECK(info.binding == 65536u);
    CHECK(c.activeSize(d, 65536) == 1u);
    CHECK(c.activeSize(d, 0) == 0u);
  } else {
    CHECK(s == Status::BadBinding);
  }
}

TEST_CASE("Core: computeGoal; openConnections and defaultMaintain") {
  Core c(plainConfig(2));
  uint32_t d;
  DomainLimits dl = plainDomain(2);
  dl.pairs[1].aggressiveness = kAggressivenessHigh;
  REQUIRE(c.addDomain(dl, &d) == Status::Ok);
  CHECK(c.computeGoal(d, 0, 0) == -1);  // empty queue
  std::vector<double> ids(100);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<double>(i + 1);
  size_t at;
  REQUIRE(c.enqueueBatch(d, 0, ids.data(), nullptr, 100, 0, kNever, 0, &at) == Status::Ok);
  for (auto& id : ids) id += 1000;
  REQUIRE(c.enqueueBatch(d, 1, ids.data(), nullptr, 50, 0, kNever, 0, &at) == Status::Ok);
  CHECK(c.computeGoal(d, 0, 0) == 20);  // M 32, q 100, normal
  CHECK(c.computeGoal(d, 1, 0) == 23);  // M 32, q 50, high
  CHECK(c.openConnections(d, 0, 5, 200, 0) == 5u);
  CHECK(c.openConnections(d, 0, 5, 200, 0) == 0u);  // goal reached
  CHECK(c.openConnections(d, 0, 3, 200, 0) == 0u);  // goal below current: nothing closes
  CHECK(c.computeGoal(d, 0, 4) == 9);               // goalsz > 0: current + goalsz
  CHECK(c.defaultMaintain(d, 0, 0, 4, 200) == 4u);
  CHECK(c.ledger().pairCount(d, 0) == 9u);
  CHECK(c.defaultMaintain(d, 0, 0, 0, 200) == 11u);  // up to the curve's 20
  CHECK(c.defaultMaintain(d, 0, 0, 0, 200) == 0u);
  CHECK(c.openConnections(d, 1, 1000, 200, 0) == 32u);  // clipped by max_outbound_connections
  CHECK(c.pendingGrants() == 52u);
  c.ledger().setSuspended(d, 0, true);
  CHECK(c.computeGoal(d, 0, 0) == -1);
  CHECK(c.defaultMaintain(d, 0, 0, 0, 200) == 0u);
  CHECK(c.counters()[kConnections] == 52.0);
  CHECK(c.counters()[kFixedCounters + 0] == 20.0);
  CHECK(c.counters()[kFixedCounters + 1] == 32.0);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: visitDefault is defaultMaintain for the last prepareVisit's domain, now and goalsz") {
  // Two twins driven alike: one through prepareVisit + visitDefault, one through defaultMaintain.
  Core a(plainConfig(2));
  Core b(plainConfig(2));
  uint32_t opened = 99;
  CHECK(a.visitDefault(0, 0, &opened) == Status::BadArgument);  // no visit yet
  CHECK(opened == 0u);
  uint32_t da0, da1, db0, db1;
  REQUIRE(a.addDomain(plainDomain(2), &da0) == Status::Ok);
  REQUIRE(a.addDomain(plainDomain(2), &da1) == Status::Ok);
  REQUIRE(b.addDomain(plainDomain(2), &db0) == Status::Ok);
  REQUIRE(b.addDomain(plainDomain(2), &db1) == Status::Ok);
  std::vector<double> ids(80);
  size_t at;
  for (uint32_t d = 0; d < 2; ++d)
    for (uint32_t bi = 0; bi < 2; ++bi) {
      for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<double>(1000 * (2 * d + bi + 1) + i);
      size_t n = 10 + 20 * (2 * d + bi);
      REQUIRE(a.enqueueBatch(d, bi, ids.data(), nullptr, n, 0, kNever, 0, &at) == Status::Ok);
      REQUIRE(b.enqueueBatch(d, bi, ids.data(), nullptr, n, 0, kNever, 0, &at) == Status::Ok);
    }
  std::vector<uint32_t> out(3 * 2);
  for (int32_t goalsz : {0, 3, -2}) {
    for (uint32_t d = 0; d < 2; ++d) {
      a.prepareVisit(d, 500, goalsz, out.data(), out.data() + 2, out.data() + 4);
      b.promoteDue(d, 500);
      b.expireActive(d, 500);
      for (uint32_t bi = 0; bi < 2; ++bi) {
        uint32_t reserve = bi == 0 ? 0 : 200;
        REQUIRE(a.visitDefault(bi, reserve, &opened) == Status::Ok);
        CHECK(opened == b.defaultMaintain(d, bi, 500, goalsz, reserve));
      }
      CHECK(a.visitDefault(2, 0, &opened) == Status::BadBinding);
    }
  }
  for (size_t i = 0; i < a.counterCount(); ++i) CHECK(a.counters()[i] == b.counters()[i]);
  CHECK(a.pendingGrants() == b.pendingGrants());
  CHECK(a.checkInvariants());
}

TEST_CASE("Core: takes in connection-id order (which fetch ahead) take what takes in any order take") {
  // Two cores with the same mail and grants: one takes for its connections in id order (each take
  // fetching ahead for the next ids, some released, migrated or never issued), the other in
  // reverse order. Both hand out the same messages per connection.
  auto build = [](Core& c, std::vector<double>* grants) {
    for (uint32_t i = 0; i < 6; ++i) {
      uint32_t d;
      REQUIRE(c.addDomain(plainDomain(2), &d) == Status::Ok);
      for (uint32_t b = 0; b < 2; ++b)
        for (int k = 0; k < 5; ++k) REQUIRE(c.enqueue(d, b, 1000 * d + 100 * b + k + 1, 0, 0, kNever, 0) == Status::Ok);
    }
    c.maintainAll(0);
    std::vector<double> buf(3 * 200);
    size_t n = c.drainGrants(buf.data(), 200);
    REQUIRE(n > 8u);
    for (size_t i = 0; i < n; ++i) grants->push_back(buf[3 * i]);
    // Gaps in the ids ahead: one released, one migrated to another domain.
    REQUIRE(c.releaseConnection((*grants)[3]) == Status::Ok);
    REQUIRE(c.migrateConnection((*grants)[5], 0) == Status::Ok);
  };
  Core a(plainConfig(2)), b(plainConfig(2));
  std::vector<double> ga, gb;
  build(a, &ga);
  build(b, &gb);
  REQUIRE(ga == gb);
  std::map<double, std::vector<double>> takenA, takenB;
  double out[4];
  size_t n = 0;
  for (size_t i = 0; i < ga.size(); ++i) {
    Status s = a.takeFor(ga[i], 2, 0, out, &n);
    if (s == Status::Ok) takenA[ga[i]].assign(out, out + n);
  }
  // A take for an id past the last one issued fetches ahead for nothing.
  CHECK(a.takeFor(ga.back() + 1, 2, 0, out, &n) == Status::UnknownConnection);
  for (size_t i = gb.size(); i-- > 0;) {
    Status s = b.takeFor(gb[i], 2, 0, out, &n);
    if (s == Status::Ok) takenB[gb[i]].assign(out, out + n);
  }
  // Per pair, the order of the takes decides which connection gets which messages; the messages
  // taken from each pair are the same.
  std::multiset<double> allA, allB;
  for (auto& [id, v] : takenA) allA.insert(v.begin(), v.end());
  for (auto& [id, v] : takenB) allB.insert(v.begin(), v.end());
  CHECK(allA == allB);
  CHECK(takenA.size() == takenB.size());
  CHECK(a.checkInvariants());
  CHECK(b.checkInvariants());
}

TEST_CASE("Core: drainGrants in pieces returns every grant once; in order") {
  Core c(plainConfig(3));
  uint32_t d0, d1;
  REQUIRE(c.addDomain(plainDomain(3), &d0) == Status::Ok);
  REQUIRE(c.addDomain(plainDomain(3), &d1) == Status::Ok);
  REQUIRE(c.enqueue(d0, 2, 1, 0, 0, kNever, 0) == Status::Ok);
  REQUIRE(c.enqueue(d1, 1, 2, 0, 0, kNever, 0) == Status::Ok);
  CHECK(c.openConnections(d0, 2, 3, 0, 0) == 3u);
  CHECK(c.openConnections(d1, 1, 2, 0, 0) == 2u);
  CHECK(c.pendingGrants() == 5u);
  double buf[3 * 5];
  CHECK(c.drainGrants(buf, 2) == 2u);
  CHECK(c.pendingGrants() == 3u);
  CHECK(c.openConnections(d1, 1, 3, 0, 0) == 1u);  // arrives while some are unread
  CHECK(c.drainGrants(buf + 6, 3) == 3u);
  double rest[3 * 4];
  CHECK(c.drainGrants(rest, 4) == 1u);
  CHECK(c.drainGrants(rest + 3, 4) == 0u);
  std::vector<std::tuple<double, double, double>> all;
  for (int i = 0; i < 5; ++i) all.emplace_back(buf[3 * i], buf[3 * i + 1], buf[3 * i + 2]);
  all.emplace_back(rest[0], rest[1], rest[2]);
  const double want[6][2] = {{0, 2}, {0, 2}, {0, 2}, {1, 1}, {1, 1}, {1, 1}};
  std::set<double> ids;
  for (int i = 0; i < 6; ++i) {
    CHECK(std::get<1>(all[i]) == want[i][0]);
    CHECK(std::get<2>(all[i]) == want[i][1]);
    CHECK(ids.insert(std::get<0>(all[i])).second);
  }
  // Each drained id is a live lease of the right pair.
  for (const auto& g : all) CHECK(c.releaseConnection(std::get<0>(g)) == Status::Ok);
  for (const auto& g : all) CHECK(c.releaseConnection(std::get<0>(g)) == Status::UnknownConnection);
  CHECK(c.ledger().total() == 0u);
  CHECK(c.counters()[kReleased] == 6.0);
  CHECK(c.counters()[kOpened] == 6.0);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: maintainAll with random limits never passes a limit and leaves no allowed goal unmet") {
  for (uint64_t seed = 1; seed <= 40; ++seed) maintainWalk(seed, 60);
}

TEST_CASE("Core: maintainAll promotes due mail and expires old mail before opening") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 1, 0, 500, kNever, 0) == Status::Ok);  // delayed until 500
  REQUIRE(c.enqueue(d, 0, 2, 0, 450, 480, 300) == Status::Ok);   // expires before a pass finds it due
  CHECK_FALSE(c.isDue(d, 449));
  CHECK(c.maintainAll(449) == 0u);
  CHECK(c.delayedSize(d) == 2u);
  CHECK(c.isDue(d, 500));
  uint32_t due[4];
  CHECK(c.dueDomains(500, due, 4) == 1u);
  CHECK(c.maintainAll(500) == 1u);
  CHECK(peekAllActive(c, d, 0) == std::vector<double>{1});
  double ex[2];
  CHECK(c.drainExpired(ex, 2) == 1u);
  CHECK(ex[0] == 2.0);
  // An active message past its expiry is expired by the pass, and no connection opens for it.
  uint32_t d2;
  REQUIRE(c.addDomain(plainDomain(1), &d2) == Status::Ok);
  REQUIRE(c.enqueue(d2, 0, 3, 0, 500, 600, 500) == Status::Ok);
  CHECK(c.maintainAll(600) == 0u);
  CHECK(c.activeSize(d2, 0) == 0u);
  CHECK(c.ledger().pairCount(d2, 0) == 0u);
  CHECK(c.pendingExpired() == 1u);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: a quiet domain gets a connection when busy domains have filled server_max") {
  // server_max 10, server_reserve 2: two busy domains (max 5 each) fill server_max; quiet domains
  // (one message, no connection) may still open one each until the reserve is used up.
  Core c(plainConfig(1, 10, 2));
  uint32_t busy[2], quiet[3];
  for (auto& d : busy) REQUIRE(c.addDomain(plainDomain(1, 0, 5), &d) == Status::Ok);
  for (auto& d : quiet) REQUIRE(c.addDomain(plainDomain(1, 0, 32), &d) == Status::Ok);
  std::vector<double> ids(500);
  size_t at;
  for (size_t i = 0; i < 500; ++i) ids[i] = static_cast<double>(i + 1);
  REQUIRE(c.enqueueBatch(busy[0], 0, ids.data(), nullptr, 500, 0, kNever, 0, &at) == Status::Ok);
  for (auto& id : ids) id += 1000;
  REQUIRE(c.enqueueBatch(busy[1], 0, ids.data(), nullptr, 500, 0, kNever, 0, &at) == Status::Ok);
  CHECK(c.maintainAll(0) == 10u);
  CHECK(c.ledger().total() == 10u);
  // More mail for the busy domains: they have connections, so the reserve is not theirs.
  for (auto& id : ids) id += 1000;
  REQUIRE(c.enqueueBatch(busy[0], 0, ids.data(), nullptr, 500, 0, kNever, 0, &at) == Status::Ok);
  CHECK(c.maintainAll(1) == 0u);
  for (uint32_t i = 0; i < 3; ++i) REQUIRE(c.enqueue(quiet[i], 0, 90000 + i, 0, 0, kNever, 0) == Status::Ok);
  CHECK(c.maintainAll(2) == 2u);
  CHECK(c.ledger().total() == 12u);  // server_max + server_reserve
  uint32_t served = 0;
  for (uint32_t d : quiet) served += c.ledger().pairCount(d, 0);
  CHECK(served == 2u);
  CHECK(c.ledger().pairCount(busy[0], 0) + c.ledger().pairCount(busy[1], 0) == 10u);
  // A busy domain's connection closes: the busy domain (which has connections) may not go back
  // above server_max, but the quiet domain still waiting may use the reserve.
  double g[3 * 16];
  REQUIRE(c.drainGrants(g, 16) == 12u);
  REQUIRE(static_cast<uint32_t>(g[1]) == busy[0]);  // granted first
  REQUIRE(c.releaseConnection(g[0]) == Status::Ok);
  CHECK(c.maintainAll(3) == 1u);
  for (uint32_t d : quiet) CHECK(c.ledger().pairCount(d, 0) == 1u);
  CHECK(c.ledger().pairCount(busy[0], 0) == 4u);
  CHECK(c.ledger().total() == 12u);
  CHECK(c.checkInvariants());
}

// Regression: a call that may dip into the reserve takes at most one connection beyond
// server_max, so a busy pair with no connection yet cannot use up the reserve that a quiet domain
// needs (docs/decisions.md).
TEST_CASE("Core: busy domains starting from no connections leave the reserve to a quiet domain") {
  SUBCASE("two domains without connections share the reserve when server_max is full") {
    Core c(plainConfig(1, 10, 2));
    uint32_t busy, x, y;
    REQUIRE(c.addDomain(plainDomain(1, 0, 10), &busy) == Status::Ok);
    REQUIRE(c.addDomain(plainDomain(1, 0, 32), &x) == Status::Ok);
    REQUIRE(c.addDomain(plainDomain(1, 0, 32), &y) == Status::Ok);
    std::vector<double> ids(1000);
    size_t at;
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<double>(i + 1);
    REQUIRE(c.enqueueBatch(busy, 0, ids.data(), nullptr, 1000, 0, kNever, 0, &at) == Status::Ok);
    REQUIRE(c.maintainAll(0) == 10u);  // server_max reached by a domain with a max of 10
    for (auto& id : ids) id += 10000;
    REQUIRE(c.enqueueBatch(x, 0, ids.data(), nullptr, 100, 0, kNever, 0, &at) == Status::Ok);
    for (auto& id : ids) id += 10000;
    REQUIRE(c.enqueueBatch(y, 0, ids.data(), nullptr, 100, 0, kNever, 0, &at) == Status::Ok);
    c.maintainAll(1);
    CHECK(c.ledger().pairCount(x, 0) == 1u);
    CHECK(c.ledger().pairCount(y, 0) == 1u);
    return;
  }
  Core c(plainConfig(1, 10, 2));
  uint32_t a, b, q;
  REQUIRE(c.addDomain(plainDomain(1, 0, 32), &a) == Status::Ok);
  REQUIRE(c.addDomain(plainDomain(1, 0, 32), &b) == Status::Ok);
  REQUIRE(c.addDomain(plainDomain(1, 0, 32), &q) == Status::Ok);
  std::vector<double> ids(1000);
  size_t at;
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<double>(i + 1);
  REQUIRE(c.enqueueBatch(a, 0, ids.data(), nullptr, 1000, 0, kNever, 0, &at) == Status::Ok);
  for (auto& id : ids) id += 10000;
  REQUIRE(c.enqueueBatch(b, 0, ids.data(), nullptr, 1000, 0, kNever, 0, &at) == Status::Ok);
  REQUIRE(c.enqueue(q, 0, 99999, 0, 0, kNever, 0) == Status::Ok);
  c.maintainAll(0);
  CHECK(c.ledger().pairCount(q, 0) == 1u);
  CHECK(c.ledger().pairCount(a, 0) + c.ledger().pairCount(b, 0) <= 10u);
}

TEST_CASE("Core: maintainDomain with a goal size and a reserve override") {
  Core c(plainConfig(2, 4, 3));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(2), &d) == Status::Ok);
  std::vector<double> ids(40);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<double>(i + 1);
  size_t at;
  REQUIRE(c.enqueueBatch(d, 0, ids.data(), nullptr, 40, 0, kNever, 0, &at) == Status::Ok);
  // goalsz 2 asks for two more than the pair has; the override keeps the whole reserve back.
  CHECK(c.maintainDomain(d, 0, 2, 3) == 2u);
  CHECK(c.maintainDomain(d, 0, 2, 3) == 2u);
  CHECK(c.maintainDomain(d, 0, 2, 3) == 0u);  // server_max 4 reached
  CHECK(c.maintainDomain(d, 0, 2, 0) == 1u);  // the override lets it into the reserve, one a call
  CHECK(c.maintainDomain(d, 0, 5, 0) == 1u);
  CHECK(c.maintainDomain(d, 0, 5, 0) == 1u);
  CHECK(c.maintainDomain(d, 0, 5, 0) == 0u);  // server_max + server_reserve = 7
  CHECK(c.ledger().total() == 7u);
  CHECK(c.ledger().pairCount(d, 1) == 0u);  // nothing queued on binding 1
  CHECK(c.pendingGrants() == 7u);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: the attempt count saturates instead of wrapping") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 7, 0, 0, kNever, 0) == Status::Ok);
  double out[1];
  bool ok = true;
  for (int i = 0; i < 65540 && ok; ++i) {
    ok = c.take(d, 0, 1, 0, out) == 1 && out[0] == 7.0 && c.defer(7, 0, 0) == Status::Ok;
  }
  CHECK(ok);
  MessageInfo info{};
  REQUIRE(c.locate(7, &info) == Status::Ok);
  CHECK(info.attempts == 0xffffu);
  CHECK(info.place == Place::Active);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: bindings are visited from a rotating start") {
  // A domain capped at one connection, mail on both bindings: successive passes alternate.
  Core c(plainConfig(2));
  DomainLimits dl = plainDomain(2);
  dl.scopeMax = 1;
  uint32_t d;
  REQUIRE(c.addDomain(dl, &d) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 1, 0, 0, kNever, 0) == Status::Ok);
  REQUIRE(c.enqueue(d, 1, 2, 0, 0, kNever, 0) == Status::Ok);
  uint32_t servedBy[2] = {0, 0};
  for (int pass = 0; pass < 6; ++pass) {
    REQUIRE(c.maintainAll(pass) == 1u);
    double g[3];
    REQUIRE(c.drainGrants(g, 1) == 1u);
    ++servedBy[static_cast<uint32_t>(g[2])];
    REQUIRE(c.releaseConnection(g[0]) == Status::Ok);
  }
  CHECK(servedBy[0] == 3u);
  CHECK(servedBy[1] == 3u);
}

TEST_CASE("Core: domains are visited from a rotating start") {
  // One connection in the whole server: successive passes serve the domains in turn.
  Core c(plainConfig(1, 1, 0));
  uint32_t d[3];
  for (uint32_t i = 0; i < 3; ++i) {
    REQUIRE(c.addDomain(plainDomain(1), &d[i]) == Status::Ok);
    REQUIRE(c.enqueue(d[i], 0, 10 + i, 0, 0, kNever, 0) == Status::Ok);
  }
  uint32_t servedBy[3] = {0, 0, 0};
  for (int pass = 0; pass < 9; ++pass) {
    REQUIRE(c.maintainAll(pass) == 1u);
    double g[3];
    REQUIRE(c.drainGrants(g, 1) == 1u);
    ++servedBy[static_cast<uint32_t>(g[1])];
    REQUIRE(c.releaseConnection(g[0]) == Status::Ok);
  }
  CHECK(servedBy[0] == 3u);
  CHECK(servedBy[1] == 3u);
  CHECK(servedBy[2] == 3u);
}

TEST_CASE("Core: counters track every place and binding") {
  Core c(plainConfig(2));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(2), &d) == Status::Ok);
  CHECK(c.counterCount() == kFixedCounters + 4u);
  CHECK(std::string(counterName(kConnections)) == "connections");
  CHECK(std::string(counterName(kExpired)) == "expired");
  CHECK(counterName(kFixedCounters) == nullptr);
  const double* k = c.counters();
  CHECK(k[kDomains] == 1.0);
  REQUIRE(c.enqueue(d, 1, 1, 0, 0, kNever, 0) == Status::Ok);
  REQUIRE(c.enqueue(d, 1, 2, 0, 0, kNever, 0) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 3, 0, 50, kNever, 0) == Status::Ok);
  CHECK(k[kActive] == 2.0);
  CHECK(k[kDelayed] == 1.0);
  CHECK(k[kFixedCounters + 2 + 1] == 2.0);  // active, binding 1
  CHECK(k[kFixedCounters + 2 + 0] == 0.0);
  double out[2];
  REQUIRE(c.take(d, 1, 1, 0, out) == 1u);
  CHECK(k[kInFlight] == 1.0);
  CHECK(k[kActive] == 1.0);
  CHECK(k[kFixedCounters + 2 + 1] == 1.0);
  CHECK(c.maintainAll(0) == 1u);
  CHECK(k[kConnections] == 1.0);
  CHECK(k[kFixedCounters + 1] == 1.0);  // connections, binding 1
  CHECK(k[kOpened] == 1.0);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: outbound_throttle_messages limits what take() hands out, per window") {
  Core c(plainConfig(1));
  int32_t t = c.ledger().addThrottle(3, 1000);
  REQUIRE(t >= 0);
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  REQUIRE(c.ledger().setMessageThrottle(d, 0, t) == Status::Ok);
  CHECK(c.ledger().setMessageThrottle(d, 0, t + 1) == Status::BadArgument);
  std::vector<double> ids(10);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<double>(i + 1);
  size_t at;
  REQUIRE(c.enqueueBatch(d, 0, ids.data(), nullptr, ids.size(), 0, kNever, 0, &at) == Status::Ok);
  double out[10];
  CHECK(c.take(d, 0, 10, 0, out) == 3u);
  CHECK(c.take(d, 0, 10, 999, out) == 0u);
  CHECK(c.messageNextAllowedAt(d, 0, 999) == 1000.0);
  CHECK(c.take(d, 0, 2, 1000, out) == 2u);
  CHECK(c.take(d, 0, 10, 1000, out) == 1u);
  CHECK(c.activeSize(d, 0) == 4u);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: migrateConnection moves a lease to a sibling domain within its limits") {
  Core c(plainConfig(1, 10, 0));
  uint32_t a, b, full;
  REQUIRE(c.addDomain(plainDomain(1, 0, 4), &a) == Status::Ok);
  REQUIRE(c.addDomain(plainDomain(1, 0, 1), &b) == Status::Ok);
  REQUIRE(c.addDomain(plainDomain(1, 0, 0), &full) == Status::Ok);
  double id = 1;
  REQUIRE(c.enqueue(a, 0, id, 0, 0, kNever, 0) == Status::Ok);
  REQUIRE(c.openConnections(a, 0, 2, 0, 0) == 2u);
  double g[6];
  REQUIRE(c.drainGrants(g, 2) == 2u);
  CHECK(c.migrateConnection(g[0], b) == Status::Ok);
  CHECK(c.ledger().pairCount(a, 0) == 1u);
  CHECK(c.ledger().pairCount(b, 0) == 1u);
  CHECK(c.ledger().total() == 2u);
  CHECK(c.migrateConnection(g[3], b) == Status::TooMany);     // b allows 1
  CHECK(c.migrateConnection(g[3], full) == Status::TooMany);  // max 0
  CHECK(c.migrateConnection(g[3], a) == Status::Ok);          // already there: nothing moves
  CHECK(c.migrateConnection(999, b) == Status::UnknownConnection);
  CHECK(c.migrateConnection(g[0] + 0.5, a) == Status::UnknownConnection);
  CHECK(c.checkInvariants());
  CHECK(c.releaseConnection(g[0]) == Status::Ok);  // released from where it moved
  CHECK(c.ledger().pairCount(b, 0) == 0u);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: takeFor takes from the pair its lease names, after a migrate from the new domain") {
  Core c(plainConfig(2, 10, 0));
  uint32_t a, b;
  REQUIRE(c.addDomain(plainDomain(2, 0, 4), &a) == Status::Ok);
  REQUIRE(c.addDomain(plainDomain(2, 0, 4), &b) == Status::Ok);
  const double onA0[] = {1, 2, 3}, onA1[] = {4, 5}, onB1[] = {6, 7};
  size_t failed = 0;
  REQUIRE(c.enqueueBatch(a, 0, onA0, nullptr, 3, 0, kNever, 0, &failed) == Status::Ok);
  REQUIRE(c.enqueueBatch(a, 1, onA1, nullptr, 2, 0, kNever, 0, &failed) == Status::Ok);
  REQUIRE(c.enqueueBatch(b, 1, onB1, nullptr, 2, 0, kNever, 0, &failed) == Status::Ok);
  REQUIRE(c.openConnections(a, 1, 1, 0, 0) == 1u);
  double g[3];
  REQUIRE(c.drainGrants(g, 1) == 1u);
  double out[4] = {0, 0, 0, 0};
  size_t n = 99;
  CHECK(c.takeFor(g[0], 1, 0, out, &n) == Status::Ok);  // (a, 1), not (a, 0)
  CHECK(n == 1u);
  CHECK(out[0] == 4);
  CHECK(c.takeFor(g[0], 4, 0, out, &n) == Status::Ok);
  CHECK(n == 1u);
  CHECK(out[0] == 5);
  CHECK(c.takeFor(g[0], 4, 0, out, &n) == Status::Ok);  // (a, 1) is empty
  CHECK(n == 0u);
  REQUIRE(c.migrateConnection(g[0], b) == Status::Ok);
  CHECK(c.takeFor(g[0], 4, 0, out, &n) == Status::Ok);  // now (b, 1)
  CHECK(n == 2u);
  CHECK((out[0] == 6 && out[1] == 7));
  CHECK(c.activeSize(a, 0) == 3u);
  // No such connection: a bad id, one never issued, one released; a bad now. Nothing is taken.
  n = 99;
  CHECK(c.takeFor(g[0] + 0.5, 4, 0, out, &n) == Status::UnknownConnection);
  CHECK(n == 0u);
  CHECK(c.takeFor(0, 4, 0, out, &n) == Status::UnknownConnection);
  CHECK(c.takeFor(kNaN, 4, 0, out, &n) == Status::UnknownConnection);
  CHECK(c.takeFor(g[0] + 1, 4, 0, out, &n) == Status::UnknownConnection);
  CHECK(c.takeFor(g[0], 4, kNaN, out, &n) == Status::BadArgument);
  CHECK(c.takeFor(g[0], 4, kInf, out, &n) == Status::BadArgument);
  REQUIRE(c.releaseConnection(g[0]) == Status::Ok);
  CHECK(c.takeFor(g[0], 4, 0, out, &n) == Status::UnknownConnection);
  CHECK(n == 0u);
  CHECK(c.activeSize(a, 0) == 3u);
  CHECK(c.counters()[kInFlight] == 4);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: flushDomain, failDomain, retryNow, delayedByBinding, nextDueAt") {
  Core c(plainConfig(2));
  uint32_t d, e;
  REQUIRE(c.addDomain(plainDomain(2), &d) == Status::Ok);
  REQUIRE(c.addDomain(plainDomain(2), &e) == Status::Ok);
  CHECK(c.nextDueAt() == kNever);
  REQUIRE(c.enqueue(d, 0, 1, 0, 5000, kNever, 0) == Status::Ok);
  REQUIRE(c.enqueue(d, 1, 2, 0, 3000, kNever, 0) == Status::Ok);
  REQUIRE(c.enqueue(d, 1, 3, 0, 4000, 4500, 0) == Status::Ok);  // expires before a flush at 4600
  REQUIRE(c.enqueue(e, 0, 4, 0, 2000, kNever, 0) == Status::Ok);
  REQUIRE(c.enqueue(d, 0, 5, 0, 0, kNever, 0) == Status::Ok);
  CHECK(c.nextDueAt() == 2000.0);
  double per[2];
  c.delayedByBinding(d, per);
  CHECK(per[0] == 1.0);
  CHECK(per[1] == 2.0);
  CHECK(c.retryNow(4, 100) == Status::Ok);
  CHECK(c.retryNow(4, 100) == Status::UnknownId);  // active now, not delayed
  CHECK(c.retryNow(5, 100) == Status::UnknownId);
  CHECK(c.activeSize(e, 0) == 1u);
  CHECK(c.nextDueAt() == 3000.0);
  // flush at 4600: 3 has expired (bounced); 1 and 2 become due now, in flush order.
  CHECK(c.flushDomain(d, 4600) == 2u);
  CHECK(c.pendingExpired() == 1u);
  CHECK(c.delayedSize(d) == 0u);
  CHECK(peekAllActive(c, d, 0) == std::vector<double>{5, 1});
  CHECK(peekAllActive(c, d, 1) == std::vector<double>{2});
  // fail takes everything queued of d, a few at a time; e is untouched.
  double out[2];
  std::vector<double> failed;
  size_t n;
  while ((n = c.failDomain(d, out, 2)) > 0) failed.insert(failed.end(), out, out + n);
  std::sort(failed.begin(), failed.end());
  CHECK(failed == std::vector<double>{1, 2, 5});
  CHECK(c.activeTotal(d) == 0u);
  CHECK(c.activeSize(e, 0) == 1u);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: settleBatch settles all or nothing") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  std::vector<double> ids{1, 2, 3, 4, 5};
  size_t at;
  REQUIRE(c.enqueueBatch(d, 0, ids.data(), nullptr, ids.size(), 0, kNever, 0, &at) == Status::Ok);
  double out[4];
  REQUIRE(c.take(d, 0, 4, 0, out) == 4u);  // 1..4 in flight, 5 queued
  double dup[3] = {1, 2, 1};
  CHECK(c.settleBatch(dup, 3, &at) == Status::DuplicateId);
  CHECK(at == 2u);
  double queued[2] = {3, 5};
  CHECK(c.settleBatch(queued, 2, &at) == Status::NotInFlight);
  CHECK(at == 1u);
  double unknown[2] = {3, 99};
  CHECK(c.settleBatch(unknown, 2, &at) == Status::UnknownId);
  double bad[1] = {-1};
  CHECK(c.settleBatch(bad, 1, &at) == Status::BadArgument);
  CHECK(c.counters()[kInFlight] == 4.0);  // nothing changed
  CHECK(c.checkInvariants());
  double good[3] = {4, 2, 1};
  CHECK(c.settleBatch(good, 3, &at) == Status::Ok);
  CHECK(c.counters()[kInFlight] == 1.0);
  MessageInfo mi{};
  CHECK(c.locate(2, &mi) == Status::UnknownId);
  CHECK(c.locate(3, &mi) == Status::Ok);
  CHECK(c.settleBatch(good, 0, &at) == Status::Ok);  // empty batch
  CHECK(c.checkInvariants());
}

// collectInFlight() looks for a batch's ids among the last take's messages before the id index;
// what it finds there must be exactly what the index would give.
TEST_CASE("Core: outcomes of the last take's messages, found without the index, are checked as any") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  std::vector<double> ids{1, 2, 3, 4, 5, 6};
  size_t at;
  // An empty batch (an empty typed array may have no storage) before any take, and after one.
  CHECK(c.settleBatch(nullptr, 0, &at) == Status::Ok);
  CHECK(c.deferBatch(nullptr, 0, 50, 0, &at) == Status::Ok);
  REQUIRE(c.enqueueBatch(d, 0, ids.data(), nullptr, ids.size(), 0, kNever, 0, &at) == Status::Ok);
  double out[4];
  REQUIRE(c.take(d, 0, 4, 0, out) == 4u);  // 1..4 in flight
  CHECK(c.settleBatch(nullptr, 0, &at) == Status::Ok);
  double first[1] = {1};
  REQUIRE(c.settleBatch(first, 1, &at) == Status::Ok);
  // 1 is gone (its record freed, its id still in the last take's list): unknown, not a repeat.
  double again[2] = {1, 2};
  CHECK(c.settleBatch(again, 2, &at) == Status::UnknownId);
  CHECK(at == 0u);
  // 1's handle is given to a new message: 1 is still unknown, and the new one is not in flight.
  double fresh[1] = {7};
  REQUIRE(c.enqueueBatch(d, 0, fresh, nullptr, 1, 0, kNever, 0, &at) == Status::Ok);
  CHECK(c.settleBatch(again, 2, &at) == Status::UnknownId);
  double seven[1] = {7};
  CHECK(c.settleBatch(seven, 1, &at) == Status::NotInFlight);
  // 3 put back in the queue: not in flight, though the last take holds it.
  REQUIRE(c.untake(3) == Status::Ok);
  double three[2] = {2, 3};
  CHECK(c.settleBatch(three, 2, &at) == Status::NotInFlight);
  CHECK(at == 1u);
  // Out of the take's order (4 before 2): the rest found through the index.
  double outOfOrder[2] = {4, 2};
  CHECK(c.deferBatch(outOfOrder, 2, 50, 0, &at) == Status::Ok);
  MessageInfo mi{};
  REQUIRE(c.locate(2, &mi) == Status::Ok);
  CHECK(mi.place == Place::Delayed);
  REQUIRE(c.locate(4, &mi) == Status::Ok);
  CHECK(mi.place == Place::Delayed);
  CHECK(c.counters()[kInFlight] == 0.0);
  CHECK(c.checkInvariants());
}

// Ids 1..n, and their priorities with every seventh message urgent (the lazy-cancel cases).
static std::vector<double> idsFrom1(size_t n) {
  std::vector<double> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<double>(i + 1);
  return ids;
}
static std::vector<uint8_t> everySeventhUrgent(size_t n) {
  std::vector<uint8_t> prios(n);
  for (size_t i = 0; i < n; ++i) prios[i] = static_cast<uint8_t>(i % 7 == 0);
  return prios;
}

TEST_CASE("Core: cancel of active mail is lazy; dead entries are skipped, dropped and purged") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  const size_t n = 600;
  std::vector<double> ids = idsFrom1(n);
  std::vector<uint8_t> prios = everySeventhUrgent(n);
  size_t at;
  REQUIRE(c.enqueueBatch(d, 0, ids.data(), prios.data(), n, 0, kNever, 0, &at) == Status::Ok);
  std::vector<double> want = peekAllActive(c, d, 0);
  // Cancel every third message, and the front ones of both priorities.
  std::set<double> gone;
  for (size_t i = 0; i < n; i += 3) gone.insert(ids[i]);
  gone.insert(8);  // urgent (i = 7)
  gone.insert(2);
  for (double id : gone) {
    REQUIRE(c.cancel(id) == Status::Ok);
    CHECK(c.cancel(id) == Status::UnknownId);  // the id is gone at once
  }
  CHECK(c.checkInvariants());
  want.erase(std::remove_if(want.begin(), want.end(), [&](double id) { return gone.count(id) > 0; }), want.end());
  CHECK(c.activeSize(d, 0) == want.size());
  CHECK(c.counters()[kActive] == static_cast<double>(want.size()));
  CHECK(peekAllActive(c, d, 0) == want);
  double page[5];
  REQUIRE(c.peekActive(d, 0, 10, page, 5) == 5u);
  CHECK(std::vector<double>(page, page + 5) == std::vector<double>(want.begin() + 10, want.begin() + 15));
  // A cancelled id may come back as a new message while its dead entry still waits in the queue.
  REQUIRE(c.enqueue(d, 0, 2, 0, 0, kNever, 0) == Status::Ok);
  want.push_back(2);
  CHECK(c.checkInvariants());
  // take() hands out live messages only, in order, k of them.
  std::vector<double> got;
  double out[7];
  for (;;) {
    size_t k = c.take(d, 0, 7, 0, out);
    if (k == 0) break;
    CHECK((k == 7 || got.size() + k == want.size()));
    got.insert(got.end(), out, out + k);
    CHECK(c.checkInvariants());
  }
  CHECK(got == want);
  CHECK(c.activeSize(d, 0) == 0u);
  // Every dead entry was dropped: only the in-flight messages hold handles.
  size_t settleAt;
  REQUIRE(c.settleBatch(got.data(), got.size(), &settleAt) == Status::Ok);
  CHECK(c.checkInvariants());
  CHECK(c.counters()[kInFlight] == 0.0);
}

TEST_CASE("Core: a queue whose live entries are all cancelled is purged at once") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  std::vector<double> ids(300);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<double>(i + 1);
  size_t at;
  REQUIRE(c.enqueueBatch(d, 0, ids.data(), nullptr, ids.size(), 0, 5000, 0, &at) == Status::Ok);
  // Many cancels: the dead outnumber the live more than two to one, so the queue purges itself
  // (checkInvariants refuses a queue that should have been purged).
  for (size_t i = 0; i < ids.size() - 1; ++i) {
    REQUIRE(c.cancel(ids[i]) == Status::Ok);
    REQUIRE(c.checkInvariants());
  }
  CHECK(c.activeSize(d, 0) == 1u);
  // Expiry sweeps skip dead entries; the last live one expires and the queue is empty.
  CHECK(c.expireActive(d, 6000) == 1u);
  double exp[2];
  CHECK(c.drainExpired(exp, 2) == 1u);
  CHECK(exp[0] == 300.0);
  CHECK(c.activeSize(d, 0) == 0u);
  CHECK(c.checkInvariants());
  // Cancel the last live message of a queue holding dead ones: nothing is left behind.
  REQUIRE(c.enqueueBatch(d, 0, ids.data(), nullptr, 10, 0, kNever, 0, &at) == Status::Ok);
  REQUIRE(c.cancel(1) == Status::Ok);
  REQUIRE(c.cancel(2) == Status::Ok);
  double f[16];
  CHECK(c.failDomain(d, f, 16) == 8u);
  CHECK(f[0] == 3.0);
  CHECK(c.checkInvariants());
  CHECK(c.counters()[kActive] == 0.0);
}

TEST_CASE("Core: enqueueBatchAt places each message by its own time; deferBatch is all or nothing") {
  Core c(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  double ids[5] = {1, 2, 3, 4, 5};
  double times[5] = {100, 50, 500, 100, 2000};
  size_t at;
  double bad[5] = {1, 2, 3, 4, kNaN};
  CHECK(c.enqueueBatchAt(d, 0, ids, nullptr, bad, 5, 1000, 100, &at) == Status::BadArgument);
  CHECK(at == 4u);
  CHECK(c.counters()[kActive] == 0.0);
  REQUIRE(c.enqueueBatchAt(d, 0, ids, nullptr, times, 5, 1000, 100, &at) == Status::Ok);
  CHECK(peekAllActive(c, d, 0) == std::vector<double>{2, 1, 4});
  CHECK(peekAllDelayed(c, d) == std::vector<double>{3});
  double exp[2];
  CHECK(c.drainExpired(exp, 2) == 1u);  // 5: first attempt at or after its expiry
  CHECK(exp[0] == 5.0);
  double out[3];
  REQUIRE(c.take(d, 0, 3, 100, out) == 3u);
  double dup[2] = {2, 2};
  CHECK(c.deferBatch(dup, 2, 300, 100, &at) == Status::DuplicateId);
  CHECK(at == 1u);
  double queued[2] = {2, 3};
  CHECK(c.deferBatch(queued, 2, 300, 100, &at) == Status::NotInFlight);
  CHECK(c.deferBatch(out, 3, kNaN, 100, &at) == Status::BadArgument);
  CHECK(c.counters()[kInFlight] == 3.0);
  CHECK(c.checkInvariants());
  double late[1] = {4};
  REQUIRE(c.deferBatch(late, 1, 1000, 100, &at) == Status::Ok);  // at its expiry: expires
  CHECK(c.drainExpired(exp, 2) == 1u);
  CHECK(exp[0] == 4.0);
  double two[2] = {2, 1};
  REQUIRE(c.deferBatch(two, 2, 300, 100, &at) == Status::Ok);
  CHECK(peekAllDelayed(c, d) == std::vector<double>{2, 1, 3});
  CHECK(c.counters()[kInFlight] == 0.0);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: maintainSlice visits a pass's snapshot of due domains in slices, each once") {
  Core c(plainConfig(1));
  std::vector<uint32_t> doms(10);
  for (auto& d : doms) REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  size_t at;
  for (uint32_t i = 0; i < 10; ++i) {
    double id = 100 + i;
    REQUIRE(c.enqueueBatch(doms[i], 0, &id, nullptr, 1, 0, kNever, 0, &at) == Status::Ok);
  }
  std::set<double> opened;
  double g[3 * 16];
  size_t visited, remaining;
  size_t wantRemaining[4] = {7, 4, 1, 0};
  for (int slice = 0; slice < 4; ++slice) {
    uint32_t n = c.maintainSlice(0, 3, SIZE_MAX, false, &visited, &remaining);
    CHECK(visited == (slice < 3 ? 3u : 1u));
    CHECK(remaining == wantRemaining[slice]);
    CHECK(c.drainGrants(g, 16) == n);
    for (uint32_t k = 0; k < n; ++k) CHECK(opened.insert(g[3 * k + 1]).second);
    // The first slice's domains deliver their mail and stop being due: the pass keeps its
    // snapshot, so nothing after them is skipped.
    if (slice == 0) {
      double out[1];
      for (double d : opened) REQUIRE(c.take(static_cast<uint32_t>(d), 0, 1, 0, out) == 1u);
    }
  }
  CHECK(opened.size() == 10u);
  // A fresh slice abandons a pass in progress; a whole pass reports every due domain.
  c.maintainSlice(0, 2, SIZE_MAX, false, &visited, &remaining);
  CHECK(remaining == 5u);  // seven domains still have mail
  c.maintainSlice(0, 2, SIZE_MAX, true, &visited, &remaining);
  CHECK(remaining == 5u);
  CHECK(c.maintainSlice(0, 100, SIZE_MAX, true, &visited, &remaining) == 0u);
  CHECK(visited == 7u);
  CHECK(remaining == 0u);
  size_t n = 0;
  uint32_t list[8];
  n = c.nextSlice(0, 8, true, list, &remaining);
  CHECK(n == 7u);
  CHECK(remaining == 0u);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: maintainSlice with a grant cap ends after the domain that reached it") {
  Core c(plainConfig(1));
  std::vector<uint32_t> doms(6);
  DomainLimits dl = plainDomain(1);
  dl.pairs[0].maxConnections = 2;
  dl.pairs[0].aggressiveness = 1;
  for (auto& d : doms) REQUIRE(c.addDomain(dl, &d) == Status::Ok);
  size_t at;
  for (uint32_t i = 0; i < 6; ++i) {
    std::vector<double> ids(40);
    for (size_t j = 0; j < ids.size(); ++j) ids[j] = i * 100 + j + 1;
    REQUIRE(c.enqueueBatch(doms[i], 0, ids.data(), nullptr, ids.size(), 0, kNever, 0, &at) == Status::Ok);
  }
  size_t visited, remaining;
  CHECK(c.maintainSlice(0, 100, 3, false, &visited, &remaining) == 4u);  // two domains of two
  CHECK(visited == 2u);
  CHECK(remaining == 4u);
  CHECK(c.maintainSlice(0, 100, 100, false, &visited, &remaining) == 8u);
  CHECK(visited == 4u);
  CHECK(remaining == 0u);
  CHECK(c.checkInvariants());
}

// ---------------------------------------------------------------------------------------------
// cancelBatch: cancel() for a batch; unknown and repeated ids skipped, all or nothing on an id in
// flight or not an id.

namespace {

// Everything a cancel can change, for before/after comparisons: the counters, every queue's live
// order, every delayed queue, and the place of every id in [0, idRange).
struct CoreState {
  std::vector<double> counters;
  std::vector<std::vector<double>> active, delayed;
  std::vector<std::tuple<Status, uint32_t, uint32_t, int, int, double, double>> places;
  bool operator==(const CoreState& o) const {
    return counters == o.counters && active == o.active && delayed == o.delayed && places == o.places;
  }
};

CoreState stateOf(const Core& c, double idRange) {
  CoreState s;
  s.counters.assign(c.counters(), c.counters() + c.counterCount());
  for (uint32_t d = 0; d < c.domains(); ++d) {
    for (uint32_t b = 0; b < c.bindings(); ++b) s.active.push_back(peekAllActive(c, d, b));
    s.delayed.push_back(peekAllDelayed(c, d));
  }
  for (double id = 0; id < idRange; ++id) {
    MessageInfo mi{};
    Status st = c.locate(id, &mi);
    if (st == Status::Ok)
      s.places.emplace_back(st, mi.domain, mi.binding, static_cast<int>(mi.place), mi.priority, mi.nextAttempt,
                            mi.expiresAt);
    else
      s.places.emplace_back(st, 0, 0, 0, 0, 0, 0);
  }
  return s;
}

// Domain 0: binding 0 holds 1..10 (3 and 7 urgent), binding 1 holds 11 and 12; 20, 21, 22 wait
// in the delayed queue; 3 and 7 (served first) are taken into flight.
void cancelFixture(Core& c) {
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(2), &d) == Status::Ok);
  REQUIRE(d == 0u);
  size_t at;
  const double a[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  const uint8_t prios[] = {0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
  REQUIRE(c.enqueueBatch(0, 0, a, prios, 10, 100, kNever, 100, &at) == Status::Ok);
  const double b[] = {11, 12};
  REQUIRE(c.enqueueBatch(0, 1, b, nullptr, 2, 100, kNever, 100, &at) == Status::Ok);
  const double later[] = {20, 21, 22};
  const double times[] = {500, 600, 700};
  REQUIRE(c.enqueueBatchAt(0, 0, later, nullptr, times, 3, kNever, 100, &at) == Status::Ok);
  double out[2];
  REQUIRE(c.take(0, 0, 2, 100, out) == 2u);
  REQUIRE(out[0] == 3.0);
  REQUIRE(out[1] == 7.0);
}

}  // namespace

TEST_CASE("Core: cancelBatch cancels queued mail, skips unknown and repeated ids, and counts what it cancelled") {
  Core c(plainConfig(2));
  cancelFixture(c);
  const double* k = c.counters();
  const uint32_t B = c.bindings();
  REQUIRE(k[kActive] == 10.0);
  REQUIRE(k[kDelayed] == 3.0);
  const double removedBefore = k[kActiveRemoved];
  // 4 and 5 active, 20 delayed, 11 active on binding 1; 99, 0 and 2^53-1 unknown; 4 and 20 twice.
  const double ids[] = {4, 99, 5, 4, 20, kMaxId, 20, 11, 0};
  size_t at = 77, cancelled = 77;
  double names[9] = {-1, -1, -1, -1, -1, -1, -1, -1, -1};
  CHECK(c.cancelBatch(ids, 9, &at, &cancelled, names) == Status::Ok);
  CHECK(cancelled == 4u);
  CHECK(at == 0u);
  // The ids it cancelled, in batch order, each once; nothing written past them.
  CHECK(std::vector<double>(names, names + 5) == std::vector<double>{4, 5, 20, 11, -1});
  CHECK(k[kActive] == 7.0);
  CHECK(k[kDelayed] == 2.0);
  CHECK(k[kInFlight] == 2.0);
  CHECK(k[kActiveRemoved] == removedBefore + 3);  // the delayed one never was in an active queue
  CHECK(k[kFixedCounters + B + 0] == 6.0);
  CHECK(k[kFixedCounters + B + 1] == 1.0);
  MessageInfo mi{};
  for (double id : {4.0, 5.0, 20.0, 11.0}) CHECK(c.locate(id, &mi) == Status::UnknownId);
  CHECK(c.activeSize(0, 0) == 6u);
  CHECK(c.activeTotal(0) == 7u);
  CHECK(peekAllActive(c, 0, 0) == std::vector<double>{1, 2, 6, 8, 9, 10});
  CHECK(peekAllActive(c, 0, 1) == std::vector<double>{12});
  CHECK(peekAllDelayed(c, 0) == std::vector<double>{21, 22});
  CHECK(c.checkInvariants());
  // The same batch again cancels nothing and changes nothing; so does an empty one.
  CoreState before = stateOf(c, 30);
  CHECK(c.cancelBatch(ids, 9, &at, &cancelled) == Status::Ok);
  CHECK(cancelled == 0u);
  cancelled = 77;
  CHECK(c.cancelBatch(ids, 0, &at, &cancelled) == Status::Ok);
  CHECK(cancelled == 0u);
  CHECK(c.cancelBatch(nullptr, 0, &at, &cancelled) == Status::Ok);
  CHECK(cancelled == 0u);
  CHECK(stateOf(c, 30) == before);
  CHECK(c.checkInvariants());
  // take() serves the live messages in order, past the dead entries.
  double out[8];
  REQUIRE(c.take(0, 0, 8, 100, out) == 6u);
  CHECK(std::vector<double>(out, out + 6) == std::vector<double>{1, 2, 6, 8, 9, 10});
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: cancelBatch refuses a batch with an id in flight or not an id, whole, and names it") {
  Core c(plainConfig(2));
  cancelFixture(c);
  const CoreState before = stateOf(c, 30);
  struct Case {
    std::vector<double> ids;
    Status want;
    size_t at;
  };
  const std::vector<Case> cases = {
      {{3}, Status::InFlight, 0},
      {{4, 20, 11, 7, 5}, Status::InFlight, 3},     // active, delayed, other binding, then in flight
      {{99, 4, 4, 20, 3, 7}, Status::InFlight, 4},  // unknown and repeated ids before it
      {{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 7}, Status::InFlight, 12},  // past the prefetch distance
      {{4, 3, kNaN}, Status::InFlight, 1},                              // the first bad entry is the one named
      {{kNaN}, Status::BadArgument, 0},
      {{4, 5, -1}, Status::BadArgument, 2},
      {{4, 0.5, 5}, Status::BadArgument, 1},
      {{20, 11, kTwo53}, Status::BadArgument, 2},
      {{kInf}, Status::BadArgument, 0},
      {{-kInf, 1}, Status::BadArgument, 0},
      {{4, 99, 4, -0.5}, Status::BadArgument, 3},
      {{4, 5, 6, 8, 9, 10, 11, 12, 20, 21, 1e300}, Status::BadArgument, 10},  // past the prefetch distance
      {{4, kNaN, 3}, Status::BadArgument, 1},                                 // bad id before the in-flight one
      {{1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 20, 21, 22, kNaN, 4.5}, Status::BadArgument, 13},  // all queued, then bad
  };
  for (const Case& k : cases) {
    CAPTURE(fmt(k.ids));
    size_t at = 77, cancelled = 77;
    CHECK(c.cancelBatch(k.ids.data(), k.ids.size(), &at, &cancelled) == k.want);
    CHECK(at == k.at);
    CHECK(cancelled == 0u);
    CHECK(stateOf(c, 30) == before);
    CHECK(c.checkInvariants());
  }
  // Settled, the same ids cancel what is queued.
  const double flown[] = {3, 7};
  size_t at, cancelled;
  REQUIRE(c.settleBatch(flown, 2, &at) == Status::Ok);
  const double again[] = {4, 20, 11, 7, 5, 3};
  CHECK(c.cancelBatch(again, 6, &at, &cancelled) == Status::Ok);
  CHECK(cancelled == 4u);
  CHECK(c.checkInvariants());
}

TEST_CASE("Core: cancelBatch of active mail is lazy, as cancel() is: purges during the batch, ids free at once") {
  // Two cores: one cancels in one batch, the twin by cancel() per id; they must stay the same.
  Core c(plainConfig(1)), twin(plainConfig(1));
  uint32_t d;
  REQUIRE(c.addDomain(plainDomain(1), &d) == Status::Ok);
  REQUIRE(twin.addDomain(plainDomain(1), &d) == Status::Ok);
  const size_t n = 900;
  std::vector<double> ids = idsFrom1(n);
  std::vector<uint8_t> prios = everySeventhUrgent(n);
  size_t at, cancelled;
  REQUIRE(c.enqueueBatch(0, 0, ids.data(), prios.data(), n, 0, kNever, 0, &at) == Status::Ok);
  REQUIRE(twin.enqueueBatch(0, 0, ids.data(), prios.data(), n, 0, kNever, 0, &at) == Status::Ok);
  std::vector<double> order = peekAllActive(c, 0, 0);

  SUBCASE("every third message and the fronts of both priorities, then the rest but one") {
    std::vector<double> batch;
    for (size_t i = 0; i < n; i += 3) batch.push_back(ids[i]);
    batch.push_back(8);  // the front urgent run
    batch.push_back(2);
    CHECK(c.cancelBatch(batch.data(), batch.size(), &at, &cancelled) == Status::Ok);
    CHECK(cancelled == batch.size());
    for (double id : batch) REQUIRE(twin.cancel(id) == Status::Ok);
    CHECK(stateOf(c, n + 2) == stateOf(twin, n + 2));
    CHECK(c.checkInvariants());
    std::set<double> gone(batch.begin(), batch.end());
    std::vector<double> live;
    for (double id : order)
      if (!gone.count(id)) live.push_back(id);
    CHECK(peekAllActive(c, 0, 0) == live);
    // The rest but the last live one, in one batch: the dead far outnumber the live, so the queue
    // purges during the call (checkInvariants refuses a queue left needing a purge).
    std::vector<double> rest(live.begin(), live.end() - 1);
    CHECK(c.cancelBatch(rest.data(), rest.size(), &at, &cancelled) == Status::Ok);
    CHECK(cancelled == rest.size());
    for (double id : rest) REQUIRE(twin.cancel(id) == Status::Ok);
    CHECK(c.activeSize(0, 0) == 1u);
    CHECK(c.counters()[kActive] == 1.0);
    CHECK(stateOf(c, n + 2) == stateOf(twin, n + 2));
    CHECK(c.checkInvariants());
    // The ids are free at once: enqueue some again (their dead entries may still be queued).
    const double back[] = {1, 2, 8};
    REQUIRE(c.enqueueBatch(0, 0, back, nullptr, 3, 0, kNever, 0, &at) == Status::Ok);
    CHECK(peekAllActive(c, 0, 0) == std::vector<double>{live.back(), 1, 2, 8});
    CHECK(c.checkInvariants());
    // Cancelled again in a batch that names each twice.
    const double twice[] = {8, 1, 8, 2, 1};
    CHECK(c.cancelBatch(twice, 5, &at, &cancelled) == Status::Ok);
    CHECK(cancelled == 3u);
    CHECK(peekAllActive(c, 0, 0) == std::vector<double>{live.back()});
    CHECK(c.checkInvariants());
  }
  SUBCASE("every live message of the queue in one batch, in reverse order and with repeats") {
    std::vector<double> batch(order.rbegin(), order.rend());
    batch.insert(batch.end(), order.begin(), order.begin() + 50);
    CHECK(c.cancelBatch(batch.data(), batch.size(), &at, &cancelled) == Status::Ok);
    CHECK(cancelled == n);
    CHECK(c.activeSize(0, 0) == 0u);
    CHECK(c.activeTotal(0) == 0u);
    CHECK(c.counters()[kActive] == 0.0);
    CHECK(c.counters()[kActiveRemoved] == static_cast<double>(n));
    CHECK(peekAllActive(c, 0, 0).empty());
    CHECK(c.isDue(0, 0) == false);
    CHECK(c.checkInvariants());
    double out[4];
    CHECK(c.take(0, 0, 4, 0, out) == 0u);
    CHECK(c.checkInvariants());
  }
  SUBCASE("cancelled entries at the front are dropped by take, which serves the rest in order") {
    std::vector<double> front(order.begin(), order.begin() + 100);
    CHECK(c.cancelBatch(front.data(), front.size(), &at, &cancelled) == Status::Ok);
    CHECK(cancelled == 100u);
    std::vector<double> out(n);
    CHECK(c.take(0, 0, 10, 0, out.data()) == 10u);
    CHECK(std::vector<double>(out.begin(), out.begin() + 10) ==
          std::vector<double>(order.begin() + 100, order.begin() + 110));
    CHECK(c.checkInvariants());
    // The ten in flight refuse a later batch that names one of them; the rest stays as it was.
    std::vector<double> mixed(order.begin() + 105, order.begin() + 130);
    CoreState before = stateOf(c, n + 2);
    CHECK(c.cancelBatch(mixed.data(), mixed.size(), &at, &cancelled) == Status::InFlight);
    CHECK(at == 0u);
    CHECK(stateOf(c, n + 2) == before);
    std::vector<double> queued(order.begin() + 110, order.begin() + 130);
    CHECK(c.cancelBatch(queued.data(), queued.size(), &at, &cancelled) == Status::Ok);
    CHECK(cancelled == 20u);
    CHECK(c.take(0, 0, n, 0, out.data()) == n - 130);
    CHECK(std::vector<double>(out.begin(), out.begin() + (n - 130)) ==
          std::vector<double>(order.begin() + 130, order.end()));
    CHECK(c.checkInvariants());
  }
}

TEST_CASE("Core: cancelBatch agrees with cancel() one id at a time, on random batches among random traffic") {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    CAPTURE(seed);
    Rng rng(seed * 7919);
    const uint32_t B = 2;
    const double idRange = 200;
    Core c(plainConfig(B)), twin(plainConfig(B));
    for (int i = 0; i < 3; ++i) {
      uint32_t d;
      REQUIRE(c.addDomain(plainDomain(B), &d) == Status::Ok);
      REQUIRE(twin.addDomain(plainDomain(B), &d) == Status::Ok);
    }
    double now = 1000;
    size_t refusedInFlight = 0, refusedBad = 0, total = 0;
    auto inFlight = [&]() {
      std::vector<double> v;
      MessageInfo mi{};
      for (double id = 0; id < idRange; ++id)
        if (twin.locate(id, &mi) == Status::Ok && mi.place == Place::InFlight) v.push_back(id);
      return v;
    };
    for (int step = 0; step < 600; ++step) {
      CAPTURE(step);
      uint64_t what = rng.below(10);
      size_t at, at2;
      if (what < 3) {
        // Ids not held by the core (fresh or cancelled lately), due now or later, some urgent.
        std::vector<double> ids, times;
        std::vector<uint8_t> prios;
        size_t want = rng.below(40);
        MessageInfo mi{};
        for (size_t tries = 0; ids.size() < want && tries < 200; ++tries) {
          double id = static_cast<double>(rng.below(static_cast<uint64_t>(idRange)));
          if (twin.locate(id, &mi) == Status::Ok || std::find(ids.begin(), ids.end(), id) != ids.end()) continue;
          ids.push_back(id);
          times.push_back(rng.chance(0.3) ? now + 100.0 * static_cast<double>(1 + rng.below(5)) : now);
          prios.push_back(static_cast<uint8_t>(rng.chance(0.25)));
        }
        uint32_t d = static_cast<uint32_t>(rng.below(3)), b = static_cast<uint32_t>(rng.below(B));
        double exp = rng.chance(0.2) ? now + 300 : kNever;
        Status s1 = c.enqueueBatchAt(d, b, ids.data(), prios.data(), times.data(), ids.size(), exp, now, &at);
        Status s2 = twin.enqueueBatchAt(d, b, ids.data(), prios.data(), times.data(), ids.size(), exp, now, &at2);
        REQUIRE(s1 == Status::Ok);
        REQUIRE(s2 == Status::Ok);
      } else if (what == 3) {
        uint32_t d = static_cast<uint32_t>(rng.below(3)), b = static_cast<uint32_t>(rng.below(B));
        size_t k = 1 + rng.below(6);
        std::vector<double> o1(k), o2(k);
        size_t n1 = c.take(d, b, k, now, o1.data());
        size_t n2 = twin.take(d, b, k, now, o2.data());
        REQUIRE(n1 == n2);
        REQUIRE(o1 == o2);
      } else if (what == 4) {
        std::vector<double> f = inFlight();
        if (!f.empty()) {
          double id = f[rng.below(f.size())];
          if (rng.chance(0.5)) {
            REQUIRE(c.settle(id) == Status::Ok);
            REQUIRE(twin.settle(id) == Status::Ok);
          } else {
            double next = now + 100.0 * static_cast<double>(rng.below(4));
            REQUIRE(c.defer(id, next, now) == Status::Ok);
            REQUIRE(twin.defer(id, next, now) == Status::Ok);
          }
        }
      } else if (what == 5) {
        now += 100.0 * static_cast<double>(rng.below(5));
        for (uint32_t d = 0; d < 3; ++d) {
          REQUIRE(c.promoteDue(d, now) == twin.promoteDue(d, now));
          REQUIRE(c.expireActive(d, now) == twin.expireActive(d, now));
        }
        double e1[256], e2[256];
        size_t x1 = c.drainExpired(e1, 256), x2 = twin.drainExpired(e2, 256);
        REQUIRE(x1 == x2);
        REQUIRE(std::vector<double>(e1, e1 + x1) == std::vector<double>(e2, e2 + x2));
      } else {
        // A batch of ids in and past the range, some repeated; now and then with an id in flight or
        // a bad one inserted, which refuses it.
        size_t n = rng.chance(0.3) ? rng.below(120) : rng.below(12);
        std::vector<double> ids;
        for (size_t i = 0; i < n; ++i) {
          if (!ids.empty() && rng.chance(0.1))
            ids.push_back(ids[rng.below(ids.size())]);
          else
            ids.push_back(static_cast<double>(rng.below(static_cast<uint64_t>(idRange) + 20)));
        }
        std::vector<double> f = inFlight();
        // Without the ids in flight, unless one is inserted on purpose.
        ids.erase(std::remove_if(ids.begin(), ids.end(),
                                 [&](double id) { return std::find(f.begin(), f.end(), id) != f.end(); }),
                  ids.end());
        if (!f.empty() && rng.chance(0.15))
          ids.insert(ids.begin() + static_cast<std::ptrdiff_t>(rng.below(ids.size() + 1)), f[rng.below(f.size())]);
        if (rng.chance(0.1)) {
          static const double bad[] = {kNaN, -1, 0.5, kTwo53, kInf, -kInf, 1e300, -0.5};
          ids.insert(ids.begin() + static_cast<std::ptrdiff_t>(rng.below(ids.size() + 1)), bad[rng.below(8)]);
        }
        // The reference: the first entry that refuses the batch, else cancel() per id.
        Status want = Status::Ok;
        size_t wantAt = 0;
        for (size_t i = 0; i < ids.size() && want == Status::Ok; ++i) {
          MessageInfo mi{};
          if (!safeId(ids[i])) {
            want = Status::BadArgument;
            wantAt = i;
          } else if (twin.locate(ids[i], &mi) == Status::Ok && mi.place == Place::InFlight) {
            want = Status::InFlight;
            wantAt = i;
          }
        }
        CoreState before = stateOf(c, idRange + 20);
        size_t cancelled = 77;
        Status s = c.cancelBatch(ids.data(), ids.size(), &at, &cancelled);
        CAPTURE(fmt(ids));
        REQUIRE(s == want);
        if (want != Status::Ok) {
          CHECK(at == wantAt);
          CHECK(cancelled == 0u);
          CHECK(stateOf(c, idRange + 20) == before);
          (want == Status::InFlight ? refusedInFlight : refusedBad) += 1;
        } else {
          size_t ok = 0;
          for (double id : ids) {
            Status one = twin.cancel(id);
            REQUIRE((one == Status::Ok || one == Status::UnknownId));
            ok += one == Status::Ok;
          }
          CHECK(cancelled == ok);
          total += ok;
        }
      }
      REQUIRE(c.checkInvariants());
      REQUIRE(stateOf(c, idRange + 20) == stateOf(twin, idRange + 20));
    }
    // The walk reached every case.
    CHECK(total > 100u);
    CHECK(refusedInFlight > 3u);
    CHECK(refusedBad > 3u);
  }
}

TEST_CASE("Core: ageShape counts every message held by domain and age bucket; bad arguments change nothing") {
  Core c(plainConfig(2));
  uint32_t d0, d1;
  REQUIRE(c.addDomain(plainDomain(2), &d0) == Status::Ok);
  REQUIRE(c.addDomain(plainDomain(2), &d1) == Status::Ok);
  // Expiration 100 s for every pair but (d1, 1), which never expires.
  std::vector<double> exp = {100000, 100000, 100000, kInf};
  const double now = 1000000;
  // Arrived at now - 10 s, now - 70 s and now - 200 s (expiresAt = arrival + 100 s) on d0, active,
  // delayed and in flight; one on (d1, 0) 30 s ago; one on (d1, 1), whose age is unknown.
  CHECK(c.enqueue(d0, 0, 1, 0, 0, now - 10000 + 100000, now) == Status::Ok);
  CHECK(c.enqueue(d0, 1, 2, 0, now + 5000, now - 70000 + 100000, now) == Status::Ok);
  CHECK(c.enqueue(d0, 0, 3, 0, 0, now - 200000 + 100000, now - 1) == Status::Ok);  // expired, not drained
  CHECK(c.enqueue(d1, 0, 4, 0, 0, now - 30000 + 100000, now) == Status::Ok);
  CHECK(c.enqueue(d1, 1, 5, 0, 0, kNever, now) == Status::Ok);
  double taken[4];
  CHECK(c.take(d1, 0, 4, now, taken) == 1u);  // in flight: still counted
  const double edges[] = {20000, 60000, 120000};
  std::vector<double> out(2 * 5, 0.0);
  size_t n = 0;
  REQUIRE(c.ageShape(now, exp.data(), exp.size(), edges, 3, out.data(), out.size(), &n) == Status::Ok);
  CHECK(n == 2u);
  CHECK(out == std::vector<double>{1, 0, 1, 1, 0, /* d1 */ 0, 1, 0, 0, 1});
  // Refused, nothing written: edges not ascending, negative, not finite; arrays too short; bad now.
  std::vector<double> zero(10, 0.0);
  const double down[] = {60000, 20000};
  const double neg[] = {-1};
  const double nan[] = {kNaN};
  CHECK(c.ageShape(now, exp.data(), exp.size(), down, 2, zero.data(), zero.size(), &n) == Status::BadArgument);
  CHECK(c.ageShape(now, exp.data(), exp.size(), neg, 1, zero.data(), zero.size(), &n) == Status::BadArgument);
  CHECK(c.ageShape(now, exp.data(), exp.size(), nan, 1, zero.data(), zero.size(), &n) == Status::BadArgument);
  CHECK(c.ageShape(now, exp.data(), 3, edges, 3, zero.data(), zero.size(), &n) == Status::BadArgument);
  CHECK(c.ageShape(now, exp.data(), exp.size(), edges, 3, zero.data(), 9, &n) == Status::BadArgument);
  CHECK(c.ageShape(kNaN, exp.data(), exp.size(), edges, 3, zero.data(), zero.size(), &n) == Status::BadArgument);
  CHECK(n == 0u);
  CHECK(zero == std::vector<double>(10, 0.0));
}

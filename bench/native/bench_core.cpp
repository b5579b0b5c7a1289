// The same operations as the JS suites, done in C++ on mqc::Core with no JS crossing: the physical
// floor that "within 1.5x of C++" is measured against. Built by bench/run.ts with
//   g++ -O3 -std=c++17 -DNDEBUG -Inative/core native/core/*.cpp bench/native/bench_core.cpp
// Data comes from the same seeded generators as bench/common.ts and bench/competitors.ts (mulberry32,
// same seeds), so every row works on the same ids, keys and outcomes as its JS counterpart.
//
//   bench_core ops <prio|ts> <N> <reps> <mixedSeconds> <minMs>
//   bench_core cycle <domains> <bindings> <perPair> <warmTicks> <ticks>
//   bench_core pass <domains> <bindings> <reps>
//   bench_core mem <domains> <bindings> <perPair>
// Each prints one JSON object on stdout.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double msSince(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

const double kInf = std::numeric_limits<double>::infinity();
const double kBase = 1767225600000.0;  // Date.UTC(2026, 0, 1)
const double kFar = kBase + 1e9;
const double kBackoff[4] = {60000, 300000, 900000, 3600000};
volatile double gSink = 0;

struct Rng {  // mulberry32, as bench/common.ts rng()
  uint32_t a;
  explicit Rng(uint32_t seed) : a(seed) {}
  double operator()() {
    a += 0x6d2b79f5u;
    uint32_t t = a;
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    return static_cast<double>(t ^ (t >> 14)) / 4294967296.0;
  }
};

double makeId(uint32_t i, uint32_t hi) {
  return static_cast<double>(hi & 0x1fffffu) * 4294967296.0 + static_cast<double>(i * 0x9e3779b1u);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

size_t rssBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long pages = 0, resident = 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<size_t>(resident) * 4096;
}

std::unique_ptr<mqc::Core> makeCore(uint32_t bindings, uint32_t serverMax = 20000, uint32_t reserve = 200) {
  mqc::LedgerConfig lc;
  lc.bindings = bindings;
  lc.groups = 0;
  lc.serverMax = serverMax;
  lc.serverReserve = reserve;
  lc.groupOfBinding.assign(bindings, mqc::kNoGroup);
  lc.bindingMax.assign(bindings, mqc::kUnlimited);
  return std::make_unique<mqc::Core>(lc);
}

uint32_t addDomain(mqc::Core& c, uint32_t maxConnections = 32) {
  mqc::DomainLimits dl;
  dl.scopeMax = mqc::kUnlimited;
  for (uint32_t b = 0; b < c.bindings(); ++b) {
    mqc::PairLimits pl;
    pl.maxConnections = maxConnections;
    pl.aggressiveness = 0.3;
    dl.pairs.push_back(pl);
  }
  uint32_t d = 0;
  if (c.addDomain(dl, &d) != mqc::Status::Ok) std::abort();
  return d;
}

void must(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "bench_core: check failed: %s\n", what);
    std::exit(2);
  }
}

// --- ops ------------------------------------------------------------------------------------------

struct Workload {
  bool prio;
  size_t n, m;
  std::vector<double> ids, times, cancelIds, mixedDeltas, popped, refillDeltas;
  std::vector<uint8_t> prios, mixedPrios, refillPrios;
};

Workload makeWorkload(bool prio, size_t n) {
  Workload w;
  w.prio = prio;
  w.n = n;
  uint32_t seed = static_cast<uint32_t>(n * 7 + (prio ? 1 : 2));
  {
    Rng r(seed);
    for (size_t i = 0; i < n; ++i)
      w.ids.push_back(makeId(static_cast<uint32_t>(i), static_cast<uint32_t>(std::floor(r() * 2097152))));
  }
  {
    Rng r(seed + 11);
    for (size_t i = 0; i < n; ++i) w.prios.push_back(r() < 0.5 ? 1 : 0);
  }
  {
    Rng r(seed + 13);
    for (size_t i = 0; i < n; ++i) {
      double b = kBackoff[static_cast<int>(std::floor(r() * 4))];
      w.times.push_back(kBase + std::floor(static_cast<double>(i) / 10) + b + std::floor(r() * 30000));
    }
  }
  Rng r(seed + 17);
  size_t m = std::max<size_t>(1, n / 10);
  std::vector<uint32_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = static_cast<uint32_t>(i);
  for (size_t i = 0; i < m; ++i) {
    size_t j = i + static_cast<size_t>(std::floor(r() * static_cast<double>(n - i)));
    std::swap(idx[i], idx[j]);
    w.cancelIds.push_back(w.ids[idx[i]]);
  }
  {
    Rng rp(seed + 19);
    for (size_t i = 0; i < 65536; ++i) w.mixedPrios.push_back(rp() < 0.5 ? 1 : 0);
  }
  for (size_t i = 0; i < 65536; ++i) {
    double b = kBackoff[static_cast<int>(std::floor(r() * 4))];
    w.mixedDeltas.push_back(b + std::floor(r() * 30000));
  }
  w.m = std::max<size_t>(1, n / 4);
  w.popped.assign(w.m, 0);
  {
    Rng rp(seed + 23);
    for (size_t i = 0; i < w.m; ++i) w.refillPrios.push_back(rp() < 0.5 ? 1 : 0);
  }
  for (size_t i = 0; i < w.m; ++i) w.refillDeltas.push_back(w.mixedDeltas[i & 65535]);
  return w;
}

// The same phases as bench/suites/queue_ops.ts: N resident, M = N/4 per timed phase, undone untimed.
struct OpsBench {
  Workload& w;
  std::unique_ptr<mqc::Core> core;
  uint32_t d = 0;
  size_t mix = 0;
  double vclock = 0;
  std::vector<double> buf;
  explicit OpsBench(Workload& wl) : w(wl), buf(256) {}

  void build() {
    core.reset();
    core = makeCore(1);
    d = addDomain(*core);
    mix = 0;
    vclock = kBase + static_cast<double>(w.n) / 10;
    size_t failed = 0;
    if (w.prio) {
      for (size_t i = 0; i < w.n; i += 256) {
        size_t k = std::min<size_t>(256, w.n - i);
        must(core->enqueueBatch(d, 0, &w.ids[i], &w.prios[i], k, kFar, kInf, kFar, &failed) == mqc::Status::Ok,
             "enqueueBatch");
      }
    } else {
      for (size_t i = 0; i < w.n; i += 256) {
        size_t k = std::min<size_t>(256, w.n - i);
        must(core->enqueueBatchAt(d, 0, &w.ids[i], nullptr, &w.times[i], k, kInf, kFar, &failed) == mqc::Status::Ok,
             "enqueue");
      }
    }
  }
  size_t pop(size_t k, size_t m, bool settle) {
    size_t got = 0;
    while (got < m) {
      size_t n = core->take(d, 0, std::min(k, m - got), kFar, buf.data());
      if (n == 0) break;
      // One batched settle per run taken, as the API's settleMany().
      size_t failed = 0;
      if (settle) must(core->settleBatch(buf.data(), n, &failed) == mqc::Status::Ok, "settle");
      for (size_t i = 0; i < n; ++i) w.popped[got + i] = buf[i];
      got += n;
    }
    gSink = gSink + w.popped[0];
    return got;
  }
  void finish(size_t m) {
    for (size_t i = 0; i < m; ++i) must(core->settle(w.popped[i]) == mqc::Status::Ok, "finish");
  }
  void refill(size_t m, bool single) {
    size_t failed = 0;
    if (w.prio && !single) {
      for (size_t i = 0; i < m; i += 256) {
        size_t k = std::min<size_t>(256, m - i);
        must(core->enqueueBatch(d, 0, &w.popped[i], &w.refillPrios[i], k, kFar, kInf, kFar, &failed) == mqc::Status::Ok,
             "refill");
      }
    } else if (w.prio) {
      for (size_t i = 0; i < m; ++i)
        must(core->enqueue(d, 0, w.popped[i], w.refillPrios[i], kFar, kInf, kFar) == mqc::Status::Ok, "refill1");
    } else {
      // Batches of 256 with one next-attempt time per message, as the API's enqueueBatch(..., nextAttempts).
      double times[256];
      for (size_t i = 0; i < m; i += 256) {
        size_t k = std::min<size_t>(256, m - i);
        for (size_t j = 0; j < k; ++j) times[j] = vclock + w.refillDeltas[i + j];
        must(core->enqueueBatchAt(d, 0, &w.popped[i], nullptr, times, k, kInf, kFar, &failed) == mqc::Status::Ok,
             "refill ts");
      }
      vclock += static_cast<double>(m) / 10;
    }
  }
  // single: one cancel() per id; else cancelBatch() of 256 ids at a time, as the API's cancelMany.
  size_t cancel(bool single) {
    size_t c = 0;
    if (single) {
      for (double id : w.cancelIds) c += core->cancel(id) == mqc::Status::Ok;
      return c;
    }
    for (size_t i = 0; i < w.cancelIds.size(); i += 256) {
      size_t k = std::min<size_t>(256, w.cancelIds.size() - i), failed = 0, got = 0;
      must(core->cancelBatch(&w.cancelIds[i], k, &failed, &got) == mqc::Status::Ok, "cancelBatch");
      c += got;
    }
    return c;
  }
  void mixed() {
    double b[16];
    size_t n = core->take(d, 0, 16, kFar, b);
    size_t failed = 0;
    core->settleBatch(b, n, &failed);
    if (w.prio) {
      size_t j = (mix * 16) & 65535;
      core->enqueueBatch(d, 0, b, &w.mixedPrios[j], n, kFar, kInf, kFar, &failed);
      ++mix;
    } else {
      double times[16];
      for (size_t i = 0; i < n; ++i) times[i] = vclock + w.mixedDeltas[(mix + i) & 65535];
      core->enqueueBatchAt(d, 0, b, nullptr, times, n, kInf, kFar, &failed);
      mix += n;
      vclock += 1.6;
    }
  }
};

using Rows = std::vector<std::pair<std::string, std::vector<double>>>;

void runOps(bool prio, size_t n, int reps, double mixedSeconds, double minMs) {
  Rows rows;  // per op: one rate per repetition
  Workload warm = makeWorkload(prio, 20000);
  Workload w = makeWorkload(prio, n);
  double buildMs = 0;
  for (int pass = 0; pass < reps + 1; ++pass) {
    Workload& wl = pass == 0 ? warm : w;
    static OpsBench* keepB = nullptr;
    static std::unique_ptr<OpsBench> bench;
    if (pass <= 1) {
      bench = std::make_unique<OpsBench>(wl);
      auto t0 = Clock::now();
      bench->build();
      if (pass == 1) buildMs = msSince(t0);
      keepB = bench.get();
    }
    OpsBench& b = *keepB;
    std::vector<std::pair<std::string, std::pair<double, double>>> acc;  // op -> (count, ms)
    auto rec = [&](const std::string& op, double count, double ms) {
      for (auto& a : acc)
        if (a.first == op) {
          a.second.first += count;
          a.second.second += ms;
          return;
        }
      acc.push_back({op, {count, ms}});
    };
    size_t m = wl.m;
    auto refill = [&](bool single) {
      auto t0 = Clock::now();
      b.refill(m, single);
      rec(single ? "enqueue 1/call" : "enqueue", static_cast<double>(m), msSince(t0));
    };
    auto phase = [&](const std::string& op, double count, const std::function<size_t()>& timed,
                     const std::function<void()>& undo) {
      double ms = 0, done = 0;
      int runs = 0;
      do {
        auto t0 = Clock::now();
        size_t got = timed();
        ms += msSince(t0);
        must(static_cast<double>(got) == count, op.c_str());
        done += count;
        undo();
      } while (ms < minMs && ++runs < 10);
      rec(op, done, ms);
    };
    for (size_t k : {1, 16, 256}) {
      bool single = prio && k == 16;
      phase(
          "pop " + std::to_string(k), static_cast<double>(m), [&] { return b.pop(k, m, true); },
          [&] { refill(single); });
    }
    for (size_t k : {1, 16, 256})
      phase(
          "take " + std::to_string(k), static_cast<double>(m), [&] { return b.pop(k, m, false); },
          [&] {
            b.finish(m);
            refill(false);
          });
    phase(
        "cancel", static_cast<double>(wl.cancelIds.size()), [&] { return b.cancel(false); }, [&] { b.build(); });
    phase(
        "cancel 1/call", static_cast<double>(wl.cancelIds.size()), [&] { return b.cancel(true); }, [&] { b.build(); });
    must(b.core->activeSize(b.d, 0) == wl.n, "size after rep");
    if (pass > 0)
      for (auto& a : acc) {
        double rate = a.second.first / (a.second.second / 1000);
        bool found = false;
        for (auto& r : rows)
          if (r.first == a.first) {
            r.second.push_back(rate);
            found = true;
          }
        if (!found) rows.push_back({a.first, {rate}});
      }
    if (pass == 0) bench.reset(), keepB = nullptr;
    if (pass == reps) {
      // Mixed: fixed wall time, checked every 1024 steps.
      for (int i = 0; i < 2000; ++i) b.mixed();
      size_t steps = 0;
      auto t0 = Clock::now();
      double ms = 0;
      do {
        for (int i = 0; i < 1024; ++i) b.mixed();
        steps += 1024;
        ms = msSince(t0);
      } while (ms < mixedSeconds * 1000);
      must(b.core->activeSize(b.d, 0) == w.n, "mixed size");
      rows.push_back({"mixed B=16", {static_cast<double>(steps) * 32 / (ms / 1000)}});
    }
  }
  rows.push_back({"build from empty", {static_cast<double>(n) / (buildMs / 1000)}});
  std::printf("{\"variant\":\"%s\",\"n\":%zu,\"candidate\":\"cpp\",\"kind\":\"cpp\",\"reps\":%d,\"rows\":[",
              prio ? "prio" : "ts", n, reps);
  for (size_t i = 0; i < rows.size(); ++i) {
    double best = *std::max_element(rows[i].second.begin(), rows[i].second.end());
    std::printf("%s{\"op\":\"%s\",\"api\":\"mqc::Core, no JS\",\"rate\":%.1f,\"samples\":[", i ? "," : "",
                rows[i].first.c_str(), best);
    for (size_t j = 0; j < rows[i].second.size(); ++j) std::printf("%s%.1f", j ? "," : "", rows[i].second[j]);
    std::printf("]}");
  }
  std::printf("],\"sink\":%g}\n", static_cast<double>(gSink));
}

// --- cycle ----------------------------------------------------------------------------------------

struct Conn {
  double id;
  uint32_t d, b;
  uint32_t batches;
};

struct CycleWorkload {
  std::vector<uint32_t> pairs, hi;
  std::vector<uint8_t> prios, outcome;
  CycleWorkload(uint32_t domains, uint32_t bindings, uint32_t seed) {
    Rng r(seed);
    for (size_t i = 0; i < 65536; ++i) {
      uint32_t d = static_cast<uint32_t>(std::floor(r() * domains));
      uint32_t b = static_cast<uint32_t>(std::floor(r() * bindings));
      pairs.push_back(d * bindings + b);
      prios.push_back(r() < 0.1 ? 1 : 0);
      outcome.push_back(r() < 0.9 ? 1 : 0);
      hi.push_back(static_cast<uint32_t>(std::floor(r() * 2097152)));
    }
  }
};

void runCycle(uint32_t domains, uint32_t bindings, uint32_t perPair, int warm, int ticks) {
  const double tickMs = 60000, retryMs = 300000, expiryMs = 86400000;
  const uint32_t maxBatches = 16, batchesPerTick = 4, batch = 16;
  CycleWorkload w(domains, bindings, 42);
  auto core = makeCore(bindings);
  for (uint32_t d = 0; d < domains; ++d) addDomain(*core);
  uint32_t nextId = 0;
  size_t cursor = 0;
  double ids[16];
  uint8_t prios[16];
  auto fillChunk = [&](size_t k) {
    for (size_t i = 0; i < k; ++i) {
      ids[i] = makeId(nextId, w.hi[nextId & 65535]);
      ++nextId;
      prios[i] = w.prios[cursor++ & 65535];
    }
  };
  double now = kBase;
  size_t failed = 0;
  auto t0 = Clock::now();
  for (uint32_t d = 0; d < domains; ++d)
    for (uint32_t b = 0; b < bindings; ++b)
      for (int left = static_cast<int>(perPair); left > 0; left -= batch) {
        size_t k = std::min<size_t>(batch, static_cast<size_t>(left));
        fillChunk(k);
        must(core->enqueueBatch(d, b, ids, prios, k, now, now + expiryMs, now, &failed) == mqc::Status::Ok, "fill");
      }
  double fillMs = msSince(t0);
  std::vector<Conn> conns, next;
  std::vector<double> grantBuf(3 * 256), expBuf(1024);
  double buf[16], ok[16], retry[16];
  size_t oc = 0;
  double totalMs = 0, maintainMsSum = 0, pullMsSum = 0, arriveMsSum = 0;
  uint64_t delivered = 0, deferred = 0;
  for (int t = 0; t < warm + ticks; ++t) {
    bool timed = t >= warm;
    now += tickMs;
    auto tt = Clock::now();
    core->maintainAll(now);
    for (;;) {
      size_t n = core->drainGrants(grantBuf.data(), 256);
      for (size_t i = 0; i < n; ++i)
        conns.push_back(Conn{grantBuf[3 * i], static_cast<uint32_t>(grantBuf[3 * i + 1]),
                             static_cast<uint32_t>(grantBuf[3 * i + 2]), 0});
      if (n < 256) break;
    }
    double maintainMs = msSince(tt);
    auto tp = Clock::now();
    uint64_t dl = 0, df = 0;
    next.clear();
    for (Conn& c : conns) {
      bool open = true;
      for (uint32_t p = 0; p < batchesPerTick && open; ++p) {
        size_t n = core->take(c.d, c.b, batch, now, buf);
        // A batch's outcomes in two calls, as the API's settleMany() and deferMany().
        size_t a = 0, z = 0, failed = 0;
        for (size_t j = 0; j < n; ++j) {
          if (w.outcome[oc++ & 65535] == 1)
            ok[a++] = buf[j];
          else
            retry[z++] = buf[j];
        }
        if (a > 0) core->settleBatch(ok, a, &failed);
        if (z > 0) core->deferBatch(retry, z, now + retryMs, now, &failed);
        dl += a;
        df += z;
        ++c.batches;
        if (n < batch || c.batches >= maxBatches) open = false;
      }
      if (open)
        next.push_back(c);
      else
        core->releaseConnection(c.id);
    }
    conns.swap(next);
    double pullMs = msSince(tp);
    auto ta = Clock::now();
    size_t bounced = 0;
    for (;;) {
      size_t n = core->drainExpired(expBuf.data(), expBuf.size());
      bounced += n;
      if (n < expBuf.size()) break;
    }
    uint64_t need = dl + bounced;
    size_t k = 0;
    while (need > 0) {
      size_t m = std::min<uint64_t>(batch, need);
      fillChunk(m);
      uint32_t p = w.pairs[(cursor + k++) & 65535];
      core->enqueueBatch(p / bindings, p % bindings, ids, prios, m, now, now + expiryMs, now, &failed);
      need -= m;
    }
    double arriveMs = msSince(ta);
    if (timed) {
      totalMs += msSince(tt);
      maintainMsSum += maintainMs;
      pullMsSum += pullMs;
      arriveMsSum += arriveMs;
      delivered += dl;
      deferred += df;
    }
  }
  double outcomes = static_cast<double>(delivered + deferred);
  std::printf(
      "{\"impl\":\"cpp\",\"mode\":\"cycle\",\"domains\":%u,\"bindings\":%u,\"perPair\":%u,\"ticksRun\":%d,"
      "\"result\":{\"fillMs\":%.3f,\"resident\":%zu,\"outcomes\":%.0f,\"delivered\":%llu,\"deferred\":%llu,\"ms\":%.3f,"
      "\"rate\":%.1f,\"phaseMs\":{\"maintain\":%.3f,\"pull\":%.3f,\"arrive\":%.3f}}}\n",
      domains, bindings, perPair, ticks, fillMs, static_cast<size_t>(domains) * bindings * perPair, outcomes,
      static_cast<unsigned long long>(delivered), static_cast<unsigned long long>(deferred), totalMs,
      outcomes / (totalMs / 1000), maintainMsSum, pullMsSum, arriveMsSum);
}

// --- maintenance pass -----------------------------------------------------------------------------

void runPass(uint32_t domains, uint32_t bindings, int reps) {
  const double now = kBase + 86400000;
  const size_t pairs = static_cast<size_t>(domains) * bindings;
  std::printf("{\"domains\":%u,\"bindings\":%u,\"pairs\":%zu,\"rows\":[", domains, bindings, pairs);
  bool firstRow = true;
  for (int scenario = 0; scenario < 2; ++scenario) {  // 0 at-limit, 1 open-1
    auto core = makeCore(bindings, static_cast<uint32_t>(4 * pairs));
    for (uint32_t d = 0; d < domains; ++d) addDomain(*core, scenario == 0 ? 1 : 32);
    double id = 1;
    size_t failed = 0;
    uint8_t prio = 0;
    for (uint32_t d = 0; d < domains; ++d)
      for (uint32_t b = 0; b < bindings; ++b) {
        double x = id++;
        must(core->enqueueBatch(d, b, &x, &prio, 1, now, kInf, now, &failed) == mqc::Status::Ok, "pass fill");
      }
    std::vector<double> grants(3 * 4096);
    std::vector<double> held;
    auto drain = [&](std::vector<double>* into) {
      size_t total = 0;
      for (;;) {
        size_t n = core->drainGrants(grants.data(), 4096);
        for (size_t i = 0; i < n; ++i)
          if (into) into->push_back(grants[3 * i]);
        total += n;
        if (n < 4096) break;
      }
      return total;
    };
    if (scenario == 0) {
      core->maintainAll(now);
      must(drain(&held) == pairs, "at-limit first pass");
    }
    std::vector<double> samples;
    for (int r = 0; r < reps + 1; ++r) {
      std::vector<double> opened;
      auto t0 = Clock::now();
      uint32_t n = core->maintainAll(now);
      drain(&opened);
      double ms = msSince(t0);
      must(n == (scenario == 0 ? 0 : pairs), "pass grants");
      if (r > 0) samples.push_back(ms * 1e6 / static_cast<double>(pairs));
      for (double c : opened) core->releaseConnection(c);
    }
    std::printf("%s{\"impl\":\"cpp\",\"provider\":\"none\",\"scenario\":\"%s\",\"nsPerPair\":%.2f,\"samples\":[",
                firstRow ? "" : ",", scenario == 0 ? "at-limit" : "open-1", median(samples));
    for (size_t i = 0; i < samples.size(); ++i) std::printf("%s%.2f", i ? "," : "", samples[i]);
    std::printf("]}");
    firstRow = false;
  }
  std::printf("]}\n");
}

// --- memory ---------------------------------------------------------------------------------------

void runMem(uint32_t domains, uint32_t bindings, uint32_t perPair) {
  CycleWorkload w(domains, bindings, 42);
  size_t before = rssBytes();
  auto core = makeCore(bindings);
  for (uint32_t d = 0; d < domains; ++d) addDomain(*core);
  size_t afterDomains = rssBytes();
  uint32_t nextId = 0;
  size_t cursor = 0, failed = 0;
  double ids[16];
  uint8_t prios[16];
  for (uint32_t d = 0; d < domains; ++d)
    for (uint32_t b = 0; b < bindings; ++b)
      for (int left = static_cast<int>(perPair); left > 0; left -= 16) {
        size_t k = std::min<size_t>(16, static_cast<size_t>(left));
        for (size_t i = 0; i < k; ++i) {
          ids[i] = makeId(nextId, w.hi[nextId & 65535]);
          ++nextId;
          prios[i] = w.prios[cursor++ & 65535];
        }
        must(core->enqueueBatch(d, b, ids, prios, k, kBase, kBase + 86400000, kBase, &failed) == mqc::Status::Ok,
             "mem fill");
      }
  size_t after = rssBytes();
  double n = static_cast<double>(domains) * bindings * perPair;
  std::printf(
      "{\"impl\":\"cpp\",\"mode\":\"memory\",\"resident\":%.0f,\"bytesPerMessage\":{\"rss\":%.2f,\"rssWithDomains\":%."
      "2f,"
      "\"reserved\":%.2f},\"bytesPerDomain\":%.1f}\n",
      n, static_cast<double>(after - afterDomains) / n, static_cast<double>(after - before) / n,
      static_cast<double>(core->bytesReserved()) / n, static_cast<double>(afterDomains - before) / domains);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_core ops|cycle|pass|mem ...\n");
    return 1;
  }
  std::string mode = argv[1];
  auto argi = [&](int i, long dflt) { return argc > i ? std::atol(argv[i]) : dflt; };
  if (mode == "ops") {
    bool prio = argc > 2 && std::string(argv[2]) == "prio";
    runOps(prio, static_cast<size_t>(argi(3, 100000)), static_cast<int>(argi(4, 3)),
           argc > 5 ? std::atof(argv[5]) : 1.0, argc > 6 ? std::atof(argv[6]) : 120.0);
  } else if (mode == "cycle") {
    runCycle(static_cast<uint32_t>(argi(2, 10000)), static_cast<uint32_t>(argi(3, 4)),
             static_cast<uint32_t>(argi(4, 25)), static_cast<int>(argi(5, 4)), static_cast<int>(argi(6, 20)));
  } else if (mode == "pass") {
    runPass(static_cast<uint32_t>(argi(2, 25000)), static_cast<uint32_t>(argi(3, 4)), static_cast<int>(argi(4, 7)));
  } else if (mode == "mem") {
    runMem(static_cast<uint32_t>(argi(2, 10000)), static_cast<uint32_t>(argi(3, 4)),
           static_cast<uint32_t>(argi(4, 125)));
  } else {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 1;
  }
  return 0;
}

// Argument checks for the addon's functions. Every value from JavaScript is checked here before it
// reaches the core: node-addon-api's As<T>() does not check types, and an unchecked typed-array
// kind or length is a crash. A failed check throws a TypeError (wrong type) or RangeError (out of
// range) that names the argument.
//
// A function reads its arguments in order through one Args reader, one line each, and checks for a
// failure once, before anything uses what it read:
//
//   Args a(info);
//   CoreSlot* s = a.core();
//   double id = a.id();
//   double now = a.time("now");
//   F64 out = a.f64("out");
//   a.expect(out.length >= 7, "out must have 7 entries");
//   if (a.failed()) return a.undefined();
//
// The first failed read throws its JavaScript exception and marks the reader failed; every read
// after it is a no-op that returns a harmless value (0, an empty array, nullptr) and touches no
// Node-API, so the first error is the one thrown, as if each read had returned at once. Nothing
// read may be used (dereferenced, converted to a narrower type) before that one check. The slow
// paths (building a message, throwing) are out of line, so a read that passes costs what the
// Node-API call itself costs plus a predictable branch.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "../core/core.hpp"
#include "addon_data.hpp"
#include "core_registry.hpp"

#if defined(__GNUC__) || defined(__clang__)
#define MQC_COLD __attribute__((cold, noinline))
#elif defined(_MSC_VER)
#define MQC_COLD __declspec(noinline)
#else
#define MQC_COLD
#endif

namespace mqc_addon {

// A typed array's elements as the reader found them (data already includes the view's offset).
// {nullptr, 0} when the read failed or an optional argument was absent.
template <typename T>
struct Span {
  T* data = nullptr;
  size_t length = 0;
  T& operator[](size_t i) const { return data[i]; }
};
using F64 = Span<double>;
using U8 = Span<uint8_t>;
using I32 = Span<int32_t>;
using U32s = Span<uint32_t>;

// The bad entry a refused batch names when the core reports BadArgument: "<array>[i] <rule>".
// array == nullptr: no entry to name, the status's own error (as check() throws it) for "ids[i]".
struct BadEntry {
  const char* array = nullptr;
  const char* rule = nullptr;
};
constexpr BadEntry kBadId{"ids", "must be a safe integer from 0 to 2^53-1"};

constexpr double kMaxCount = 4294967294.0;  // 2^32 - 2: counts and connection limits (kUnlimited is 2^32 - 1)

inline void throwType(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
}
inline void throwRange(Napi::Env env, const std::string& msg) {
  Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
}
// Throws the package's coded error, `new MailQueueError(code, msg)`, through the class that
// setErrorClass() stored in this environment's instance data; a plain Error with a `code` property
// before that (the raw addon, loaded without lib/native.ts). Should the constructor throw, its
// exception is the one that propagates.
MQC_COLD inline void throwCode(Napi::Env env, const char* code, const std::string& msg) {
  // Plain Node-API with every status checked: in a worker that is being terminated each of these
  // calls may fail and hand back no value, and a value that is not there must never be used.
  napi_env e = env;
  bool pending = false;
  if (napi_is_exception_pending(e, &pending) != napi_ok || pending) return;
  napi_value codeValue, msgValue, error;
  if (napi_create_string_utf8(e, code, NAPI_AUTO_LENGTH, &codeValue) != napi_ok ||
      napi_create_string_utf8(e, msg.data(), msg.size(), &msgValue) != napi_ok)
    return;
  void* data = nullptr;
  if (napi_get_instance_data(e, &data) == napi_ok && data != nullptr) {
    const Napi::FunctionReference& errorClass = static_cast<AddonData*>(data)->errorClass;
    if (!errorClass.IsEmpty()) {
      napi_value ctor = nullptr;
      napi_value argv[2] = {codeValue, msgValue};
      if (napi_get_reference_value(e, errorClass, &ctor) == napi_ok && ctor != nullptr &&
          napi_new_instance(e, ctor, 2, argv, &error) == napi_ok)
        napi_throw(e, error);
      return;  // otherwise the constructor threw, or the thread is stopping: that is what is pending
    }
  }
  // napi_create_error sets `code` on the error, as the class would.
  if (napi_create_error(e, codeValue, msgValue, &error) == napi_ok) napi_throw(e, error);
}

// Throws the JavaScript error the API documents for a core status other than Ok, for the subject
// `what` ("id 42", "ids[3]", "connectionId 7", ...).
MQC_COLD inline void throwStatus(Napi::Env env, mqc::Status st, const std::string& what) {
  using mqc::Status;
  switch (st) {
    case Status::Ok:
      return;
    case Status::BadArgument:
      return throwRange(env, what + ": out of range");
    case Status::BadDomain:
      return throwRange(env, what + ": unknown domain");
    case Status::BadBinding:
      return throwRange(env, what + ": unknown binding");
    case Status::DuplicateId:
      return throwCode(env, mqc::statusName(st), what + ": duplicate id");
    case Status::UnknownId:
      return throwCode(env, mqc::statusName(st), what + ": no such message");
    case Status::InFlight:
      return throwCode(env, mqc::statusName(st), what + ": the message is in flight on a connection");
    case Status::NotInFlight:
      return throwCode(env, mqc::statusName(st), what + ": the message is not in flight");
    case Status::UnknownConnection:
      return throwCode(env, mqc::statusName(st), what + ": no such open connection");
    case Status::TooMany:
      return throwCode(env, mqc::statusName(st), what + ": table full");
    case Status::DomainInUse:
      return throwCode(env, mqc::statusName(st), what + ": the domain holds mail or a connection");
    case Status::DomainHeld:
      return throwCode(env, mqc::statusName(st), what + ": the domain is suspended or not drained yet");
  }
  throwCode(env, "ERR_INTERNAL", what + ": unexpected status");
}

class Args {
 public:
  explicit Args(const Napi::CallbackInfo& info) : info_(info), env_(info.Env()) {}
  Args(const Args&) = delete;
  Args& operator=(const Args&) = delete;

  // --- the one failure check, and results -----------------------------------------------------
  bool failed() const { return failed_; }
  Napi::Env env() const { return env_; }
  Napi::Value undefined() const { return env_.Undefined(); }
  Napi::Value num(double v) const { return Napi::Number::New(env_, v); }
  Napi::Value boolean(bool v) const { return Napi::Boolean::New(env_, v); }
  CoreRegistry* registry() const { return &static_cast<AddonData*>(info_.Data())->registry; }

  // --- reads: each takes the next argument ------------------------------------------------------
  // The core handle: a live core of this environment, or ERR_CLOSED. domain() and binding() check
  // against it.
  CoreSlot* core() {
    napi_value v = take();
    if (failed_) return nullptr;
    double h;
    if (napi_get_value_double(env_, v, &h) != napi_ok) return failType("core handle must be a number"), nullptr;
    slot_ = registry()->find(h);
    if (slot_ == nullptr) failClosed();
    return slot_;
  }

  // A number, not NaN. One Node-API call: napi_get_value_double refuses a non-number itself
  // (napi_number_expected), so the type check costs nothing extra.
  double number(const char* name) {
    napi_value v = take();
    if (failed_) return 0;
    double d;
    if (napi_get_value_double(env_, v, &d) != napi_ok) return failType(name, " must be a number"), 0;
    if (std::isnan(d)) return failRange(name, " must not be NaN"), 0;
    return d;
  }

  double finite(const char* name) {
    double d = number(name);
    if (!failed_ && !std::isfinite(d)) return failRange(name, " must be finite"), 0;
    return d;
  }

  // A time in ms since the epoch: finite and within the range of a JavaScript Date (mqc::kMaxTime).
  double time(const char* name) {
    double d = number(name);
    if (!failed_ && !(std::isfinite(d) && std::fabs(d) <= mqc::kMaxTime))
      return failRange(name, " must be finite and within ±8.64e15 ms (the range of a Date)"), 0;
    return d;
  }

  // An integer in [lo, hi] (as a double: it may not fit 32 bits).
  double integer(const char* name, double lo, double hi) {
    double d = finite(name);
    if (!failed_ && (std::floor(d) != d || d < lo || d > hi)) return failInteger(name, lo, hi), 0;
    return d;
  }

  uint32_t u32(const char* name, uint32_t hi) {
    double d = integer(name, 0, hi);
    return failed_ ? 0 : static_cast<uint32_t>(d);
  }

  // A message id: a safe integer from 0 to 2^53-1.
  double id(const char* name = "id") { return integer(name, 0, mqc::kMaxId); }
  // An open connection's id: 1 to 2^53-1.
  double connectionId() { return integer("connectionId", 1, mqc::kMaxId); }

  // A domain index of this core (after core()).
  uint32_t domain() {
    double v = integer("domain", 0, kMaxCount);
    if (failed_) return 0;
    // A forgotten domain's slot names no domain until addDomain makes it again.
    if (!slot_->core->domainLive(static_cast<uint32_t>(v))) return failUnknown("domain: unknown domain index ", v), 0;
    return static_cast<uint32_t>(v);
  }

  // A binding slot of this core (after core()).
  uint32_t binding() {
    double v = integer("binding", 0, 65535);
    if (failed_) return 0;
    if (v >= slot_->core->bindings()) return failUnknown("binding: unknown binding slot ", v), 0;
    return static_cast<uint32_t>(v);
  }

  bool flag(const char* name) {
    Napi::Value v(env_, take());
    if (failed_) return false;
    if (!v.IsBoolean()) return failType(name, " must be a boolean"), false;
    return v.As<Napi::Boolean>().Value();
  }

  F64 f64(const char* name) { return typed<double>(name, napi_float64_array, "Float64Array"); }
  U8 u8(const char* name) { return typed<uint8_t>(name, napi_uint8_array, "Uint8Array"); }
  I32 i32(const char* name) { return typed<int32_t>(name, napi_int32_array, "Int32Array"); }
  U32s u32s(const char* name) { return typed<uint32_t>(name, napi_uint32_array, "Uint32Array"); }

  // --- optional arguments -----------------------------------------------------------------------
  // The next argument, not taken.
  Napi::Value peek() const { return info_[next_]; }
  // True, and the argument skipped, when the next argument is undefined or missing (or null too,
  // when nullToo); false when it is there to be read. True once the reader has failed.
  bool absent(bool nullToo = false) {
    if (!failed_) {
      Napi::Value v = peek();
      if (!v.IsUndefined() && !(nullToo && v.IsNull())) return false;
    }
    ++next_;
    return true;
  }

  // --- checks beyond one argument's type and range ------------------------------------------------
  // Throws RangeError(msg) unless ok. Returns true while nothing has failed, so a conversion that
  // needs the check can depend on it: `x = a.expect(ok, msg) ? static_cast<int32_t>(v) : 0;`.
  bool expect(bool ok, const char* msg) {
    if (!failed_ && !ok) failRange(msg);
    return !failed_;
  }

  // A connection limit: a whole number from 0 to 2^32-2, or Infinity for none (mqc::kUnlimited).
  // Anything else throws RangeError(msg).
  uint32_t limit(double v, const char* msg) {
    if (failed_) return 0;
    if (v == INFINITY) return mqc::kUnlimited;
    if (!(v >= 0 && v <= kMaxCount && std::floor(v) == v)) return failRange(msg), 0;
    return static_cast<uint32_t>(v);
  }

  // A core status: true for Ok, else the error the API documents for `what`, then the number when
  // one is given ("id 42: no such message"). The message is built only on failure.
  bool check(mqc::Status st, const char* what) {
    if (st == mqc::Status::Ok) return true;
    return failStatus(st, what, nullptr), false;
  }
  bool check(mqc::Status st, const char* what, double n) {
    if (st == mqc::Status::Ok) return true;
    return failStatus(st, what, &n), false;
  }

  // A batch call's status (settleBatch, deferBatch, cancelBatch, enqueueBatch): true for Ok; else,
  // for the entry at failedAt, BadArgument as `bad` names it ("ids[3] must be a safe integer from
  // 0 to 2^53-1") and any other status as check() would for "ids[3]" ("ids[3]: no such message").
  bool checkBatch(mqc::Status st, size_t failedAt, BadEntry bad = kBadId) {
    if (st == mqc::Status::Ok) return true;
    return failBatch(st, failedAt, bad), false;
  }

  // Throws RangeError(msg) (unless a read failed already), for a refusal the core reports some
  // other way; returns undefined.
  Napi::Value rangeError(const char* msg) {
    if (!failed_) failRange(msg);
    return undefined();
  }
  Napi::Value codeError(const char* code, const char* msg) {
    if (!failed_) {
      failed_ = true;
      throwCode(env_, code, msg);
    }
    return undefined();
  }

 private:
  napi_value take() { return info_[next_++]; }

  template <typename T>
  Span<T> typed(const char* name, napi_typedarray_type kind, const char* kindName) {
    napi_value v = take();
    if (failed_) return {};
    // One Node-API call for kind, length and data: napi_get_typedarray_info refuses a value that is
    // not a typed array (napi_invalid_arg). The data pointer already includes the view's offset.
    napi_typedarray_type type;
    size_t len = 0;
    void* ptr = nullptr;
    napi_value buffer = nullptr;
    size_t offset = 0;
    if (napi_get_typedarray_info(env_, v, &type, &len, &ptr, &buffer, &offset) != napi_ok || type != kind)
      return failType(name, " must be a ", kindName), Span<T>{};
    if (len == 0 || ptr == nullptr) {
      // A detached array reports length 0 too; tell it apart from a genuinely empty one (only on
      // this rare path, so the common case pays nothing).
      bool detached = false;
      if (napi_is_detached_arraybuffer(env_, buffer, &detached) != napi_ok || detached)
        return failType(name, " is detached (its buffer was transferred)"), Span<T>{};
      len = 0;
    }
    return {static_cast<T*>(ptr), len};
  }

  MQC_COLD void failType(const char* a, const char* b = "", const char* c = "") {
    failed_ = true;
    throwType(env_, std::string(a) + b + c);
  }
  MQC_COLD void failRange(const char* a, const char* b = "") {
    failed_ = true;
    throwRange(env_, std::string(a) + b);
  }
  MQC_COLD void failInteger(const char* name, double lo, double hi) {
    failed_ = true;
    throwRange(env_, std::string(name) + " must be an integer from " + std::to_string(static_cast<int64_t>(lo)) +
                         " to " + std::to_string(static_cast<int64_t>(hi)));
  }
  MQC_COLD void failUnknown(const char* what, double v) {
    failed_ = true;
    throwRange(env_, what + std::to_string(static_cast<int64_t>(v)));
  }
  MQC_COLD void failClosed() {
    failed_ = true;
    throwCode(env_, "ERR_CLOSED", "the core is closed");
  }
  MQC_COLD void failStatus(mqc::Status st, const char* what, const double* n) {
    if (failed_) return;
    failed_ = true;
    throwStatus(env_, st,
                n == nullptr ? std::string(what) : std::string(what) + " " + std::to_string(static_cast<int64_t>(*n)));
  }
  MQC_COLD void failBatch(mqc::Status st, size_t at, BadEntry bad) {
    if (failed_) return;
    failed_ = true;
    std::string index = "[" + std::to_string(at) + "]";
    if (st == mqc::Status::BadArgument && bad.array != nullptr)
      return throwRange(env_, bad.array + index + " " + bad.rule);
    throwStatus(env_, st, "ids" + index);
  }

  const Napi::CallbackInfo& info_;
  Napi::Env env_;
  CoreSlot* slot_ = nullptr;
  size_t next_ = 0;
  bool failed_ = false;
};

}  // namespace mqc_addon

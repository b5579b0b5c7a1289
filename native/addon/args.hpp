// Argument checks for the addon's functions. Every value from JavaScript is checked here before it
// reaches the core: node-addon-api's As<T>() does not check types, and an unchecked typed-array
// kind or length is a crash. A failed check throws a TypeError (wrong type) or RangeError (out of
// range) that names the argument, and the caller returns at once.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "../core/core.hpp"

namespace mqc_addon {

inline void throwType(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
}
inline void throwRange(Napi::Env env, const std::string& msg) {
  Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
}
inline void throwCode(Napi::Env env, const char* code, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.ThrowAsJavaScriptException();
}

// One Node-API call per argument on the hot path: napi_get_value_double refuses a non-number
// itself (napi_number_expected), so the type check costs nothing extra.
inline bool argNumber(const Napi::CallbackInfo& info, size_t i, const char* name, double* out) {
  double d;
  if (napi_get_value_double(info.Env(), info[i], &d) != napi_ok) {
    throwType(info.Env(), std::string(name) + " must be a number");
    return false;
  }
  if (std::isnan(d)) {
    throwRange(info.Env(), std::string(name) + " must not be NaN");
    return false;
  }
  *out = d;
  return true;
}

inline bool argFinite(const Napi::CallbackInfo& info, size_t i, const char* name, double* out) {
  if (!argNumber(info, i, name, out)) return false;
  if (!std::isfinite(*out)) {
    throwRange(info.Env(), std::string(name) + " must be finite");
    return false;
  }
  return true;
}

// A time in ms since the epoch: finite and within the range of a JavaScript Date (mqc::kMaxTime).
inline bool argTime(const Napi::CallbackInfo& info, size_t i, const char* name, double* out) {
  if (!argNumber(info, i, name, out)) return false;
  if (!std::isfinite(*out) || std::fabs(*out) > mqc::kMaxTime) {
    throwRange(info.Env(), std::string(name) + " must be finite and within ±8.64e15 ms (the range of a Date)");
    return false;
  }
  return true;
}

// An integer in [lo, hi].
inline bool argInt(const Napi::CallbackInfo& info, size_t i, const char* name, double lo, double hi,
                   double* out) {
  if (!argFinite(info, i, name, out)) return false;
  if (std::floor(*out) != *out || *out < lo || *out > hi) {
    throwRange(info.Env(), std::string(name) + " must be an integer from " + std::to_string(static_cast<int64_t>(lo)) +
                               " to " + std::to_string(static_cast<int64_t>(hi)));
    return false;
  }
  return true;
}

inline bool argU32(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t hi, uint32_t* out) {
  double d;
  if (!argInt(info, i, name, 0, hi, &d)) return false;
  *out = static_cast<uint32_t>(d);
  return true;
}

inline bool argBool(const Napi::CallbackInfo& info, size_t i, const char* name, bool* out) {
  Napi::Value v = info[i];
  if (!v.IsBoolean()) {
    throwType(info.Env(), std::string(name) + " must be a boolean");
    return false;
  }
  *out = v.As<Napi::Boolean>().Value();
  return true;
}

// One Node-API call for kind, length and data: napi_get_typedarray_info refuses a value that is not
// a typed array (napi_invalid_arg). The data pointer it gives already includes the view's offset.
template <typename T>
inline bool argTyped(const Napi::CallbackInfo& info, size_t i, const char* name, napi_typedarray_type kind,
                     const char* kindName, T** data, size_t* length) {
  napi_env env = info.Env();
  napi_value v = info[i];
  napi_typedarray_type type;
  size_t len = 0;
  void* ptr = nullptr;
  napi_value buffer = nullptr;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, v, &type, &len, &ptr, &buffer, &offset) != napi_ok || type != kind) {
    throwType(info.Env(), std::string(name) + " must be a " + kindName);
    return false;
  }
  if (len == 0 || ptr == nullptr) {
    // A detached array reports length 0 too; tell it apart from a genuinely empty one (only on this
    // rare path, so the common case pays nothing).
    bool detached = false;
    if (napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok || detached) {
      throwType(info.Env(), std::string(name) + " is detached (its buffer was transferred)");
      return false;
    }
    len = 0;
  }
  *data = static_cast<T*>(ptr);
  *length = len;
  return true;
}

inline bool argF64(const Napi::CallbackInfo& info, size_t i, const char* name, double** data, size_t* len) {
  return argTyped<double>(info, i, name, napi_float64_array, "Float64Array", data, len);
}
inline bool argU8(const Napi::CallbackInfo& info, size_t i, const char* name, uint8_t** data, size_t* len) {
  return argTyped<uint8_t>(info, i, name, napi_uint8_array, "Uint8Array", data, len);
}
inline bool argI32(const Napi::CallbackInfo& info, size_t i, const char* name, int32_t** data, size_t* len) {
  return argTyped<int32_t>(info, i, name, napi_int32_array, "Int32Array", data, len);
}
inline bool argU32Array(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t** data, size_t* len) {
  return argTyped<uint32_t>(info, i, name, napi_uint32_array, "Uint32Array", data, len);
}

}  // namespace mqc_addon

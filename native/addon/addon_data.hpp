// Per-environment instance data of the addon (napi_set_instance_data): one per environment that
// loads it (the main thread and each worker thread), freed with that environment. Every function
// gets it as its data pointer; code that has only the env (throwCode) reads it back with
// napi_get_instance_data. Nothing here is global or static.
#pragma once
#include <napi.h>

#include "core_registry.hpp"

namespace mqc_addon {

struct AddonData {
  // The cores made in this environment.
  CoreRegistry registry;
  // The package's error class (lib/errors.ts MailQueueError, handed over by setErrorClass() when
  // lib/native.ts loads): a coded error is `new errorClass(code, message)`; a plain Error with a
  // `code` until it is set.
  Napi::FunctionReference errorClass;
};

}  // namespace mqc_addon

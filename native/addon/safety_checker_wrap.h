// The JS SafetyChecker object: owns one engine safety checker; load and check run as async workers.
#pragma once

#include <napi.h>

#include <memory>

#include "native_handle.h"
#include "sdnode.h"

namespace sdnode_addon {

using SafetyCheckerHandle = NativeHandle<sdnode::SafetyChecker>;

class SafetyCheckerWrap : public Napi::ObjectWrap<SafetyCheckerWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(Napi::Env env, std::shared_ptr<SafetyCheckerHandle> handle);
  explicit SafetyCheckerWrap(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<SafetyCheckerHandle> handle_;

  Napi::Value Check(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
};

// loadSafetyChecker(path, { backend, threads }) -> Promise<SafetyChecker>
Napi::Value LoadSafetyChecker(const Napi::CallbackInfo& info);

}  // namespace sdnode_addon

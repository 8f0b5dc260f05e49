// The JS Model object: owns one engine model; load and generate run as async workers.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>

#include "native_handle.h"
#include "sdnode.h"

namespace sdnode_addon {

using ModelHandle = NativeHandle<sdnode::Model>;

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(Napi::Env env, std::shared_ptr<ModelHandle> handle);
  explicit ModelWrap(const Napi::CallbackInfo& info);
  // The handle of a JS Model object; null when `value` is not one or was closed.
  static std::shared_ptr<ModelHandle> HandleOf(Napi::Env env, const Napi::Value& value);

 private:
  std::shared_ptr<ModelHandle> handle_;
  std::shared_ptr<std::atomic<bool>> abortFlag_;

  Napi::Value Generate(const Napi::CallbackInfo& info);
  // The stage API: each returns a promise and runs in the model's queue like generate().
  Napi::Value EncodeText(const Napi::CallbackInfo& info);
  Napi::Value EncodeImage(const Napi::CallbackInfo& info);
  Napi::Value SampleLatent(const Napi::CallbackInfo& info);
  Napi::Value DecodeLatent(const Napi::CallbackInfo& info);
  Napi::Value Abort(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
};

// loadModel(path, options) -> Promise<Model>
Napi::Value LoadModel(const Napi::CallbackInfo& info);

}  // namespace sdnode_addon

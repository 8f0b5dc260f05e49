// The JS Upscaler object: owns one engine upscaler (ESRGAN family); load and upscale run as async
// workers, an upscale with per-tile progress and an abort function.
#pragma once

#include <napi.h>

#include <memory>

#include "native_handle.h"
#include "sdnode.h"

namespace sdnode_addon {

using UpscalerHandle = NativeHandle<sdnode::Upscaler>;

class UpscalerWrap : public Napi::ObjectWrap<UpscalerWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Create(Napi::Env env, std::shared_ptr<UpscalerHandle> handle);
  explicit UpscalerWrap(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<UpscalerHandle> handle_;

  Napi::Value Upscale(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
};

// loadUpscaler(path, { backend, threads }) -> Promise<Upscaler>
Napi::Value LoadUpscaler(const Napi::CallbackInfo& info);

}  // namespace sdnode_addon

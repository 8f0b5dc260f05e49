// Module entry: systemInfo(), loadModel(), loadSafetyChecker(), loadUpscaler(), and the Model,
// SafetyChecker and Upscaler classes.
#include <napi.h>

#include "convert.h"
#include "convert_worker.h"
#include "model_wrap.h"
#include "safety_checker_wrap.h"
#include "upscaler_wrap.h"

namespace sdnode_addon {

namespace {

Napi::Value SystemInfo(const Napi::CallbackInfo& info) { return systemInfoToJs(info.Env(), sdnode::systemInfo()); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("systemInfo", Napi::Function::New(env, SystemInfo, "systemInfo"));
  exports.Set("loadModel", Napi::Function::New(env, LoadModel, "loadModel"));
  exports.Set("Model", ModelWrap::Define(env));
  exports.Set("convertModel", Napi::Function::New(env, ConvertModel, "convertModel"));
  exports.Set("loadSafetyChecker", Napi::Function::New(env, LoadSafetyChecker, "loadSafetyChecker"));
  exports.Set("SafetyChecker", SafetyCheckerWrap::Define(env));
  exports.Set("loadUpscaler", Napi::Function::New(env, LoadUpscaler, "loadUpscaler"));
  exports.Set("Upscaler", UpscalerWrap::Define(env));
  return exports;
}

}  // namespace

}  // namespace sdnode_addon

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return sdnode_addon::Init(env, exports); }

NODE_API_MODULE(sdnode, InitModule)

#include "safety_checker_wrap.h"

#include <cmath>

#include "addon_data.h"
#include "convert.h"
#include "promise_worker.h"

namespace sdnode_addon {

namespace {

class LoadCheckerWorker : public PromiseWorker {
 public:
  LoadCheckerWorker(Napi::Env env, sdnode::SafetyCheckerParams params) : PromiseWorker(env), params_(std::move(params)) {}

 protected:
  void Work() override {
    handle_ = std::make_shared<SafetyCheckerHandle>();
    handle_->object = sdnode::SafetyChecker::load(params_);
  }
  Napi::Value Result(Napi::Env env) override { return SafetyCheckerWrap::Create(env, handle_); }

 private:
  sdnode::SafetyCheckerParams params_;
  std::shared_ptr<SafetyCheckerHandle> handle_;
};

class CheckWorker : public PromiseWorker {
 public:
  CheckWorker(Napi::Env env, std::shared_ptr<SafetyCheckerHandle> handle, std::vector<float> pixels, int count)
      : PromiseWorker(env), handle_(std::move(handle)), pixels_(std::move(pixels)), count_(count) {}

 protected:
  void Work() override {
    std::lock_guard<std::mutex> lock(handle_->busy);
    if (!handle_->object) throw ObjectClosed("the safety checker was closed", "ERR_CHECKER_CLOSED");
    verdicts_ = handle_->object->check(pixels_, count_);
  }
  Napi::Value Result(Napi::Env env) override { return verdictsToJs(env, verdicts_); }

 private:
  std::shared_ptr<SafetyCheckerHandle> handle_;
  std::vector<float> pixels_;
  int count_;
  std::vector<sdnode::SafetyVerdict> verdicts_;
};

}  // namespace

Napi::Function SafetyCheckerWrap::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "SafetyChecker",
                                    {InstanceMethod("check", &SafetyCheckerWrap::Check), InstanceMethod("close", &SafetyCheckerWrap::Close)});
  addonData(env).safetyChecker = Napi::Persistent(ctor);
  return ctor;
}

Napi::Object SafetyCheckerWrap::Create(Napi::Env env, std::shared_ptr<SafetyCheckerHandle> handle) {
  return addonData(env).safetyChecker.New({boxHandle(env, std::move(handle))});
}

SafetyCheckerWrap::SafetyCheckerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SafetyCheckerWrap>(info) {
  handle_ = unboxHandle<SafetyCheckerHandle>(info, "SafetyChecker objects are created by loadSafetyChecker()");
  info.This().As<Napi::Object>().Set("info", safetyCheckerInfoToJs(info.Env(), handle_->object->info()));
}

Napi::Value SafetyCheckerWrap::Check(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!handle_) return rejected(env, "ERR_CHECKER_CLOSED", "the safety checker was closed");
  if (info.Length() < 2 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
      !info[1].IsNumber()) {
    throw Napi::TypeError::New(env, "check(pixels, count) needs a Float32Array and a count");
  }
  Napi::Float32Array array = info[0].As<Napi::Float32Array>();
  const double count = info[1].As<Napi::Number>().DoubleValue();
  if (count < 1 || count > 1024 || count != std::floor(count)) throw Napi::TypeError::New(env, "count must be an integer 1-1024");
  std::vector<float> pixels(array.Data(), array.Data() + array.ElementLength());
  auto* worker = new CheckWorker(env, handle_, std::move(pixels), static_cast<int>(count));
  return queued(worker);
}

Napi::Value SafetyCheckerWrap::Close(const Napi::CallbackInfo& info) {
  // A running check keeps its own reference; the weights go when it ends.
  SafetyCheckerHandle::release(std::move(handle_));
  return info.Env().Undefined();
}

Napi::Value LoadSafetyChecker(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject()) {
    throw Napi::TypeError::New(env, "loadSafetyChecker(path, options) needs a path string and an options object");
  }
  sdnode::SafetyCheckerParams params = safetyCheckerParamsFromJs(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Object>());
  auto* worker = new LoadCheckerWorker(env, std::move(params));
  return queued(worker);
}

}  // namespace sdnode_addon

#include "upscaler_wrap.h"

#include <atomic>

#include "addon_data.h"
#include "convert.h"
#include "progress_channel.h"
#include "promise_worker.h"

namespace sdnode_addon {

namespace {

struct TileProgress {
  int tile = 0;
  int tiles = 0;
};

Napi::Object tileProgressToJs(Napi::Env env, const TileProgress& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("tile", p.tile);
  o.Set("tiles", p.tiles);
  return o;
}

class LoadUpscalerWorker : public PromiseWorker {
 public:
  LoadUpscalerWorker(Napi::Env env, sdnode::UpscalerParams params) : PromiseWorker(env), params_(std::move(params)) {}

 protected:
  void Work() override {
    handle_ = std::make_shared<UpscalerHandle>();
    handle_->object = sdnode::Upscaler::load(params_);
  }
  Napi::Value Result(Napi::Env env) override { return UpscalerWrap::Create(env, handle_); }

 private:
  sdnode::UpscalerParams params_;
  std::shared_ptr<UpscalerHandle> handle_;
};

class UpscaleWorker : public PromiseWorker {
 public:
  UpscaleWorker(Napi::Env env, std::shared_ptr<UpscalerHandle> handle, std::vector<uint8_t> rgb, int width, int height,
                sdnode::UpscaleOptions options, Napi::Function onTile, std::shared_ptr<std::atomic<bool>> abortFlag)
      : PromiseWorker(env),
        handle_(std::move(handle)),
        rgb_(std::move(rgb)),
        width_(width),
        height_(height),
        options_(std::move(options)),
        abortFlag_(std::move(abortFlag)),
        progress_(env, onTile, "sdnode-upscale-progress", tileProgressToJs) {}

 protected:
  void Work() override {
    struct Close {
      ProgressChannel<TileProgress>& channel;
      ~Close() { channel.close(); }
    } close{progress_};
    std::lock_guard<std::mutex> lock(handle_->busy);
    if (!handle_->object) throw ObjectClosed("the upscaler was closed", "ERR_UPSCALER_CLOSED");
    options_.aborted = [flag = abortFlag_] { return flag->load(); };
    if (progress_.open()) options_.onTile = [this](int tile, int tiles) { progress_.deliver({tile, tiles}); };
    out_ = handle_->object->upscale(rgb_, width_, height_, options_);
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Buffer<uint8_t>::Copy(env, out_.data(), out_.size()); }

 private:
  std::shared_ptr<UpscalerHandle> handle_;
  std::vector<uint8_t> rgb_;
  int width_, height_;
  sdnode::UpscaleOptions options_;
  std::shared_ptr<std::atomic<bool>> abortFlag_;
  ProgressChannel<TileProgress> progress_;
  std::vector<uint8_t> out_;
};

}  // namespace

Napi::Function UpscalerWrap::Define(Napi::Env env) {
  Napi::Function ctor =
      DefineClass(env, "Upscaler", {InstanceMethod("upscale", &UpscalerWrap::Upscale), InstanceMethod("close", &UpscalerWrap::Close)});
  addonData(env).upscaler = Napi::Persistent(ctor);
  return ctor;
}

Napi::Object UpscalerWrap::Create(Napi::Env env, std::shared_ptr<UpscalerHandle> handle) {
  return addonData(env).upscaler.New({boxHandle(env, std::move(handle))});
}

UpscalerWrap::UpscalerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UpscalerWrap>(info) {
  handle_ = unboxHandle<UpscalerHandle>(info, "Upscaler objects are created by loadUpscaler()");
  info.This().As<Napi::Object>().Set("info", upscalerInfoToJs(info.Env(), handle_->object->info()));
}

// upscale(rgb, width, height, { tile, overlap }, onTile?) -> { done: Promise<Buffer>, abort() }
Napi::Value UpscalerWrap::Upscale(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsObject()) {
    throw Napi::TypeError::New(env, "upscale(rgb, width, height, options, onTile) needs a Uint8Array, two sizes and an options object");
  }
  Napi::Uint8Array array = info[0].As<Napi::Uint8Array>();
  const int64_t width = info[1].As<Napi::Number>().Int64Value(), height = info[2].As<Napi::Number>().Int64Value();
  if (width < 1 || height < 1 || width > 65536 || height > 65536 || static_cast<int64_t>(array.ElementLength()) != width * height * 3) {
    throw Napi::TypeError::New(env, "upscale: rgb must hold width x height x 3 bytes, sizes 1-65536");
  }
  sdnode::UpscaleOptions options = upscaleOptionsFromJs(info[3].As<Napi::Object>());
  Napi::Function onTile = info.Length() > 4 && info[4].IsFunction() ? info[4].As<Napi::Function>() : Napi::Function();
  auto abortFlag = std::make_shared<std::atomic<bool>>(false);
  Napi::Object job = Napi::Object::New(env);
  job.Set("abort", Napi::Function::New(env, [abortFlag](const Napi::CallbackInfo& call) {
    abortFlag->store(true);
    return call.Env().Undefined();
  }, "abort"));
  if (!handle_) {
    job.Set("done", rejected(env, "ERR_UPSCALER_CLOSED", "the upscaler was closed"));
    return job;
  }
  std::vector<uint8_t> rgb(array.Data(), array.Data() + array.ElementLength());
  auto* worker = new UpscaleWorker(env, handle_, std::move(rgb), static_cast<int>(width), static_cast<int>(height), std::move(options),
                                   onTile, abortFlag);
  job.Set("done", worker->Promise());
  worker->Queue();
  return job;
}

Napi::Value UpscalerWrap::Close(const Napi::CallbackInfo& info) {
  // A running upscale keeps its own reference; the weights go when it ends.
  UpscalerHandle::release(std::move(handle_));
  return info.Env().Undefined();
}

Napi::Value LoadUpscaler(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject()) {
    throw Napi::TypeError::New(env, "loadUpscaler(path, options) needs a path string and an options object");
  }
  sdnode::UpscalerParams params = upscalerParamsFromJs(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Object>());
  return queued(new LoadUpscalerWorker(env, std::move(params)));
}

}  // namespace sdnode_addon

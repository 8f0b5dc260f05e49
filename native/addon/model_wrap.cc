#include "model_wrap.h"

#include "addon_data.h"
#include "convert.h"
#include "progress_channel.h"
#include "promise_worker.h"

namespace sdnode_addon {

namespace {

ObjectClosed modelClosed() { return ObjectClosed("the model was closed", "ERR_MODEL_CLOSED"); }

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, sdnode::LoadParams params) : PromiseWorker(env), params_(std::move(params)) {}

 protected:
  void Work() override {
    handle_ = std::make_shared<ModelHandle>();
    handle_->object = sdnode::Model::load(params_);
  }
  Napi::Value Result(Napi::Env env) override { return ModelWrap::Create(env, handle_); }

 private:
  sdnode::LoadParams params_;
  std::shared_ptr<ModelHandle> handle_;
};

class GenerateWorker : public PromiseWorker {
 public:
  GenerateWorker(Napi::Env env, std::shared_ptr<ModelHandle> handle, sdnode::Request request, Napi::Function onProgress,
                 std::shared_ptr<std::atomic<bool>> abortFlag)
      : PromiseWorker(env),
        handle_(std::move(handle)),
        request_(std::move(request)),
        abortFlag_(std::move(abortFlag)),
        progress_(env, onProgress, "sdnode-progress", progressToJs) {}

 protected:
  void Work() override {
    std::lock_guard<std::mutex> lock(handle_->busy);
    struct Close {
      ProgressChannel<sdnode::Progress>& channel;
      ~Close() { channel.close(); }
    } close{progress_};
    if (!handle_->object) throw modelClosed();
    sdnode::Callbacks callbacks;
    callbacks.aborted = [flag = abortFlag_] { return flag->load(); };
    if (progress_.open()) callbacks.onProgress = [this](const sdnode::Progress& p) { progress_.deliver(p); };
    images_ = handle_->object->generate(request_, callbacks);
  }
  Napi::Value Result(Napi::Env env) override { return imagesToJs(env, images_); }

 private:
  std::shared_ptr<ModelHandle> handle_;
  sdnode::Request request_;
  std::shared_ptr<std::atomic<bool>> abortFlag_;
  ProgressChannel<sdnode::Progress> progress_;
  std::vector<sdnode::Image> images_;
};

}  // namespace

Napi::Function ModelWrap::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Model",
                                    {InstanceMethod("generate", &ModelWrap::Generate), InstanceMethod("abort", &ModelWrap::Abort),
                                     InstanceMethod("close", &ModelWrap::Close)});
  addonData(env).model = Napi::Persistent(ctor);
  return ctor;
}

Napi::Object ModelWrap::Create(Napi::Env env, std::shared_ptr<ModelHandle> handle) {
  return addonData(env).model.New({boxHandle(env, std::move(handle))});
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<ModelWrap>(info), abortFlag_(std::make_shared<std::atomic<bool>>(false)) {
  handle_ = unboxHandle<ModelHandle>(info, "Model objects are created by loadModel()");
  info.This().As<Napi::Object>().Set("info", modelInfoToJs(info.Env(), handle_->object->info()));
}

Napi::Value ModelWrap::Generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!handle_) return rejected(env, "ERR_MODEL_CLOSED", "the model was closed");
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "generate(request, onProgress) needs a request object");
  sdnode::Request request = requestFromJs(info[0].As<Napi::Object>());
  Napi::Function onProgress = info.Length() > 1 && info[1].IsFunction() ? info[1].As<Napi::Function>() : Napi::Function();
  abortFlag_ = std::make_shared<std::atomic<bool>>(false);
  auto* worker = new GenerateWorker(env, handle_, std::move(request), onProgress, abortFlag_);
  return queued(worker);
}

Napi::Value ModelWrap::Abort(const Napi::CallbackInfo& info) {
  abortFlag_->store(true);
  return info.Env().Undefined();
}

Napi::Value ModelWrap::Close(const Napi::CallbackInfo& info) {
  // A running generation keeps its own reference; the weights go when it ends.
  if (handle_) {
    abortFlag_->store(true);
    ModelHandle::release(std::move(handle_));
  }
  return info.Env().Undefined();
}

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject()) {
    throw Napi::TypeError::New(env, "loadModel(path, options) needs a path string and an options object");
  }
  sdnode::LoadParams params = loadParamsFromJs(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Object>());
  auto* worker = new LoadWorker(env, std::move(params));
  return queued(worker);
}

}  // namespace sdnode_addon

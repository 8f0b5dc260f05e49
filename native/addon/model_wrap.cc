#include "model_wrap.h"

#include "convert.h"
#include "progress_channel.h"
#include "promise_worker.h"

namespace sdnode_addon {

namespace {

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, sdnode::LoadParams params) : PromiseWorker(env), params_(std::move(params)) {}

 protected:
  void Work() override {
    handle_ = std::make_shared<ModelHandle>();
    handle_->model = sdnode::Model::load(params_);
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
    if (!handle_->model) throw ModelClosed();
    sdnode::Callbacks callbacks;
    callbacks.aborted = [flag = abortFlag_] { return flag->load(); };
    if (progress_.open()) callbacks.onProgress = [this](const sdnode::Progress& p) { progress_.deliver(p); };
    images_ = handle_->model->generate(request_, callbacks);
  }
  Napi::Value Result(Napi::Env env) override { return imagesToJs(env, images_); }

 private:
  std::shared_ptr<ModelHandle> handle_;
  sdnode::Request request_;
  std::shared_ptr<std::atomic<bool>> abortFlag_;
  ProgressChannel<sdnode::Progress> progress_;
  std::vector<sdnode::Image> images_;
};

Napi::FunctionReference* modelConstructor = nullptr;

}  // namespace

Napi::Function ModelWrap::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Model",
                                    {InstanceMethod("generate", &ModelWrap::Generate), InstanceMethod("abort", &ModelWrap::Abort),
                                     InstanceMethod("close", &ModelWrap::Close)});
  modelConstructor = new Napi::FunctionReference(Napi::Persistent(ctor));
  env.SetInstanceData<Napi::FunctionReference>(modelConstructor);
  return ctor;
}

Napi::Object ModelWrap::Create(Napi::Env env, std::shared_ptr<ModelHandle> handle) {
  auto* boxed = new std::shared_ptr<ModelHandle>(std::move(handle));
  Napi::External<std::shared_ptr<ModelHandle>> external = Napi::External<std::shared_ptr<ModelHandle>>::New(
      env, boxed, [](Napi::Env, std::shared_ptr<ModelHandle>* p) { delete p; });
  return env.GetInstanceData<Napi::FunctionReference>()->New({external});
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<ModelWrap>(info), abortFlag_(std::make_shared<std::atomic<bool>>(false)) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "Model objects are created by loadModel()");
  }
  handle_ = *info[0].As<Napi::External<std::shared_ptr<ModelHandle>>>().Data();
  info.This().As<Napi::Object>().Set("info", modelInfoToJs(info.Env(), handle_->model->info()));
}

Napi::Value ModelWrap::Generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!handle_) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(errorToJs(env, "ERR_MODEL_CLOSED", "the model was closed").Value());
    return deferred.Promise();
  }
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "generate(request, onProgress) needs a request object");
  sdnode::Request request = requestFromJs(info[0].As<Napi::Object>());
  Napi::Function onProgress = info.Length() > 1 && info[1].IsFunction() ? info[1].As<Napi::Function>() : Napi::Function();
  abortFlag_ = std::make_shared<std::atomic<bool>>(false);
  auto* worker = new GenerateWorker(env, handle_, std::move(request), onProgress, abortFlag_);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value ModelWrap::Abort(const Napi::CallbackInfo& info) {
  abortFlag_->store(true);
  return info.Env().Undefined();
}

Napi::Value ModelWrap::Close(const Napi::CallbackInfo& info) {
  // A running generation keeps its own reference; the weights go when it ends.
  if (handle_) {
    abortFlag_->store(true);
    std::shared_ptr<ModelHandle> handle = std::move(handle_);
    if (handle->busy.try_lock()) {
      handle->model.reset();
      handle->busy.unlock();
    }
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
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace sdnode_addon

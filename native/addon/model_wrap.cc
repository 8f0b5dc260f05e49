#include "model_wrap.h"

#include <future>

#include "convert.h"

namespace sdnode_addon {

namespace {

struct ModelClosed : std::runtime_error {
  ModelClosed() : std::runtime_error("the model was closed") {}
};

// Runs `work` off the main thread and settles a promise; engine errors keep their code.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  virtual void Work() = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;

  void Execute() override {
    try {
      Work();
    } catch (const sdnode::Error& e) {
      code_ = sdnode::errorCodeName(e.code());
      SetError(e.what());
    } catch (const ModelClosed& e) {
      code_ = "ERR_MODEL_CLOSED";
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = "ERR_OUT_OF_MEMORY";
      SetError("out of memory");
    } catch (const std::exception& e) {
      code_ = "ERR_INTERNAL";
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Result(Env())); }
  void OnError(const Napi::Error& error) override {
    deferred_.Reject(errorToJs(Env(), code_, error.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string code_ = "ERR_INTERNAL";
};

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

struct ProgressMessage {
  sdnode::Progress progress;
  std::promise<void> delivered;
};

class GenerateWorker : public PromiseWorker {
 public:
  GenerateWorker(Napi::Env env, std::shared_ptr<ModelHandle> handle, sdnode::Request request, Napi::Function onProgress,
                 std::shared_ptr<std::atomic<bool>> abortFlag)
      : PromiseWorker(env), handle_(std::move(handle)), request_(std::move(request)), abortFlag_(std::move(abortFlag)) {
    if (!onProgress.IsEmpty()) {
      progress_ = Napi::ThreadSafeFunction::New(env, onProgress, "sdnode-progress", 0, 1);
      hasProgress_ = true;
    }
  }

 protected:
  void Work() override {
    std::lock_guard<std::mutex> lock(handle_->busy);
    struct Release {
      GenerateWorker* self;
      ~Release() {
        if (self->hasProgress_) self->progress_.Release();
      }
    } release{this};
    if (!handle_->model) throw ModelClosed();
    sdnode::Callbacks callbacks;
    callbacks.aborted = [flag = abortFlag_] { return flag->load(); };
    if (hasProgress_) callbacks.onProgress = [this](const sdnode::Progress& p) { deliver(p); };
    images_ = handle_->model->generate(request_, callbacks);
  }
  Napi::Value Result(Napi::Env env) override { return imagesToJs(env, images_); }

 private:
  std::shared_ptr<ModelHandle> handle_;
  sdnode::Request request_;
  std::shared_ptr<std::atomic<bool>> abortFlag_;
  Napi::ThreadSafeFunction progress_;
  bool hasProgress_ = false;
  std::vector<sdnode::Image> images_;

  // Waits until JS has seen the event, so every progress call lands before the promise settles.
  void deliver(const sdnode::Progress& p) {
    auto* message = new ProgressMessage{p, {}};
    std::future<void> done = message->delivered.get_future();
    napi_status status = progress_.BlockingCall(message, [](Napi::Env env, Napi::Function fn, ProgressMessage* m) {
      if (env != nullptr && !fn.IsEmpty()) {
        try {
          fn.Call({progressToJs(env, m->progress)});
        } catch (const Napi::Error&) {
          // A throwing progress listener must not stop the generation.
        }
      }
      m->delivered.set_value();
      delete m;
    });
    if (status == napi_ok) {
      done.wait();
    } else {
      delete message;
    }
  }
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

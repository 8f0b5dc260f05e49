#include "model_wrap.h"

#include "addon_data.h"
#include "convert.h"
#include "progress_channel.h"
#include "promise_worker.h"
#include "stage_worker.h"

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
  GenerateWorker(Napi::Env env, std::shared_ptr<ModelHandle> handle, std::shared_ptr<ModelHandle> refiner, sdnode::Request request,
                 Napi::Function onProgress, std::shared_ptr<std::atomic<bool>> abortFlag)
      : PromiseWorker(env),
        handle_(std::move(handle)),
        refiner_(std::move(refiner)),
        request_(std::move(request)),
        abortFlag_(std::move(abortFlag)),
        progress_(env, onProgress, "sdnode-progress", progressToJs) {}

 protected:
  void Work() override {
    // Both models stay ours for the whole call; std::lock takes the pair without deadlocking against
    // a call that uses them the other way round.
    std::unique_lock<std::mutex> lock(handle_->busy, std::defer_lock);
    std::unique_lock<std::mutex> refinerLock;
    if (refiner_) {
      refinerLock = std::unique_lock<std::mutex>(refiner_->busy, std::defer_lock);
      std::lock(lock, refinerLock);
    } else {
      lock.lock();
    }
    struct Close {
      ProgressChannel<sdnode::Progress>& channel;
      ~Close() { channel.close(); }
    } close{progress_};
    if (!handle_->object) throw modelClosed();
    if (refiner_) {
      if (!refiner_->object) throw ObjectClosed("refiner.model was closed", "ERR_MODEL_CLOSED");
      request_.refiner->model = refiner_->object.get();
    }
    sdnode::Callbacks callbacks;
    callbacks.aborted = [flag = abortFlag_] { return flag->load(); };
    if (progress_.open()) callbacks.onProgress = [this](const sdnode::Progress& p) { progress_.deliver(p); };
    images_ = handle_->object->generate(request_, callbacks);
  }
  Napi::Value Result(Napi::Env env) override { return imagesToJs(env, images_); }

 private:
  std::shared_ptr<ModelHandle> handle_;
  std::shared_ptr<ModelHandle> refiner_;  // null: no refiner hand-off
  sdnode::Request request_;
  std::shared_ptr<std::atomic<bool>> abortFlag_;
  ProgressChannel<sdnode::Progress> progress_;
  std::vector<sdnode::Image> images_;
};

}  // namespace

Napi::Function ModelWrap::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Model",
                                    {InstanceMethod("generate", &ModelWrap::Generate), InstanceMethod("encodeText", &ModelWrap::EncodeText),
                                     InstanceMethod("encodeImage", &ModelWrap::EncodeImage),
                                     InstanceMethod("sampleLatent", &ModelWrap::SampleLatent),
                                     InstanceMethod("decodeLatent", &ModelWrap::DecodeLatent), InstanceMethod("abort", &ModelWrap::Abort),
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
  const Napi::Object requestObject = info[0].As<Napi::Object>();
  sdnode::Request request = requestFromJs(requestObject);
  std::shared_ptr<ModelHandle> refiner;
  if (request.refiner) {
    refiner = HandleOf(env, requestObject.Get("refiner").As<Napi::Object>().Get("model"));
    if (!refiner) throw Napi::TypeError::New(env, "refiner.model must be an open Model object");
    if (refiner == handle_) throw Napi::TypeError::New(env, "refiner.model must be another model than the one generating");
  }
  Napi::Function onProgress = info.Length() > 1 && info[1].IsFunction() ? info[1].As<Napi::Function>() : Napi::Function();
  abortFlag_ = std::make_shared<std::atomic<bool>>(false);
  auto* worker = new GenerateWorker(env, handle_, std::move(refiner), std::move(request), onProgress, abortFlag_);
  return queued(worker);
}

namespace {

Napi::Object objectArgument(const Napi::CallbackInfo& info, size_t index, const char* call) {
  if (info.Length() <= index || !info[index].IsObject()) {
    throw Napi::TypeError::New(info.Env(), std::string(call) + " needs an object as argument " + std::to_string(index + 1));
  }
  return info[index].As<Napi::Object>();
}

Napi::Function progressArgument(const Napi::CallbackInfo& info, size_t index) {
  return info.Length() > index && info[index].IsFunction() ? info[index].As<Napi::Function>() : Napi::Function();
}

}  // namespace

// encodeText({ prompt, clipG, t5, clipSkip, loras }) -> Promise<{ hidden, tokens, pooled, mask }>
Napi::Value ModelWrap::EncodeText(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!handle_) return rejected(env, "ERR_MODEL_CLOSED", "the model was closed");
  auto request = std::make_shared<sdnode::TextRequest>(textRequestFromJs(objectArgument(info, 0, "encodeText")));
  auto out = std::make_shared<sdnode::EncodedText>();
  abortFlag_ = std::make_shared<std::atomic<bool>>(false);
  return queued(new StageWorker(
      env, handle_, [request, out](sdnode::Model& m, const sdnode::Callbacks&) { *out = m.encodeText(*request); },
      [out](Napi::Env e) -> Napi::Value { return encodedTextToJs(e, *out); }, Napi::Function(), abortFlag_));
}

// encodeImage({ data, width, height, tiled, sampled, seed, rng }) -> Promise<latent>
Napi::Value ModelWrap::EncodeImage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!handle_) return rejected(env, "ERR_MODEL_CLOSED", "the model was closed");
  const Napi::Object o = objectArgument(info, 0, "encodeImage");
  const Napi::Value data = o.Get("data");
  if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "internal: encodeImage's data must be a Uint8Array");
  }
  Napi::Uint8Array bytes = data.As<Napi::Uint8Array>();
  auto rgb = std::make_shared<std::vector<uint8_t>>(bytes.Data(), bytes.Data() + bytes.ElementLength());
  const int width = o.Get("width").As<Napi::Number>().Int32Value(), height = o.Get("height").As<Napi::Number>().Int32Value();
  const bool tiled = o.Get("tiled").ToBoolean(), sampled = o.Get("sampled").ToBoolean();
  const uint64_t seed = static_cast<uint64_t>(o.Get("seed").ToNumber().DoubleValue());
  const std::string rng = o.Get("rng").IsString() ? o.Get("rng").As<Napi::String>().Utf8Value() : "gpu";
  auto out = std::make_shared<sdnode::LatentBatch>();
  abortFlag_ = std::make_shared<std::atomic<bool>>(false);
  return queued(new StageWorker(
      env, handle_,
      [=](sdnode::Model& m, const sdnode::Callbacks&) { *out = m.encodeImage(*rgb, width, height, tiled, sampled, seed, rng); },
      [out](Napi::Env e) -> Napi::Value { return latentToJs(e, *out); }, Napi::Function(), abortFlag_));
}

// sampleLatent(request, latent, onProgress) -> Promise<latent>
Napi::Value ModelWrap::SampleLatent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!handle_) return rejected(env, "ERR_MODEL_CLOSED", "the model was closed");
  auto request = std::make_shared<sdnode::SampleRequest>(sampleRequestFromJs(objectArgument(info, 0, "sampleLatent")));
  auto latent = std::make_shared<sdnode::LatentBatch>(latentFromJs(objectArgument(info, 1, "sampleLatent")));
  auto out = std::make_shared<sdnode::LatentBatch>();
  abortFlag_ = std::make_shared<std::atomic<bool>>(false);
  return queued(new StageWorker(
      env, handle_,
      [request, latent, out](sdnode::Model& m, const sdnode::Callbacks& callbacks) { *out = m.sampleLatent(*request, *latent, callbacks); },
      [out](Napi::Env e) -> Napi::Value { return latentToJs(e, *out); }, progressArgument(info, 2), abortFlag_));
}

// decodeLatent(latent, tiled) -> Promise<{ width, height, data }[]>
Napi::Value ModelWrap::DecodeLatent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!handle_) return rejected(env, "ERR_MODEL_CLOSED", "the model was closed");
  auto latent = std::make_shared<sdnode::LatentBatch>(latentFromJs(objectArgument(info, 0, "decodeLatent")));
  const bool tiled = info.Length() > 1 && info[1].ToBoolean();
  auto out = std::make_shared<std::vector<sdnode::Image>>();
  abortFlag_ = std::make_shared<std::atomic<bool>>(false);
  return queued(new StageWorker(
      env, handle_, [latent, tiled, out](sdnode::Model& m, const sdnode::Callbacks& callbacks) { *out = m.decodeLatent(*latent, tiled, callbacks); },
      [out](Napi::Env e) -> Napi::Value { return imagesToJs(e, *out); }, Napi::Function(), abortFlag_));
}

std::shared_ptr<ModelHandle> ModelWrap::HandleOf(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(addonData(env).model.Value())) return nullptr;
  return Napi::ObjectWrap<ModelWrap>::Unwrap(value.As<Napi::Object>())->handle_;
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

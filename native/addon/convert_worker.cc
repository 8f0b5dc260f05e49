#include "convert_worker.h"

#include <atomic>
#include <memory>

#include "convert.h"
#include "progress_channel.h"
#include "promise_worker.h"

namespace sdnode_addon {

namespace {

class ConvertWorker : public PromiseWorker {
 public:
  ConvertWorker(Napi::Env env, sdnode::ConvertParams params, Napi::Function onProgress,
                std::shared_ptr<std::atomic<bool>> abortFlag)
      : PromiseWorker(env),
        params_(std::move(params)),
        abortFlag_(std::move(abortFlag)),
        progress_(env, onProgress, "sdnode-convert-progress", convertProgressToJs) {}

 protected:
  void Work() override {
    struct Close {
      ProgressChannel<sdnode::ConvertProgress>& channel;
      ~Close() { channel.close(); }
    } close{progress_};
    sdnode::ConvertCallbacks callbacks;
    callbacks.aborted = [flag = abortFlag_] { return flag->load(); };
    if (progress_.open()) callbacks.onProgress = [this](const sdnode::ConvertProgress& p) { progress_.deliver(p); };
    result_ = sdnode::convertToGguf(params_, callbacks);
  }
  Napi::Value Result(Napi::Env env) override { return convertResultToJs(env, result_); }

 private:
  sdnode::ConvertParams params_;
  std::shared_ptr<std::atomic<bool>> abortFlag_;
  ProgressChannel<sdnode::ConvertProgress> progress_;
  sdnode::ConvertResult result_;
};

}  // namespace

Napi::Value ConvertModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsObject()) {
    throw Napi::TypeError::New(env, "convertModel(input, output, options, onProgress) needs two path strings and an options object");
  }
  sdnode::ConvertParams params = convertParamsFromJs(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value(),
                                                     info[2].As<Napi::Object>());
  Napi::Function onProgress = info.Length() > 3 && info[3].IsFunction() ? info[3].As<Napi::Function>() : Napi::Function();
  auto abortFlag = std::make_shared<std::atomic<bool>>(false);
  auto* worker = new ConvertWorker(env, std::move(params), onProgress, abortFlag);
  Napi::Object job = Napi::Object::New(env);
  job.Set("done", worker->Promise());
  job.Set("abort", Napi::Function::New(env, [abortFlag](const Napi::CallbackInfo& call) {
    abortFlag->store(true);
    return call.Env().Undefined();
  }, "abort"));
  worker->Queue();
  return job;
}

}  // namespace sdnode_addon

// One call of the stage API (encodeText, encodeImage, sampleLatent, decodeLatent) as an async
// worker: it holds the model's lock for the call, like generate, and reports sampler progress.
#pragma once

#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>

#include "native_handle.h"
#include "progress_channel.h"
#include "promise_worker.h"
#include "sdnode.h"

namespace sdnode_addon {

class StageWorker : public PromiseWorker {
 public:
  // `run` works off the main thread and keeps its result; `result` turns it into JS afterwards.
  using Run = std::function<void(sdnode::Model&, const sdnode::Callbacks&)>;
  using ToJs = std::function<Napi::Value(Napi::Env)>;

  StageWorker(Napi::Env env, std::shared_ptr<NativeHandle<sdnode::Model>> handle, Run run, ToJs toJs,
              Napi::Function onProgress, std::shared_ptr<std::atomic<bool>> abortFlag)
      : PromiseWorker(env),
        handle_(std::move(handle)),
        run_(std::move(run)),
        toJs_(std::move(toJs)),
        abortFlag_(std::move(abortFlag)),
        progress_(env, onProgress, "sdnode-stage-progress", progressToJs) {}

 protected:
  void Work() override {
    std::lock_guard<std::mutex> lock(handle_->busy);
    struct Close {
      ProgressChannel<sdnode::Progress>& channel;
      ~Close() { channel.close(); }
    } close{progress_};
    if (!handle_->object) throw ObjectClosed("the model was closed", "ERR_MODEL_CLOSED");
    sdnode::Callbacks callbacks;
    callbacks.aborted = [flag = abortFlag_] { return flag->load(); };
    if (progress_.open()) callbacks.onProgress = [this](const sdnode::Progress& p) { progress_.deliver(p); };
    run_(*handle_->object, callbacks);
  }
  Napi::Value Result(Napi::Env env) override { return toJs_(env); }

 private:
  std::shared_ptr<NativeHandle<sdnode::Model>> handle_;
  Run run_;
  ToJs toJs_;
  std::shared_ptr<std::atomic<bool>> abortFlag_;
  ProgressChannel<sdnode::Progress> progress_;
};

}  // namespace sdnode_addon

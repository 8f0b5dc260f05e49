// An async worker that settles a promise: `Work()` runs off the main thread and may throw; engine
// errors reject with their stable code, everything else with ERR_INTERNAL / ERR_OUT_OF_MEMORY.
#pragma once

#include <napi.h>

#include <new>
#include <stdexcept>
#include <string>

#include "convert.h"
#include "sdnode.h"

namespace sdnode_addon {

// Thrown by a worker whose model was closed before it ran.
struct ModelClosed : std::runtime_error {
  ModelClosed() : std::runtime_error("the model was closed") {}
};

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
  void OnError(const Napi::Error& error) override { deferred_.Reject(errorToJs(Env(), code_, error.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string code_ = "ERR_INTERNAL";
};

}  // namespace sdnode_addon

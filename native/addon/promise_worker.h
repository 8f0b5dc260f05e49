// An async worker that settles a promise: `Work()` runs off the main thread and may throw; engine
// errors reject with their stable code, a closed object with its own code, everything else with
// ERR_INTERNAL / ERR_OUT_OF_MEMORY.
#pragma once

#include <napi.h>

#include <new>
#include <stdexcept>
#include <string>

#include "convert.h"
#include "sdnode.h"

namespace sdnode_addon {

// Thrown by a worker whose native object was closed before it ran.
struct ObjectClosed : std::runtime_error {
  ObjectClosed(const std::string& message, std::string code) : std::runtime_error(message), code(std::move(code)) {}
  std::string code;
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
    } catch (const ObjectClosed& e) {
      code_ = e.code;
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

// A promise already rejected with `code`, for calls on a closed object.
inline Napi::Value rejected(Napi::Env env, const std::string& code, const std::string& message) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(errorToJs(env, code, message).Value());
  return deferred.Promise();
}

}  // namespace sdnode_addon

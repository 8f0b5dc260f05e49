// What each JS object over an engine object shares with its running workers: the engine object,
// a lock that keeps calls one at a time, and the plumbing from loader to ObjectWrap constructor.
#pragma once

#include <napi.h>

#include <memory>
#include <mutex>

namespace sdnode_addon {

// Shared by the JS object and any running worker, so close() during a call frees the engine
// object only when that call has finished.
template <typename T>
struct NativeHandle {
  std::unique_ptr<T> object;
  std::mutex busy;  // one call at a time

  // Frees the object now unless a call holds it; that call's reference frees it when it ends.
  static void release(std::shared_ptr<NativeHandle> handle) {
    if (handle && handle->busy.try_lock()) {
      handle->object.reset();
      handle->busy.unlock();
    }
  }
};

// A handle boxed for an ObjectWrap constructor, which only JS-visible values can reach.
template <typename Handle>
Napi::External<std::shared_ptr<Handle>> boxHandle(Napi::Env env, std::shared_ptr<Handle> handle) {
  auto* boxed = new std::shared_ptr<Handle>(std::move(handle));
  return Napi::External<std::shared_ptr<Handle>>::New(env, boxed, [](Napi::Env, std::shared_ptr<Handle>* p) { delete p; });
}

// The handle a constructor was given; a TypeError with `message` when JS called it directly.
template <typename Handle>
std::shared_ptr<Handle> unboxHandle(const Napi::CallbackInfo& info, const char* message) {
  if (info.Length() < 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), message);
  return *info[0].As<Napi::External<std::shared_ptr<Handle>>>().Data();
}

// Starts an async worker and returns its promise.
template <typename Worker>
Napi::Value queued(Worker* worker) {
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace sdnode_addon

// Progress from a worker thread to a JS callback. deliver() waits until JS has seen the event, so
// events arrive in order, all before the call's promise settles, and whatever the listener did
// (an abort, say) is in effect before the worker goes on.
#pragma once

#include <napi.h>

#include <future>

namespace sdnode_addon {

template <typename Event>
class ProgressChannel {
 public:
  using ToJs = Napi::Object (*)(Napi::Env, const Event&);

  // An empty `callback` makes a channel that drops every event.
  ProgressChannel(Napi::Env env, Napi::Function callback, const char* name, ToJs toJs) : toJs_(toJs) {
    if (callback.IsEmpty()) return;
    function_ = Napi::ThreadSafeFunction::New(env, callback, name, 0, 1);
    open_ = true;
  }

  bool open() const { return open_; }

  // Worker thread only.
  void deliver(const Event& event) {
    if (!open_) return;
    auto* message = new Message{event, toJs_, {}};
    std::future<void> done = message->delivered.get_future();
    napi_status status = function_.BlockingCall(message, [](Napi::Env env, Napi::Function fn, Message* m) {
      if (env != nullptr && !fn.IsEmpty()) {
        try {
          fn.Call({m->toJs(env, m->event)});
        } catch (const Napi::Error&) {
          // A throwing listener must not stop the work.
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

  // Worker thread, once, when no more events will come.
  void close() {
    if (open_) function_.Release();
    open_ = false;
  }

 private:
  struct Message {
    Event event;
    ToJs toJs;
    std::promise<void> delivered;
  };
  Napi::ThreadSafeFunction function_;
  ToJs toJs_;
  bool open_ = false;
};

}  // namespace sdnode_addon

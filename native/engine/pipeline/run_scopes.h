// What every call into a diffusion model sets up for its duration: the abort check the backend
// polls, seamless tiling, and the mapping of library exceptions to engine errors.
#pragma once

#include <functional>
#include <new>
#include <stdexcept>
#include <utility>

#include "backend.h"
#include "sdnode.h"
#include "unet.h"
#include "vae.h"

namespace sdnode {

struct AbortScope {
  Backend& backend;
  AbortScope(Backend& b, std::function<bool()> check) : backend(b) { backend.setAbortCheck(std::move(check)); }
  ~AbortScope() { backend.setAbortCheck(nullptr); }
};

// Seamless tiling holds for one call only: the next call's convolutions pad with zeros again.
struct CircularScope {
  Unet& unet;
  Vae& vae;
  CircularScope(Unet& u, Vae& v, bool on) : unet(u), vae(v) {
    unet.setCircularPadding(on);
    vae.setCircularPadding(on);
  }
  ~CircularScope() {
    unet.setCircularPadding(false);
    vae.setCircularPadding(false);
  }
};

template <typename Fn>
auto asEngineError(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error&) {
    throw;
  } catch (const std::invalid_argument& e) {
    throw Error(ErrorCode::InvalidArgument, e.what());
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::OutOfMemory, "out of memory");
  }
}

}  // namespace sdnode

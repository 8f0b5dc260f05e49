// convertModel(): writes a GGUF file off the main thread (sdnode::convertToGguf).
#pragma once

#include <napi.h>

namespace sdnode_addon {

// convertModel(input, output, { weightType, threads }, onProgress?) -> { done: Promise<result>, abort() }
Napi::Value ConvertModel(const Napi::CallbackInfo& info);

}  // namespace sdnode_addon

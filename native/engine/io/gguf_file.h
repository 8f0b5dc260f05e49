// Reader for GGUF files (versions 2 and 3), as stable-diffusion.cpp's converter writes them: every
// count, length, type, shape and offset is checked against the file before anything is read or
// allocated from it, so a truncated or hostile file is an error naming the tensor, never a crash.
// (Not named gguf.h: that is ggml's header, which this one must not shadow.)
#pragma once

#include <string>

#include "checkpoint.h"

namespace sdnode {

// Throws sdnode::Error (ModelIo / ModelFormat).
Checkpoint readGguf(const std::string& path);

}  // namespace sdnode

// Reader for .safetensors files: validates the header against the file before any tensor read.
#pragma once

#include <string>

#include "checkpoint.h"

namespace sdnode {

// Every safetensors dtype is recognised (so real checkpoints with integer side tensors such as
// position_ids open); which of them can be weights is isWeightType's business. Throws
// sdnode::Error (ModelIo / ModelFormat) naming the file and the offending tensor.
Checkpoint readSafetensors(const std::string& path);

}  // namespace sdnode

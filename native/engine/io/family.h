// What a checkpoint holds, told from its tensor names: the model family, and which tensors are the
// model's weights. Loading and converting decide both the same way.
#pragma once

#include <string>

#include "checkpoint.h"

namespace sdnode {

// "sd1", "sd2", "sdxl" or "sdxl-refiner"; throws ModelUnsupported (naming the file) for anything else.
std::string detectFamily(const Checkpoint& file);

// Whether `t` is a weight of the model: under a component prefix (text encoder, UNet, VAE), of a
// type a weight can be stored in, and not empty. Everything else (EMA copies, position ids,
// optimizer state) is left in the file.
bool isModelWeight(const CheckpointTensor& t);

}  // namespace sdnode

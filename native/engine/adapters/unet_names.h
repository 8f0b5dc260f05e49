// The UNet's names in the two layouts files come in: the single-file LDM one (input_blocks.1.0.
// in_layers.2) and diffusers' (down_blocks.0.resnets.0.conv1). LoRA files (lora_names.cpp) and
// ControlNets in the diffusers layout (controlnet.cpp) are matched to a checkpoint through it.
#pragma once

#include <map>
#include <string>

#include "checkpoint.h"

namespace sdnode {

// Where LDM's numbered blocks sit in diffusers' levels: input block n is down_blocks[level] slot
// index (its resnets / attentions, or its downsampler), output block n is up_blocks[level] slot
// index. Read from where the down- and upsamplers are, so any ResBlock count per level works
// (SD 1.x/2.x/XL have two; the test fixtures one).
struct BlockPlace {
  int level = 0;
  int index = 0;
};

struct UnetBlocks {
  std::map<int, BlockPlace> input;
  std::map<int, BlockPlace> output;
};

// The block places of the UNet whose tensors are under `prefix` ("model.diffusion_model.").
UnetBlocks unetBlocks(const Checkpoint& file, const std::string& prefix);

// The diffusers module path of an LDM UNet module path (without ".weight"), or "".
std::string diffusersUnetPath(const std::string& ldm, const UnetBlocks& blocks);

}  // namespace sdnode

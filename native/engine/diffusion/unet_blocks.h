// The LDM UNet's blocks, shared by the UNet (unet.h) and the ControlNet (controlnet.h), whose
// network is a copy of the UNet's encoder under another prefix. Each reads its weights by the
// checkpoint prefix it is given.
#pragma once

#include <string>
#include <vector>

#include "backend.h"
#include "nn.h"
#include "unet.h"

namespace sdnode {

// The encoder half of an LDM UNet under `prefix` ("model.diffusion_model.", "control_model."): the
// stem (input_blocks.0.0), the time embedding's width, input_blocks.1…, the middle block, the
// cross-attention width and SDXL's label_emb; not the heads, which shapes cannot tell. Throws
// ModelUnsupported when there is no stem or the blocks do not form the layout.
void readUnetEncoder(const Weights& w, const std::string& prefix, UnetConfig& c);

// One block (input_blocks.N., middle_block., output_blocks.N.): a res block, then optionally a
// spatial transformer, then optionally a resampler. `channels`: the width going in, then out.
std::vector<UnetBlock> readUnetBlock(const Weights& w, const std::string& prefix, int64_t& channels);

// Throws ModelFormat when a spatial transformer's width does not split into the configured heads.
void checkUnetHeads(const UnetConfig& c, const std::vector<UnetBlock>& layers);

// The timestep embedding under `prefix` (time_embed.0/2), plus SDXL's label_emb of `added`
// ([admChannels]) when the config has one. -> [timeEmbedDim, 1]
ggml_tensor* unetEmbedding(Net& n, GraphBuild& g, const std::string& prefix, const UnetConfig& c, const float* timestep,
                           const float* added);

// x: [W, H, C, 1] through one block's layers; emb: [timeEmbedDim, 1]; context: [contextDim, T, 1].
// An upsampler grows x to skipTarget's size (the next skip connection's), or doubles it without one.
ggml_tensor* runUnetLayers(Net& n, ggml_tensor* x, const std::vector<UnetBlock>& layers, ggml_tensor* emb, ggml_tensor* context,
                           const UnetConfig& c, ggml_tensor* skipTarget);

}  // namespace sdnode

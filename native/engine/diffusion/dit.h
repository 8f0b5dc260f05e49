// Pieces the diffusion transformers share (FLUX.1, SD3's MMDiT): 2x2 patches on the host, the
// sinusoidal timestep embedding, adaLN modulation, and views of token sequences.
#pragma once

#include <cstdint>
#include <vector>

#include "ggml.h"

namespace sdnode {

constexpr int64_t kDitPatch = 2;

// The sinusoidal embedding of `t` (cos half first, max period 10000), 256 wide by default.
std::vector<float> timestepEmbedding(float t, int width = 256);

// latent [C, h, w] -> tokens [(h/2)*(w/2), C*2*2], each token's values ordered (channel, row,
// column): the order of a 2x2 stride-2 convolution's weights and of FLUX.1's img_in.
std::vector<float> patchify(const std::vector<float>& latent, int64_t C, int64_t h, int64_t w);

// How a transformer orders a token's output values.
enum class PatchOrder {
  ChannelFirst,  // (channel, row, column): FLUX.1
  ChannelLast,   // (row, column, channel): SD3's final layer
};

// tokens [(h/2)*(w/2), C*2*2] -> latent [C, h, w].
std::vector<float> unpatchify(const std::vector<float>& tokens, int64_t C, int64_t h, int64_t w, PatchOrder order);

// x: [hidden, T]; layer norm without affine weights, then x * (1 + scale) + shift (each [hidden]).
ggml_tensor* modulate(ggml_context* ctx, ggml_tensor* x, ggml_tensor* shift, ggml_tensor* scale);

// The value range [from, from + count) of every token of x: [C, T].
ggml_tensor* valuesOf(ggml_context* ctx, ggml_tensor* x, int64_t from, int64_t count);

// The token range [from, from + count) of x: [C, T].
ggml_tensor* tokensOf(ggml_context* ctx, ggml_tensor* x, int64_t from, int64_t count);

// The i-th of the [width] pieces a modulation vector m: [k * width] is cut into.
ggml_tensor* pieceOf(ggml_context* ctx, ggml_tensor* m, int64_t width, int i);

// Whether block `index` is in `blocks` (null: none is), the blocks skip-layer guidance leaves out.
bool skipped(const std::vector<int32_t>* blocks, int index);

}  // namespace sdnode

// Pieces the diffusion transformers share (FLUX.1, SD3's MMDiT): 2x2 patches on the host, the
// sinusoidal timestep embedding, adaLN modulation, and views of token sequences.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "ggml.h"

namespace sdnode {

constexpr int64_t kDitPatch = 2;

// The sinusoidal embedding of `t` (cos half first, max period 10000), 256 wide by default.
std::vector<float> timestepEmbedding(float t, int width = 256);

// How a transformer orders a token's values.
enum class PatchOrder {
  ChannelFirst,  // (channel, row, column): a 2x2 stride-2 convolution's weights, FLUX.1's img_in
  ChannelLast,   // (row, column, channel): SD3's final layer, Z-Image's x_embedder and final layer
};

// latent [C, h, w] -> tokens [(h/2)*(w/2), C*2*2], each token's values in `order`.
std::vector<float> patchify(const std::vector<float>& latent, int64_t C, int64_t h, int64_t w,
                            PatchOrder order = PatchOrder::ChannelFirst);

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

// A token's RoPE position, one coordinate per axis (index, row, column).
using RopePosition = std::array<float, 3>;

// RoPE angles' cosines then sines, [tokens][pairs] each: each axis rotates its own run of
// axes[a] / 2 pairs, pair j of it by position[a] * theta^(-2j / axes[a]).
std::vector<float> ropeTable(const std::vector<int>& axes, float theta, const std::vector<RopePosition>& positions);

// The two halves of a ropeTable as graph inputs.
struct Rope {
  ggml_tensor* cos;  // [1, pairs, 1, T]
  ggml_tensor* sin;
};

// table: [pairs, T, 2], a ropeTable as an input; the angles of its tokens [from, from + count), all
// of them when count < 0.
Rope ropeOf(ggml_context* ctx, ggml_tensor* table, int64_t from = 0, int64_t count = -1);

// x: [d, heads, T] -> rotated, [d * heads, T]: adjacent pairs turn by their token's angles.
ggml_tensor* rotate(ggml_context* ctx, ggml_tensor* x, const Rope& rope);

// Whether block `index` is in `blocks` (null: none is), the blocks skip-layer guidance leaves out.
bool skipped(const std::vector<int32_t>* blocks, int index);

}  // namespace sdnode

// Layers shared by CLIP, the UNet and the VAE. Each takes the checkpoint prefix of its weights and
// the sizes it expects, so a tensor name in an error leads straight to the layer that wanted it.
// ggml orders dimensions innermost first: images are [W, H, C, N], token sequences [C, T, N].
#pragma once

#include <string>

#include "ggml.h"
#include "weights.h"

namespace sdnode {

class GraphBuild;

struct Net {
  ggml_context* ctx;
  Weights& w;
  // Convolutions pad by wrapping around the image's edges (seamless tiling) instead of with zeros.
  bool circular = false;
  // The graph being built, when layers may use ops of ours on the CPU (see conv3x3.h).
  GraphBuild* graph = nullptr;
};

// x: [in, T, N] -> [out, T, N]
ggml_tensor* linear(Net& n, ggml_tensor* x, const std::string& prefix, int64_t in, int64_t out, bool bias = true);
// x: [W, H, in, N] -> [W', H', out, N]; `padding` wraps around when n.circular.
ggml_tensor* conv2d(Net& n, ggml_tensor* x, const std::string& prefix, int64_t in, int64_t out, int kernel, int stride = 1,
                    int padding = 0, bool bias = true);
// x: [W, H, C, N], 32 groups
ggml_tensor* groupNorm(Net& n, ggml_tensor* x, const std::string& prefix, int64_t channels, float eps = 1e-6f);
// x: [C, T, N]
ggml_tensor* layerNorm(Net& n, ggml_tensor* x, const std::string& prefix, int64_t channels, float eps = 1e-5f);
// q: [C, Tq, N], k and v: [C, Tk, N] -> [C, Tq, N]; scaled dot-product attention over `heads` heads.
// Causal attention (CLIP, 77 tokens) and `exact` attention take the plain f32 path; the rest uses
// ggml's fused kernel, whose keys and values are f16, where the backend runs it for this head width
// (CUDA and Metal lack some). `exact` is for short sequences whose result is compared against
// thresholds (the safety checker's 257 tokens), where f16 keys would move scores.
ggml_tensor* attention(Net& n, ggml_tensor* q, ggml_tensor* k, ggml_tensor* v, int heads, bool causal, bool exact = false);
// The plain path with an additive bias on the scores, bias: [Tk, Tq, heads] (T5's relative
// positions), and the scores' scale given (T5 does not divide by the square root of the head width).
ggml_tensor* attentionWithBias(Net& n, ggml_tensor* q, ggml_tensor* k, ggml_tensor* v, int heads, ggml_tensor* bias, float scale);
// x: [d * kvHeads, T] -> [d * heads, T]: grouped-query attention's keys or values, each of the
// kvHeads serving heads / kvHeads query heads in a row (head h reads kv head h / (heads / kvHeads)).
ggml_tensor* repeatKvHeads(ggml_context* ctx, ggml_tensor* x, int64_t d, int64_t kvHeads, int64_t heads);
// x: [C, T, N]: x / rms(x) * weight, without a mean or a bias (T5, Flux's q/k norms).
ggml_tensor* rmsNorm(Net& n, ggml_tensor* x, const std::string& weightName, int64_t channels, float eps = 1e-6f);
// [W, H, C, N] <-> [C, W*H, N]
ggml_tensor* imageToTokens(ggml_context* ctx, ggml_tensor* x);
ggml_tensor* tokensToImage(ggml_context* ctx, ggml_tensor* x, int64_t width, int64_t height);

}  // namespace sdnode

// CLIP text encoder: OpenAI ViT-L/14 layout (SD 1.x) and OpenCLIP ViT-H layout (SD 2.x),
// sizes read from the checkpoint.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend.h"
#include "nn.h"
#include "weights.h"

namespace sdnode {

// One pre-norm transformer layer of a CLIP encoder, text or vision: the names of its weights under
// the layer's prefix, and its sizes.
struct ClipLayerNames {
  std::string norm1, q, k, v, out, norm2, fc1, fc2;
  // OpenCLIP's packed q/k/v projection (`<packedQkv>_weight`, `_bias`), used when present; "" for none.
  std::string packedQkv;
};

struct ClipLayerShape {
  int64_t width = 768;
  int64_t mlp = 3072;
  int heads = 12;
  bool causal = false;     // text: each token sees the ones before it
  bool quickGelu = true;   // OpenAI's CLIP (text and vision); OpenCLIP ViT-H uses GELU
  bool exactAttention = false;
};

// How many tensors `before`0`after`, `before`1`after`, … exist without a gap: a layer count.
int countIndexed(const Weights& w, const std::string& before, const std::string& after);

// x: [width, T, N] -> [width, T, N]
ggml_tensor* clipLayer(Net& n, ggml_tensor* x, const std::string& prefix, const ClipLayerNames& names,
                       const ClipLayerShape& shape);

struct ClipConfig {
  bool openClip = false;  // SD 2.x layout (cond_stage_model.model.*)
  int64_t vocab = 49408;
  int64_t positions = 77;
  int64_t width = 768;
  int64_t mlp = 3072;
  int layers = 12;
  int heads = 12;
  int defaultClipSkip = 1;  // 1: last layer; SD 2.x uses the penultimate one
};

ClipConfig readClipConfig(const Weights& w, const std::map<std::string, std::string>& metadata);

class ClipTextEncoder {
 public:
  ClipTextEncoder(const ClipConfig& config, Weights& weights, Backend& backend);

  const ClipConfig& config() const { return config_; }
  // tokens: rows of `positions` ids; returns hidden states [rows * positions, width] (width
  // innermost) with the per-token weights applied, A1111-style (each row's mean restored).
  std::vector<float> encode(const std::vector<int32_t>& tokens, const std::vector<float>& weights, int clipSkip);
  // Builds the graph once without running it, so a checkpoint that disagrees fails at load time.
  void validate();
  // Frees the compute buffer between phases; the next call allocates it again.
  void releaseBuffers() { runner_.release(); }

 private:
  ClipConfig config_;
  Weights& weights_;
  GraphRunner runner_;
  ggml_tensor* build(GraphBuild& g, const int32_t* tokens, int64_t rows, int layers);
};

}  // namespace sdnode

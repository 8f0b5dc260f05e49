// CLIP text encoders: OpenAI ViT-L/14 layout (SD 1.x, SDXL's first encoder) and OpenCLIP layout
// (SD 2.x's ViT-H, SDXL's ViT-bigG), sizes read from the checkpoint.
#pragma once

#include <cstdint>
#include <map>
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
  bool openClip = false;  // OpenCLIP layout (<component>model.*)
  std::string prefix;     // the text tower's names start with this
  int64_t vocab = 49408;
  int64_t positions = 77;
  int64_t width = 768;
  int64_t mlp = 3072;
  int64_t projection = 0;  // width of the pooled output (text_projection), 0 when not used
  std::string projectionName;  // the projection's tensor: OpenCLIP's text_projection or HF's text_projection.weight
  // OpenAI's CLIP was trained with quick-GELU, OpenCLIP's ViT-H and ViT-bigG with GELU (whatever the layout's names).
  bool quickGelu = true;
  int layers = 12;
  int heads = 12;
  int defaultClipSkip = 1;  // 1: last layer; SD 2.x and SDXL use the penultimate one
  // Whether the hidden states pass the final layer norm (SD 1.x/2.x) or not (SDXL).
  bool finalNormOnHidden = true;
  // The id every position after the first end token gets (SDXL's bigG pads with 0); -1: as given.
  int32_t padAfterEnd = -1;
};

// The text encoder stored under `component` ("cond_stage_model.", "conditioner.embedders.0.").
ClipConfig readClipConfig(const Weights& w, const std::map<std::string, std::string>& metadata, const std::string& component);

// What one encoder call returns.
struct ClipOutput {
  std::vector<float> hidden;  // [rows * 77, width], width innermost
  std::vector<float> pooled;  // [projection] of the first row; empty unless asked for
};

class ClipTextEncoder {
 public:
  ClipTextEncoder(const ClipConfig& config, Weights& weights, Backend& backend);

  const ClipConfig& config() const { return config_; }
  // tokens: rows of 77 ids. Returns the hidden states of the layer clipSkip selects (0: the
  // family's default) and, with `pooled`, the projected last-layer state at the first row's end token.
  // Ids from the vocabulary's size on stand for rows of `extra` ([rows, width]: textual inversion).
  ClipOutput encode(const std::vector<int32_t>& tokens, int clipSkip, bool pooled, const std::vector<float>& extra = {});
  // Builds the graph once without running it, so a checkpoint that disagrees fails at load time.
  void validate();
  // Frees the compute buffer between phases; the next call allocates it again.
  void releaseBuffers() { runner_.release(); }

 private:
  ClipConfig config_;
  Weights& weights_;
  GraphRunner runner_;
  ggml_tensor* build(GraphBuild& g, const int32_t* tokens, int64_t rows, int hiddenLayers, bool finalNorm, const int32_t* poolRow,
                     const std::vector<float>& extra = {});
};

// A1111's emphasis: scales each token's hidden state [rows * 77, width] by its weight, then restores
// each row's mean so the overall magnitude stays.
void applyEmphasis(std::vector<float>& hidden, const std::vector<float>& weights, int64_t width);

}  // namespace sdnode

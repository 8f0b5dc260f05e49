// A Qwen3 language model used as a text encoder (Z-Image's Qwen3-4B), in Hugging Face's layout once
// loaded: embed_tokens.weight, layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, self_attn.{q,k}_norm,
// post_attention_layernorm, mlp.{gate,up,down}_proj}, norm.weight. Grouped-query attention (fewer
// key/value heads than query heads), RMS norms (also over each head's q and k), rotary positions
// (NeoX halves, base 1e6), a SwiGLU MLP, causal attention. Sizes are read from the file: the head
// width from q_norm, the head counts from q_proj and k_proj, layers by counting them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend.h"
#include "weights.h"

namespace sdnode {

struct LlmConfig {
  int64_t vocab = 151936;
  int64_t width = 2560;
  int64_t ff = 9728;
  int64_t headWidth = 128;
  int64_t heads = 32;
  int64_t kvHeads = 8;
  int layers = 36;
  // The states handed on are those after this many layers, before the final norm; a file with fewer
  // layers gives its final normed states. Z-Image reads after layer 35 (of Qwen3-4B's 36).
  int tapLayer = 35;
};

// Throws ModelFormat naming `source` (the file and its flag) and the tensor when the file is not a
// Qwen3 model this reads.
LlmConfig readLlmConfig(const Weights& w, const std::string& source);

class LlmEncoder {
 public:
  LlmEncoder(const LlmConfig& config, Weights& weights, Backend& backend);

  const LlmConfig& config() const { return config_; }
  // The states of `tokens` (ids as given, any template included) at the tap: [tokens, width].
  std::vector<float> encode(const std::vector<int32_t>& tokens);
  void validate();
  void releaseBuffers() { runner_.release(); }

 private:
  LlmConfig config_;
  Weights& weights_;
  GraphRunner runner_;
  ggml_tensor* build(GraphBuild& g, const int32_t* tokens, const int32_t* positions, int64_t count);
};

}  // namespace sdnode

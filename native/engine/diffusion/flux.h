// FLUX.1's diffusion transformer (BFL's layout: img_in, time_in, vector_in, guidance_in, txt_in,
// double_blocks.N.*, single_blocks.N.*, final_layer.*), schnell and dev, and Chroma (the same blocks
// without their modulation weights, modulated by distilled_guidance_layer). Sizes are read from the
// file; heads are 128 wide as in every FLUX.1 release. The latent is patchified 2x2 here, on the
// host, so the graph sees tokens only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend.h"
#include "weights.h"

namespace sdnode {

struct FluxConfig {
  int64_t hidden = 3072;
  int64_t heads = 24;
  int64_t mlp = 12288;
  int64_t latentChannels = 16;  // img_in takes latentChannels x 2 x 2 per token
  int64_t contextDim = 4096;    // txt_in: T5's width
  int64_t pooledDim = 768;      // vector_in: CLIP-L's pooled width
  bool guidanceEmbed = false;   // FLUX.1 dev: the distilled guidance goes in through guidance_in
  // Chroma: no time_in / vector_in / per-block modulation weights; one approximator network
  // (distilled_guidance_layer) makes every block's modulation from the timestep.
  bool chroma = false;
  int doubleBlocks = 19;
  int singleBlocks = 38;
  std::vector<int> axes = {16, 56, 56};  // RoPE widths for (index, row, column); they sum to the head width
};

FluxConfig readFluxConfig(const Weights& w);

// A reference image's latent for FLUX.1 Kontext: its tokens follow the image's, at RoPE index 1.
struct FluxReference {
  std::vector<float> latent;  // [channels, h, w], normalised as the transformer's latents
  int64_t width = 0;          // latent cells (even)
  int64_t height = 0;
};

// What one transformer call sees besides the latent.
struct FluxInputs {
  const std::vector<float>* context = nullptr;  // [tokens, contextDim]
  int64_t contextTokens = 0;
  const std::vector<float>* pooled = nullptr;   // [pooledDim]
  float guidance = 3.5f;                         // used when the model embeds guidance
  const std::vector<FluxReference>* references = nullptr;  // Kontext; null or empty: none
  // Chroma: what is added to the attention scores of each text token as a key (0, or -infinity for
  // T5's padding); null: no mask.
  const std::vector<float>* textMask = nullptr;
  // Blocks left out (skip-layer guidance): double block i as i, single block i as doubleBlocks + i.
  const std::vector<int32_t>* skipBlocks = nullptr;
};

class FluxTransformer {
 public:
  FluxTransformer(const FluxConfig& config, Weights& weights, Backend& backend);

  const FluxConfig& config() const { return config_; }
  // latent: [channels, h, w] (h and w even); sigma in (0, 1]. Returns the predicted velocity, same shape.
  std::vector<float> forward(const std::vector<float>& latent, int64_t width, int64_t height, float sigma, const FluxInputs& in);
  void validate();
  void releaseBuffers() { runner_.release(); }

 private:
  FluxConfig config_;
  Weights& weights_;
  GraphRunner runner_;
  // tokens: the image's patches, then any references'; imageTokens: the image's alone.
  ggml_tensor* build(GraphBuild& g, const std::vector<float>& tokens, int64_t imageTokens, const std::vector<float>& rope,
                     const std::vector<float>& timeEmbedding, const std::vector<float>& guidanceEmbedding, const FluxInputs& in);
};

}  // namespace sdnode

// Z-Image's diffusion transformer (Lumina-2 style, Tongyi's layout: x_embedder, t_embedder.mlp.{0,2},
// cap_embedder.{0,1}, x_pad_token, cap_pad_token, context_refiner.N.*, noise_refiner.N.*, layers.N.*,
// final_layer.*). The text states are refined alone, the image tokens alone (modulated by the
// timestep), then both run through the main layers as one sequence. Each run is padded to a multiple
// of 32 tokens with its learned pad token; positions are 3-axis RoPE (text: (i + 1, 0, 0); image:
// (text run + 1, row, column); image padding: (0, 0, 0)). Sizes are read from the file: width from
// x_embedder, head width from q_norm, heads from qkv, layers and refiners by counting.
#pragma once

#include <cstdint>
#include <vector>

#include "backend.h"
#include "weights.h"

namespace sdnode {

struct ZImageConfig {
  int64_t hidden = 3840;
  int64_t headWidth = 128;
  int64_t heads = 30;
  int64_t kvHeads = 30;
  int64_t ff = 10240;
  int64_t latentChannels = 16;  // x_embedder takes latentChannels x 2 x 2 per token
  int64_t contextDim = 2560;    // cap_embedder: the text encoder's width
  int64_t timeWidth = 256;      // the timestep embedding's width after t_embedder (adaLN's input)
  int layers = 30;
  int refiners = 2;             // noise_refiner and context_refiner blocks each
};

// Throws ModelFormat (ModelUnsupported for heads other than 128 wide) naming `source` (the file and
// its flag) and the tensor when the file is not a Z-Image transformer this reads.
ZImageConfig readZImageConfig(const Weights& w, const std::string& source);

class ZImageTransformer {
 public:
  ZImageTransformer(const ZImageConfig& config, Weights& weights, Backend& backend);

  const ZImageConfig& config() const { return config_; }
  // latent: [channels, h, w] (h and w even); sigma in [0, 1]; context: [contextTokens, contextDim].
  // Returns the predicted velocity from image to noise, same shape as latent.
  std::vector<float> forward(const std::vector<float>& latent, int64_t width, int64_t height, float sigma,
                             const std::vector<float>& context, int64_t contextTokens);
  void validate();
  void releaseBuffers() { runner_.release(); }

 private:
  ZImageConfig config_;
  Weights& weights_;
  GraphRunner runner_;
  ggml_tensor* build(GraphBuild& g, const std::vector<float>& tokens, const std::vector<float>& context, int64_t textTokens,
                     const std::vector<float>& rope, const std::vector<float>& timeEmbedding);
};

}  // namespace sdnode

// SD3's and SD3.5's diffusion transformer, MMDiT and MMDiT-X (Stability's layout: x_embedder,
// pos_embed, t_embedder, y_embedder, context_embedder, joint_blocks.N.{context_block,x_block}.*,
// final_layer.*). Sizes come from the file; heads are as many as joint blocks (64 wide each), as in
// every SD3 release. SD3.5 adds RMS q/k norms (attn.ln_q, attn.ln_k) and, in its first blocks, a
// second self-attention over the image tokens (x_block.attn2).
#pragma once

#include <cstdint>
#include <vector>

#include "backend.h"
#include "weights.h"

namespace sdnode {

struct MmditConfig {
  int64_t hidden = 1536;
  int64_t heads = 24;
  int depth = 24;
  int64_t latentChannels = 16;
  int64_t contextDim = 4096;  // context_embedder's input: CLIP-L ‖ CLIP-G padded to T5's width, and T5's
  int64_t pooledDim = 2048;   // y_embedder's input: CLIP-L's and CLIP-G's pooled vectors
  int64_t mlp = 6144;
  int64_t posEmbedSide = 192;  // pos_embed holds side x side patch positions; the image's are cut from its centre
  bool qkNorm = false;         // SD3.5: RMS norms of q and k per head
  int selfAttentionBlocks = 0; // SD3.5 medium: blocks 0 … n-1 have x_block.attn2
};

MmditConfig readMmditConfig(const Weights& w);

struct MmditInputs {
  const std::vector<float>* context = nullptr;  // [tokens, contextDim]
  int64_t contextTokens = 0;
  const std::vector<float>* pooled = nullptr;   // [pooledDim]
  const std::vector<int32_t>* skipBlocks = nullptr;  // joint blocks left out (skip-layer guidance)
};

class MmditTransformer {
 public:
  MmditTransformer(const MmditConfig& config, Weights& weights, Backend& backend);

  const MmditConfig& config() const { return config_; }
  // latent: [channels, h, w] (h and w even); sigma in (0, 1]. Returns the predicted velocity.
  std::vector<float> forward(const std::vector<float>& latent, int64_t width, int64_t height, float sigma, const MmditInputs& in);
  void validate();
  void releaseBuffers() { runner_.release(); }

 private:
  MmditConfig config_;
  Weights& weights_;
  GraphRunner runner_;
  ggml_tensor* build(GraphBuild& g, const std::vector<float>& tokens, int64_t rows, int64_t columns, const std::vector<float>& time,
                     const MmditInputs& in);
};

}  // namespace sdnode

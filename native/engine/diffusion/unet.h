// The LDM UNet (model.diffusion_model.*): its blocks are discovered from the checkpoint's names,
// in the order the original code registers them, so any channel multipliers, depths or attention
// levels run.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backend.h"
#include "weights.h"

namespace sdnode {

struct UnetBlock {
  enum class Kind { Res, Transformer, Down, Up };
  Kind kind;
  std::string prefix;
  int64_t in = 0;
  int64_t out = 0;
  int depth = 1;  // transformer blocks inside a spatial transformer
};

struct UnetConfig {
  int64_t inChannels = 4;
  int64_t outChannels = 4;
  int64_t modelChannels = 320;
  int64_t timeEmbedDim = 1280;
  int64_t contextDim = 768;
  bool linearProjection = false;  // SD 2.x: proj_in/proj_out are linear layers
  int heads = 8;                  // fixed count (SD 1.x) ...
  int headDim = 0;                // ... or fixed width per head (SD 2.x, SDXL) when > 0
  // Width of the added conditioning vector (SDXL's label_emb: pooled text and size embeddings); 0: none.
  int64_t admChannels = 0;
  std::vector<std::vector<UnetBlock>> input;   // input_blocks.N: one entry per N
  std::vector<UnetBlock> middle;
  std::vector<std::vector<UnetBlock>> output;  // output_blocks.N
  int headsFor(int64_t channels) const { return headDim > 0 ? static_cast<int>(channels / headDim) : heads; }
};

// headDim64: heads of 64 channels (SD 2.x, SDXL) rather than 8 heads (SD 1.x).
UnetConfig readUnetConfig(const Weights& w, const std::map<std::string, std::string>& metadata, bool headDim64);

// What ControlNets add to the UNet (controlnet.h): one residual per skip connection ([channels, H, W]
// of that skip, in the encoder's order: the stem's, then each input block's), then the middle
// block's output's. Empty: nothing is added.
using UnetControl = std::vector<std::vector<float>>;

class Unet {
 public:
  Unet(const UnetConfig& config, Weights& weights, Backend& backend);

  const UnetConfig& config() const { return config_; }
  // x: latent [inChannels, H, W] (channel-major, as torch stores it); context: [tokens, contextDim];
  // added: [admChannels] (empty when admChannels is 0). Returns the model output [outChannels, H, W].
  std::vector<float> forward(const std::vector<float>& x, int64_t width, int64_t height, float timestep,
                             const std::vector<float>& context, int64_t contextTokens, const std::vector<float>& added,
                             const UnetControl& control = {});
  void validate();
  // Frees the compute buffer between phases; the next call allocates it again.
  void releaseBuffers() { runner_.release(); }
  // Seamless tiling: padded convolutions wrap around the edges until switched off again.
  void setCircularPadding(bool on) { circular_ = on; }

 private:
  UnetConfig config_;
  Weights& weights_;
  GraphRunner runner_;
  bool circular_ = false;
  ggml_tensor* build(GraphBuild& g, const float* x, int64_t width, int64_t height, const float* timestep, const float* context,
                     int64_t contextTokens, const float* added, const UnetControl& control);
};

}  // namespace sdnode

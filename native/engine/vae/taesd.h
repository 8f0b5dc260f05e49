// TAESD, madebyollin's tiny autoencoder: a distilled stand-in for the VAE decoder, about 1.2M
// parameters against the VAE decoder's 49M, for cheap previews and draft images. Loaded from its own
// file, next to a checkpoint; the layer list (convolutions, blocks, upsamplings) is read from the
// file's tensor names, so TAESD, TAESDXL and tiny test files of the same layout all load.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "checkpoint.h"
#include "weights.h"

namespace sdnode {

// One entry of the decoder's nn.Sequential, in order.
struct TaesdLayer {
  enum class Kind { Conv, Block, Relu, Upsample };
  Kind kind = Kind::Conv;
  std::string prefix;  // tensor name prefix ("decoder.layers.2"); empty for Relu / Upsample
  int64_t in = 0;
  int64_t out = 0;
  int kernel = 3;     // Conv
  bool bias = true;   // Conv: the convolutions after an upsampling have none
  bool skip = false;  // Block: a 1x1 convolution on the residual path (in != out)
};

struct TaesdConfig {
  int64_t latentChannels = 4;
  std::vector<TaesdLayer> decoder;
  int scale() const;  // pixels per latent cell: 2 per upsampling
};

// Reads the decoder's layers from the tensor names: `decoder.layers.N.*` (diffusers' AutoencoderTiny
// and stable-diffusion.cpp) or bare `N.*` (taesd_decoder.safetensors, whose layer 0 is the clamp).
TaesdConfig readTaesdConfig(const Checkpoint& file);

class Taesd {
 public:
  // Throws sdnode::Error naming the file (ModelIo, ModelFormat) or the tensor that is missing or misshaped.
  Taesd(const std::string& path, Backend& backend, int threads);
  Taesd(const Taesd&) = delete;
  Taesd& operator=(const Taesd&) = delete;

  const TaesdConfig& config() const { return config_; }
  uint64_t bytes() const { return weights_->bytes(); }
  // latent: [latentChannels, height, width] in the sampler's scale: TAESD decodes the latents the UNet
  // works on, not those divided by the VAE's scale factor. Returns RGB bytes, row-major, of
  // (width * scale) x (height * scale). `circular`: convolutions wrap around the edges (seamless tiling).
  std::vector<uint8_t> decodeToRgb(const std::vector<float>& latent, int64_t width, int64_t height, bool circular);
  void releaseBuffers() { runner_.release(); }

 private:
  Checkpoint file_;
  TaesdConfig config_;
  std::unique_ptr<Weights> weights_;
  GraphRunner runner_;
  ggml_tensor* buildDecoder(GraphBuild& g, const float* latent, int64_t width, int64_t height, bool circular);
};

}  // namespace sdnode

// The KL autoencoder (first_stage_model.*): decoder for every generation, encoder for
// image-to-image and inpainting. Widths and block counts come from the checkpoint.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend.h"
#include "weights.h"

namespace sdnode {

struct VaeLevel {
  std::vector<std::pair<int64_t, int64_t>> blocks;  // (in, out) channels of each res block
  bool resample = false;                            // downsample (encoder) / upsample (decoder)
};

struct VaeConfig {
  int64_t latentChannels = 4;
  int64_t middleChannels = 512;
  int64_t baseChannels = 128;
  // What latents are multiplied by for the UNet: the scale they were normalised by in training (SD 1.x/2.x).
  float latentScale = 0.18215f;
  std::vector<VaeLevel> decoder;  // index = level, as the checkpoint numbers decoder.up.N
  std::vector<VaeLevel> encoder;  // empty when the checkpoint has no encoder
  // Whether latents pass 1x1 convolutions between the encoder / decoder and the latent space
  // (quant_conv, post_quant_conv): SD's VAE has them, FLUX.1's and SD3's 16-channel VAE does not.
  bool quantConv = true;
  // What is added to a latent after dividing it by latentScale, before decoding (FLUX.1, SD3).
  float latentShift = 0.0f;
  int scale() const { return 1 << (decoder.size() - 1); }
};

VaeConfig readVaeConfig(const Weights& w);

class Vae {
 public:
  Vae(const VaeConfig& config, Weights& weights, Backend& backend);

  const VaeConfig& config() const { return config_; }
  // latent: [latentChannels, h, w] already divided by the scale factor; returns RGB in [-1, 1] as
  // [3, h*scale, w*scale].
  std::vector<float> decode(const std::vector<float>& latent, int64_t width, int64_t height);
  // image: [3, H, W] in [-1, 1]; returns the posterior's mean and log-variance [2*latentChannels, H/scale, W/scale].
  std::vector<float> encode(const std::vector<float>& image, int64_t width, int64_t height);
  void validate();
  void releaseBuffers();
  // Seamless tiling: padded convolutions wrap around the edges until switched off again.
  void setCircularPadding(bool on) { circular_ = on; }

 private:
  VaeConfig config_;
  Weights& weights_;
  GraphRunner runner_;
  bool circular_ = false;
  ggml_tensor* buildDecoder(GraphBuild& g, const float* latent, int64_t width, int64_t height);
  ggml_tensor* buildEncoder(GraphBuild& g, const float* image, int64_t width, int64_t height);
};

}  // namespace sdnode

// ControlNet (lllyasviel's cldm; files in the original layout, control_model.*, or diffusers'
// ControlNetModel layout, renamed on load): a copy of the UNet's
// encoder whose stem also reads a control image through the hint block (eight 3x3 convolutions
// with SiLU between them, three of stride 2, down to the latent's size), and whose zero
// convolutions (1x1) turn the stem's output, every input block's and the middle block's into one
// residual per UNet skip connection plus one for the middle block: 13 for SD 1.x / 2.x, 10 for SDXL.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "checkpoint.h"
#include "unet.h"
#include "weights.h"

namespace sdnode {

class ControlNet {
 public:
  // Reads `path` (.safetensors or .gguf) for the model of checkpoint `model` (whose UNet names map
  // a diffusers-layout file's) with UNet `unet` and `latentChannels` latent channels; its attention
  // heads are the UNet's (a copy of its encoder). Throws ModelIo / ModelFormat naming the file,
  // ModelUnsupported when it is not a ControlNet, and InvalidArgument when it is one for another
  // model family (its cross-attention width, channels or blocks differ from the UNet's).
  ControlNet(const std::string& path, Backend& backend, const Checkpoint& model, const UnetConfig& unet, int64_t latentChannels,
             const std::string& modelFamily);

  const std::string& path() const { return file_.path; }
  uint64_t fileSize() const { return file_.fileSize; }
  const UnetConfig& config() const { return config_; }

  // The hint block's output for a control image (RGB bytes, width x height pixels, multiples of 8),
  // read as values in [0, 1]: [modelChannels, height/8, width/8]. It depends on the image alone, so
  // a call computes it once.
  std::vector<float> guidedHint(const std::vector<uint8_t>& rgb, int64_t width, int64_t height);
  // x: the UNet's latent input [inChannels, h, w] (the noisy latent scaled by c_in); guidedHint from
  // guidedHint(); context, added as the UNet's. Returns the unscaled residuals in UnetControl order.
  UnetControl forward(const std::vector<float>& x, int64_t width, int64_t height, float timestep, const std::vector<float>& guidedHint,
                      const std::vector<float>& context, int64_t contextTokens, const std::vector<float>& added);
  void releaseBuffers() { runner_.release(); }

 private:
  Checkpoint file_;
  std::string prefix_;  // "control_model." or "" (files saved without the prefix)
  UnetConfig config_;
  std::vector<int64_t> hintWidths_;  // output channels of input_hint_block.0, .2, … .14
  std::unique_ptr<Weights> weights_;
  GraphRunner runner_;

  ggml_tensor* buildHint(GraphBuild& g, const float* planes, int64_t width, int64_t height);
  std::vector<ggml_tensor*> build(GraphBuild& g, const float* x, int64_t width, int64_t height, const float* timestep,
                                  const float* guidedHint, const float* context, int64_t contextTokens, const float* added);
};

}  // namespace sdnode

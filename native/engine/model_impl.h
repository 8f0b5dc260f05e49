// A loaded checkpoint: weights (loaded once) and the components that build graphs over them.
#pragma once

#include <memory>

#include "backend.h"
#include "clip.h"
#include "image_start.h"
#include "safetensors.h"
#include "schedule.h"
#include "sdnode.h"
#include "unet.h"
#include "vae.h"
#include "weights.h"

namespace sdnode {

class DiffusionModel : public Model {
 public:
  explicit DiffusionModel(const LoadParams& params);
  const ModelInfo& info() const override { return info_; }
  std::vector<Image> generate(const Request& request, const Callbacks& callbacks) override;

 private:
  SafetensorsFile file_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Weights> weights_;
  std::unique_ptr<ClipTextEncoder> clip_;
  std::unique_ptr<Unet> unet_;
  std::unique_ptr<Vae> vae_;
  NoiseSchedule schedule_;
  ModelInfo info_;
  bool vPrediction_ = false;

  void checkRequest(const Request& request) const;
  // The denoiser of k-diffusion's CompVis wrappers with classifier-free guidance.
  std::vector<float> denoise(const std::vector<float>& x, float sigma, int64_t width, int64_t height,
                             const std::vector<float>& cond, int64_t condTokens, const std::vector<float>& uncond,
                             int64_t uncondTokens, float cfgScale, const std::vector<float>& concat);
  std::vector<uint8_t> decodeToRgb(const std::vector<float>& latent, int64_t width, int64_t height);
  // The VAE posterior's mean and log-variance of an RGB image.
  std::vector<float> encodeImage(const std::vector<uint8_t>& rgb, int width, int height);
  ImageStart prepareImageStart(const Request& request);
};

}  // namespace sdnode

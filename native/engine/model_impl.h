// A loaded checkpoint: weights (loaded once) and the components that build graphs over them.
#pragma once

#include <memory>

#include "backend.h"
#include "checkpoint.h"
#include "clip.h"
#include "image_start.h"
#include "rng.h"
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
  Checkpoint file_;
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
  std::vector<uint8_t> decodeToRgb(const std::vector<float>& latent, int64_t width, int64_t height, bool tiled);
  // A sample of the VAE posterior of an image (planes [3, H, W] in [-1, 1]), scaled for the UNet;
  // draws its noise from `rng`.
  std::vector<float> encodeToLatent(const std::vector<float>& planes, int width, int height, bool tiled, Rng& rng);
  ImageStart prepareImageStart(const Request& request);
};

}  // namespace sdnode

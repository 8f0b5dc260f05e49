// What image-to-image and inpainting add to a generation's starting point.
#pragma once

#include <cstdint>
#include <vector>

#include "rng.h"
#include "sdnode.h"
#include "vae.h"

namespace sdnode {

struct ImageStart {
  std::vector<float> initLatent;  // the input image's latent (scaled); empty for text-to-image
  // Where the sampler may change the latent, per latent cell (0 keeps the input's latent, 1 repaints);
  // empty unless inpainting.
  std::vector<float> latentMask;
  // Extra UNet input of inpainting checkpoints: the mask (1 channel) then the masked image's latent.
  std::vector<float> concat;
  // Where Request::maskedStart replaces the input's latent (the latent mask before the inpainting
  // UNet's dilation, 0–1 per cell); empty when it keeps the original.
  std::vector<float> maskedStartMask;
};

// The start of a pass with no input image (text-to-image, the hires fix's second pass): for an
// inpainting UNet, the extra input of an image that is all to be repainted. initLatent is left empty.
ImageStart textStart(int64_t cells, int64_t channels, bool inpaintModel);

// The start of one image of a request whose maskedStart replaces the masked region's latent: a copy
// of `start` whose initLatent is blended, by maskedStartMask, towards zeros or the noise of `seed`
// (the first latent-sized draw of a fresh generator of the request's kind: the seed's own noise).
ImageStart withMaskedStart(const ImageStart& start, const Request& request, uint64_t seed);

// Whether the request asks for nothing to change (strength 0, or a mask that keeps every pixel), so
// every image is the input as it was.
bool keepsInput(const Request& request);

// RGB bytes -> planes [3, H, W] in [-1, 1], the VAE's input range.
std::vector<float> rgbToPlanes(const std::vector<uint8_t>& rgb, int64_t pixels);

// The VAE's latent of planes [3, H, W], normalised for the diffusion model ((z - latentShift) *
// latentScale): z is a sample of the posterior drawn from `rng` (DiagonalGaussianDistribution.sample(),
// logvar clamped to [-30, 20]), or its mean when rng is null.
std::vector<float> encodeLatent(Vae& vae, const std::vector<float>& planes, int width, int height, bool tiled, Rng* rng);

// The part of the full schedule an image-to-image run takes for `strength`.
std::vector<float> startSigmas(const std::vector<float>& sigmas, int steps, float strength, bool fromImage);

// out = blend of out and input by the mask (255 = out, 0 = input exactly).
void compositeKept(std::vector<uint8_t>& out, const std::vector<uint8_t>& input, const std::vector<uint8_t>& mask);

}  // namespace sdnode

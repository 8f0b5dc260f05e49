// Live previews of a running generation: AUTOMATIC1111's "Approximate cheap", a fixed linear map
// from each latent cell to one RGB pixel. No graph and no VAE, so it costs next to nothing per step.
#pragma once

#include <cstdint>
#include <vector>

#include "sdnode.h"

namespace sdnode {

// Which VAE's latent-to-colour map to use: each latent space lays colours out its own way.
enum class LatentColours {
  Sd1,   // SD 1.x and 2.x (4 channels)
  Sdxl,  // SDXL base and refiner (4 channels)
  Flux,  // FLUX.1 and Chroma's 16-channel VAE
  Sd3,   // SD3 / SD3.5's 16-channel VAE
};

// latent: [channels, height, width] in the sampler's scale (already scaled, and shifted where the
// family shifts it). Returns one RGB pixel per cell, row-major.
LatentPreview previewOfLatent(const std::vector<float>& latent, int64_t width, int64_t height,
                              LatentColours colours = LatentColours::Sd1);

// Whether `step` (1-based, of `steps`) gets a preview: every `every`-th step and always the last;
// never when `every` is 0.
bool isPreviewStep(int step, int steps, int every);

}  // namespace sdnode

// Live previews of a running generation: AUTOMATIC1111's "Approximate cheap", a fixed linear map
// from each latent cell to one RGB pixel. No graph and no VAE, so it costs next to nothing per step.
#pragma once

#include <cstdint>
#include <vector>

#include "sdnode.h"

namespace sdnode {

// latent: [4, height, width] in the sampler's scale (already multiplied by the VAE's latent scale),
// as SD 1.x / 2.x lay it out. Returns one RGB pixel per cell, row-major. `sdxl`: the SDXL VAE's
// colour factors (base and refiner share the VAE).
LatentPreview previewOfLatent(const std::vector<float>& latent, int64_t width, int64_t height, bool sdxl = false);

// Whether `step` (1-based, of `steps`) gets a preview: every `every`-th step and always the last;
// never when `every` is 0.
bool isPreviewStep(int step, int steps, int every);

}  // namespace sdnode

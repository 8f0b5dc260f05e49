// Tiled VAE passes: the decoder (or encoder) runs on overlapping square tiles whose outputs are
// cross-faded where they overlap, so its buffers are those of one tile whatever the image size.
// The group norms then see one tile at a time, so the result differs a little from a whole-image
// pass; images no larger than one tile come out exactly as without tiling.
#pragma once

#include <cstdint>
#include <vector>

#include "vae.h"

namespace sdnode {

struct VaeTiling {
  int64_t tile = 64;     // tile side, in latent cells (512 pixels at scale 8)
  int64_t overlap = 16;  // cells shared by neighbouring tiles, cross-faded
};

// Same contract as Vae::decode: latent [channels, height, width] (already divided by the latent
// scale) → RGB in [-1, 1] as [3, height*scale, width*scale]. width and height count latent cells.
std::vector<float> decodeInTiles(Vae& vae, const std::vector<float>& latent, int64_t width, int64_t height,
                                 const VaeTiling& tiling = {});

// Same contract as Vae::encode: image [3, H, W] → moments [2*latentChannels, H/scale, W/scale].
// width and height count pixels.
std::vector<float> encodeInTiles(Vae& vae, const std::vector<float>& image, int64_t width, int64_t height,
                                 const VaeTiling& tiling = {});

}  // namespace sdnode

// Tiled VAE decoding: the latent is decoded in overlapping square tiles whose pixels are
// cross-faded where they overlap, so the decoder's buffers are those of one tile whatever the
// image size. The decoder's group norms then see one tile at a time, so the pixels differ a little
// from a whole-image decode; images no larger than one tile decode exactly as without tiling.
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
// scale) → RGB in [-1, 1] as [3, height*scale, width*scale].
std::vector<float> decodeInTiles(Vae& vae, const std::vector<float>& latent, int64_t width, int64_t height,
                                 const VaeTiling& tiling = {});

}  // namespace sdnode

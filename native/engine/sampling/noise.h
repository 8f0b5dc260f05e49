// The initial noise of one image as AUTOMATIC1111 draws it: the seed's noise, optionally slerped
// towards a variation seed's, optionally drawn at another size and centred in the latent.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rng.h"

namespace sdnode {

struct NoiseSeeds {
  uint64_t seed = 0;
  uint64_t subseed = 0;
  float subseedStrength = 0.0f;  // 0: the seed's noise alone
  // Size the noise is drawn at, in latent cells; 0 x 0: the latent's own.
  int64_t resizeWidth = 0;
  int64_t resizeHeight = 0;
};

// Noise [channels, height, width]. `imageRng` is the image's generator, already seeded with
// seeds.seed: it always draws one latent-sized tensor here, so the sampler's later draws from it
// are the same with and without a variation seed. The subseed's (and a resized seed's) noise
// comes from fresh generators of kind `rngKind`, as A1111 draws it from its global generator.
std::vector<float> initialNoise(Rng& imageRng, const std::string& rngKind, const NoiseSeeds& seeds, int64_t channels,
                                int64_t width, int64_t height);

// A1111's slerp(val, low, high) for noise [channels, height, width]: each (channel, column) vector
// over the rows is interpolated along the great circle between `low` and `high` by `t` (0: low,
// 1: high), or linearly (as A1111 writes it) when the two are all but parallel.
std::vector<float> slerpNoise(float t, const std::vector<float>& low, const std::vector<float>& high, int64_t channels,
                              int64_t width, int64_t height);

}  // namespace sdnode

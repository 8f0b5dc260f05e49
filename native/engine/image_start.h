// What image-to-image and inpainting add to a generation's starting point.
#pragma once

#include <cstdint>
#include <vector>

namespace sdnode {

struct ImageStart {
  std::vector<float> initLatent;  // the input image's latent (scaled); empty for text-to-image
  std::vector<float> latentMask;  // 1 = repaint, per latent cell; empty unless inpainting
  std::vector<float> concat;      // extra UNet input of inpainting checkpoints (mask + masked-image latent)
};

// The part of the full schedule an image-to-image run takes for `strength`.
std::vector<float> startSigmas(const std::vector<float>& sigmas, int steps, float strength, bool fromImage);

// out = blend of out and input by the mask (255 = out, 0 = input exactly).
void compositeKept(std::vector<uint8_t>& out, const std::vector<uint8_t>& input, const std::vector<uint8_t>& mask);

}  // namespace sdnode

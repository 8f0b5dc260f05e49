// Resizing planes of floats with the filters AUTOMATIC1111's hires fix uses: those of
// torch.nn.functional.interpolate (align_corners=False) on the latent, and PIL's Lanczos on the image.
#pragma once

#include <cstdint>
#include <vector>

namespace sdnode {

enum class ResampleFilter {
  Nearest,            // torch 'nearest': source index floor(i * in / out)
  NearestExact,       // torch 'nearest-exact': floor((i + 0.5) * in / out)
  Bilinear,           // torch 'bilinear'
  Bicubic,            // torch 'bicubic' (Keys, a = -0.75)
  BilinearAntialias,  // torch 'bilinear', antialias=True: the triangle filter widened when shrinking
  BicubicAntialias,   // torch 'bicubic', antialias=True (a = -0.5, as PIL)
  Lanczos,            // PIL's Image.LANCZOS (3 lobes)
};

// planes: `count` planes of inHeight rows of inWidth values -> `count` planes of outHeight x outWidth.
std::vector<float> resamplePlanes(const std::vector<float>& planes, int64_t count, int64_t inWidth, int64_t inHeight,
                                  int64_t outWidth, int64_t outHeight, ResampleFilter filter);

}  // namespace sdnode

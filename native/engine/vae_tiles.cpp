#include "vae_tiles.h"

#include <algorithm>

namespace sdnode {

namespace {

// Where the tiles along one axis of `length` cells start: evenly `tile - overlap` apart, the last
// one flush with the end. One tile when the axis fits in it.
std::vector<int64_t> tileStarts(int64_t length, int64_t tile, int64_t overlap) {
  std::vector<int64_t> starts = {0};
  const int64_t stride = std::max<int64_t>(1, tile - overlap);
  while (starts.back() + tile < length) starts.push_back(std::min(starts.back() + stride, length - tile));
  return starts;
}

// Weight of pixel `i` of a tile `size` pixels long: rising over `fade` pixels from an edge that
// another tile overlaps, 1 elsewhere (and at the image's own edges). Never 0, so every pixel has
// some weight from every tile covering it.
float fadeWeight(int64_t i, int64_t size, int64_t fade, bool fadeIn, bool fadeOut) {
  float w = 1.0f;
  if (fadeIn) w = std::min(w, (static_cast<float>(i) + 0.5f) / static_cast<float>(fade));
  if (fadeOut) w = std::min(w, (static_cast<float>(size - i) - 0.5f) / static_cast<float>(fade));
  return w;
}

}  // namespace

std::vector<float> decodeInTiles(Vae& vae, const std::vector<float>& latent, int64_t width, int64_t height,
                                 const VaeTiling& tiling) {
  if (width <= tiling.tile && height <= tiling.tile) return vae.decode(latent, width, height);
  const int64_t channels = vae.config().latentChannels;
  const int64_t scale = vae.config().scale();
  const int64_t W = width * scale, H = height * scale, fade = tiling.overlap * scale;
  std::vector<float> sum(3 * W * H, 0.0f), weightSum(W * H, 0.0f);
  const std::vector<int64_t> xs = tileStarts(width, tiling.tile, tiling.overlap);
  const std::vector<int64_t> ys = tileStarts(height, tiling.tile, tiling.overlap);
  for (int64_t y0 : ys) {
    for (int64_t x0 : xs) {
      const int64_t tw = std::min(tiling.tile, width - x0), th = std::min(tiling.tile, height - y0);
      std::vector<float> part(channels * tw * th);
      for (int64_t c = 0; c < channels; c++) {
        for (int64_t y = 0; y < th; y++) {
          const float* row = latent.data() + (c * height + y0 + y) * width + x0;
          std::copy(row, row + tw, part.data() + (c * th + y) * tw);
        }
      }
      const std::vector<float> pixels = vae.decode(part, tw, th);
      const int64_t PW = tw * scale, PH = th * scale, px0 = x0 * scale, py0 = y0 * scale;
      for (int64_t y = 0; y < PH; y++) {
        const float wy = fadeWeight(y, PH, fade, y0 > 0, y0 + th < height);
        for (int64_t x = 0; x < PW; x++) {
          const float w = wy * fadeWeight(x, PW, fade, x0 > 0, x0 + tw < width);
          const int64_t at = (py0 + y) * W + px0 + x;
          weightSum[at] += w;
          for (int64_t c = 0; c < 3; c++) sum[c * W * H + at] += w * pixels[(c * PH + y) * PW + x];
        }
      }
    }
  }
  for (int64_t c = 0; c < 3; c++) {
    for (int64_t p = 0; p < W * H; p++) sum[c * W * H + p] /= weightSum[p];
  }
  return sum;
}

}  // namespace sdnode

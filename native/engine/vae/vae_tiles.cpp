#include "vae_tiles.h"

#include <algorithm>
#include <functional>

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

// Weight of element `i` of a tile `size` long: rising over `fade` elements from an edge that
// another tile overlaps, 1 elsewhere (and at the image's own edges). Never 0, so every element
// has some weight from every tile covering it.
float fadeWeight(int64_t i, int64_t size, int64_t fade, bool fadeIn, bool fadeOut) {
  float w = 1.0f;
  if (fadeIn) w = std::min(w, (static_cast<float>(i) + 0.5f) / static_cast<float>(fade));
  if (fadeOut) w = std::min(w, (static_cast<float>(size - i) - 0.5f) / static_cast<float>(fade));
  return w;
}

// One pass over planes of `channels` × (cellsHigh·inScale) × (cellsWide·inScale) values, tile by
// tile, into planes of `outChannels` at outScale elements per cell. `pass` maps a tile's input
// planes and its size in cells to its output planes.
using TilePass = std::function<std::vector<float>(const std::vector<float>&, int64_t, int64_t)>;

std::vector<float> inTiles(const std::vector<float>& input, int64_t channels, int64_t inScale, int64_t outChannels,
                           int64_t outScale, int64_t cellsWide, int64_t cellsHigh, const VaeTiling& tiling, const TilePass& pass) {
  const int64_t inW = cellsWide * inScale, inH = cellsHigh * inScale;
  const int64_t outW = cellsWide * outScale, outH = cellsHigh * outScale, fade = tiling.overlap * outScale;
  std::vector<float> sum(outChannels * outW * outH, 0.0f), weightSum(outW * outH, 0.0f);
  for (int64_t y0 : tileStarts(cellsHigh, tiling.tile, tiling.overlap)) {
    for (int64_t x0 : tileStarts(cellsWide, tiling.tile, tiling.overlap)) {
      const int64_t tw = std::min(tiling.tile, cellsWide - x0), th = std::min(tiling.tile, cellsHigh - y0);
      const int64_t partW = tw * inScale, partH = th * inScale;
      std::vector<float> part(channels * partW * partH);
      for (int64_t c = 0; c < channels; c++) {
        for (int64_t y = 0; y < partH; y++) {
          const float* row = input.data() + (c * inH + y0 * inScale + y) * inW + x0 * inScale;
          std::copy(row, row + partW, part.data() + (c * partH + y) * partW);
        }
      }
      const std::vector<float> out = pass(part, tw, th);
      const int64_t ow = tw * outScale, oh = th * outScale, ox = x0 * outScale, oy = y0 * outScale;
      for (int64_t y = 0; y < oh; y++) {
        const float wy = fadeWeight(y, oh, fade, y0 > 0, y0 + th < cellsHigh);
        for (int64_t x = 0; x < ow; x++) {
          const float w = wy * fadeWeight(x, ow, fade, x0 > 0, x0 + tw < cellsWide);
          const int64_t at = (oy + y) * outW + ox + x;
          weightSum[at] += w;
          for (int64_t c = 0; c < outChannels; c++) sum[c * outW * outH + at] += w * out[(c * oh + y) * ow + x];
        }
      }
    }
  }
  for (int64_t c = 0; c < outChannels; c++) {
    for (int64_t p = 0; p < outW * outH; p++) sum[c * outW * outH + p] /= weightSum[p];
  }
  return sum;
}

}  // namespace

std::vector<float> decodeInTiles(Vae& vae, const std::vector<float>& latent, int64_t width, int64_t height,
                                 const VaeTiling& tiling) {
  if (width <= tiling.tile && height <= tiling.tile) return vae.decode(latent, width, height);
  const VaeConfig& c = vae.config();
  return inTiles(latent, c.latentChannels, 1, 3, c.scale(), width, height, tiling,
                 [&](const std::vector<float>& part, int64_t w, int64_t h) { return vae.decode(part, w, h); });
}

std::vector<float> encodeInTiles(Vae& vae, const std::vector<float>& image, int64_t width, int64_t height,
                                 const VaeTiling& tiling) {
  const VaeConfig& c = vae.config();
  const int64_t scale = c.scale();
  if (width <= tiling.tile * scale && height <= tiling.tile * scale) return vae.encode(image, width, height);
  return inTiles(image, 3, scale, 2 * c.latentChannels, 1, width / scale, height / scale, tiling,
                 [&](const std::vector<float>& part, int64_t w, int64_t h) { return vae.encode(part, w * scale, h * scale); });
}

}  // namespace sdnode

#include "upscale_tiles.h"

#include <algorithm>
#include <cmath>

#include "sdnode.h"

namespace sdnode {

namespace {

// Where tiles of `tile` start along an axis of `length`: `tile - overlap` apart, the last flush with
// the end, all on multiples of `multiple` (length and tile are multiples of it).
std::vector<int64_t> tileStarts(int64_t length, int64_t tile, int64_t overlap, int64_t multiple) {
  std::vector<int64_t> starts = {0};
  const int64_t stride = std::max(multiple, (tile - overlap) / multiple * multiple);
  while (starts.back() + tile < length) starts.push_back(std::min(starts.back() + stride, length - tile));
  return starts;
}

double smootherstep(double t) {
  t = std::clamp(t, 0.0, 1.0);
  return t * t * t * (t * (6 * t - 15) + 10);
}

// Weight of output element `i` of a tile `size` long: rising over `fade` elements from an edge that
// another tile overlaps, 1 elsewhere. Never 0, so every element has weight from each tile over it.
float fadeWeight(int64_t i, int64_t size, int64_t fade, bool fadeIn, bool fadeOut) {
  double w = 1.0;
  if (fade <= 0) return 1.0f;
  if (fadeIn) w = std::min(w, smootherstep((static_cast<double>(i) + 0.5) / static_cast<double>(fade)));
  if (fadeOut) w = std::min(w, smootherstep((static_cast<double>(size - i) - 0.5) / static_cast<double>(fade)));
  return static_cast<float>(std::max(w, 1e-6));
}

uint8_t toByte(float v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f)); }

}  // namespace

std::vector<uint8_t> upscaleInTiles(const std::vector<uint8_t>& rgb, int64_t width, int64_t height, const TileLayout& layout,
                                    const TileNetwork& network, const std::function<void(int, int)>& onTile,
                                    const std::function<bool()>& aborted) {
  const int64_t m = layout.multiple, s = layout.scale;
  const int64_t paddedW = (width + m - 1) / m * m, paddedH = (height + m - 1) / m * m;
  const int64_t tile = std::max(m, layout.tile / m * m);
  const int64_t tileW = std::min(tile, paddedW), tileH = std::min(tile, paddedH);
  const std::vector<int64_t> xs = tileStarts(paddedW, tileW, layout.overlap, m), ys = tileStarts(paddedH, tileH, layout.overlap, m);
  const int64_t outW = width * s, outH = height * s, fade = layout.overlap * s;
  const int total = static_cast<int>(xs.size() * ys.size());

  std::vector<uint8_t> out(static_cast<size_t>(outW * outH * 3));
  // Weighted sums (r, g, b, weight) of the output rows from accStart on, full padded width.
  const int64_t accW = paddedW * s;
  int64_t accStart = 0;
  std::vector<float> acc;
  auto flushBelow = [&](int64_t row) {  // output rows before `row` are final
    const int64_t rows = row - accStart;
    if (rows <= 0) return;
    for (int64_t y = 0; y < rows; y++) {
      const int64_t oy = accStart + y;
      if (oy >= outH) continue;
      const float* a = acc.data() + y * accW * 4;
      uint8_t* o = out.data() + oy * outW * 3;
      for (int64_t x = 0; x < outW; x++) {
        const float w = a[x * 4 + 3];
        for (int c = 0; c < 3; c++) o[x * 3 + c] = toByte(a[x * 4 + c] / w);
      }
    }
    acc.erase(acc.begin(), acc.begin() + rows * accW * 4);
    accStart = row;
  };

  int done = 0;
  std::vector<float> planes(static_cast<size_t>(3 * tileW * tileH));
  for (size_t ty = 0; ty < ys.size(); ty++) {
    const int64_t y0 = ys[ty], oy = y0 * s, oh = tileH * s;
    acc.resize(static_cast<size_t>((oy + oh - accStart) * accW * 4), 0.0f);
    for (size_t tx = 0; tx < xs.size(); tx++) {
      if (aborted && aborted()) throw Error(ErrorCode::Aborted, "the upscale was aborted");
      const int64_t x0 = xs[tx];
      for (int64_t y = 0; y < tileH; y++) {
        const int64_t sy = std::min(y0 + y, height - 1);
        for (int64_t x = 0; x < tileW; x++) {
          const uint8_t* p = rgb.data() + (sy * width + std::min(x0 + x, width - 1)) * 3;
          for (int c = 0; c < 3; c++) planes[(c * tileH + y) * tileW + x] = static_cast<float>(p[c]) / 255.0f;
        }
      }
      const std::vector<float> result = network(planes, tileW, tileH);
      const int64_t ox = x0 * s, ow = tileW * s;
      for (int64_t y = 0; y < oh; y++) {
        const float wy = fadeWeight(y, oh, fade, ty > 0, ty + 1 < ys.size());
        float* a = acc.data() + ((oy + y - accStart) * accW + ox) * 4;
        for (int64_t x = 0; x < ow; x++) {
          const float w = wy * fadeWeight(x, ow, fade, tx > 0, tx + 1 < xs.size());
          for (int c = 0; c < 3; c++) a[x * 4 + c] += w * result[(c * oh + y) * ow + x];
          a[x * 4 + 3] += w;
        }
      }
      if (onTile) onTile(++done, total);
    }
    flushBelow(ty + 1 < ys.size() ? ys[ty + 1] * s : paddedH * s);
  }
  return out;
}

}  // namespace sdnode

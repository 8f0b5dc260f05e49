// Formulas from AUTOMATIC1111's modules/rng.py (ImageRNG.first, slerp), in float as torch computes them.
#include "noise.h"

#include <algorithm>
#include <cmath>

namespace sdnode {

namespace {

// Python's floor division, which A1111's centring uses for negative offsets too.
int64_t floorHalf(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

// A1111's placement of noise drawn at another size: centred, cropped where it is larger.
void placeCentred(std::vector<float>& target, int64_t width, int64_t height, const std::vector<float>& source,
                  int64_t sourceWidth, int64_t sourceHeight, int64_t channels) {
  int64_t dx = floorHalf(width - sourceWidth), dy = floorHalf(height - sourceHeight);
  const int64_t w = dx >= 0 ? sourceWidth : sourceWidth + 2 * dx;
  const int64_t h = dy >= 0 ? sourceHeight : sourceHeight + 2 * dy;
  const int64_t tx = std::max<int64_t>(dx, 0), ty = std::max<int64_t>(dy, 0);
  dx = std::max<int64_t>(-dx, 0);
  dy = std::max<int64_t>(-dy, 0);
  for (int64_t c = 0; c < channels; c++) {
    for (int64_t y = 0; y < h; y++) {
      const float* from = source.data() + (c * sourceHeight + dy + y) * sourceWidth + dx;
      std::copy(from, from + w, target.data() + (c * height + ty + y) * width + tx);
    }
  }
}

}  // namespace

std::vector<float> slerpNoise(float t, const std::vector<float>& low, const std::vector<float>& high, int64_t channels,
                              int64_t width, int64_t height) {
  // torch.norm(x, dim=1) of a [C, H, W] tensor: one norm per (channel, column), over the rows.
  const int64_t columns = channels * width;
  std::vector<float> dots(columns);
  double dotSum = 0.0;
  for (int64_t c = 0; c < channels; c++) {
    for (int64_t x = 0; x < width; x++) {
      float lowNorm = 0.0f, highNorm = 0.0f, dot = 0.0f;
      for (int64_t y = 0; y < height; y++) {
        const size_t i = (c * height + y) * width + x;
        lowNorm += low[i] * low[i];
        highNorm += high[i] * high[i];
      }
      lowNorm = std::sqrt(lowNorm);
      highNorm = std::sqrt(highNorm);
      for (int64_t y = 0; y < height; y++) {
        const size_t i = (c * height + y) * width + x;
        dot += (low[i] / lowNorm) * (high[i] / highNorm);
      }
      dots[c * width + x] = dot;
      dotSum += dot;
    }
  }
  std::vector<float> out(low.size());
  if (dotSum / static_cast<double>(columns) > 0.9995) {
    // A1111's fallback weights low by t (not 1 - t); it only applies to nearly equal noises.
    for (size_t i = 0; i < out.size(); i++) out[i] = low[i] * t + high[i] * (1.0f - t);
    return out;
  }
  for (int64_t c = 0; c < channels; c++) {
    for (int64_t x = 0; x < width; x++) {
      const float omega = std::acos(dots[c * width + x]);
      const float so = std::sin(omega);
      const float lowWeight = std::sin((1.0f - t) * omega) / so;
      const float highWeight = std::sin(t * omega) / so;
      for (int64_t y = 0; y < height; y++) {
        const size_t i = (c * height + y) * width + x;
        out[i] = lowWeight * low[i] + highWeight * high[i];
      }
    }
  }
  return out;
}

std::vector<float> initialNoise(Rng& imageRng, const std::string& rngKind, const NoiseSeeds& seeds, int64_t channels,
                                int64_t width, int64_t height) {
  std::vector<float> noise = imageRng.randn(static_cast<size_t>(channels * width * height));
  const bool resized = seeds.resizeWidth > 0 && seeds.resizeHeight > 0 &&
                       (seeds.resizeWidth != width || seeds.resizeHeight != height);
  if (!resized && seeds.subseedStrength == 0.0f) return noise;

  const int64_t drawWidth = resized ? seeds.resizeWidth : width, drawHeight = resized ? seeds.resizeHeight : height;
  const size_t drawSize = static_cast<size_t>(channels * drawWidth * drawHeight);
  auto freshDraw = [&](uint64_t seed) {
    std::unique_ptr<Rng> rng = makeRng(rngKind);
    rng->seed(seed);
    return rng->randn(drawSize);
  };
  std::vector<float> seedNoise = resized ? freshDraw(seeds.seed) : noise;
  if (seeds.subseedStrength != 0.0f) {
    seedNoise = slerpNoise(seeds.subseedStrength, seedNoise, freshDraw(seeds.subseed), channels, drawWidth, drawHeight);
  }
  if (!resized) return seedNoise;
  placeCentred(noise, width, height, seedNoise, drawWidth, drawHeight, channels);
  return noise;
}

}  // namespace sdnode

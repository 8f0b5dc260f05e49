// Every filter is separable: each output index along an axis reads a few input indices with fixed
// weights ("taps"), computed once per axis as torch's UpSampleKernel and PIL's Resample compute
// them, then applied along the rows and then along the columns.
#include "resample.h"

#include <algorithm>
#include <cmath>

namespace sdnode {

namespace {

struct Tap {
  int64_t index;
  float weight;
};
using AxisTaps = std::vector<std::vector<Tap>>;

constexpr double kPi = 3.14159265358979323846;

// Keys' cubic convolution kernel with parameter a, for |x| < 2.
double cubic(double x, double a) {
  x = std::abs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
  return 0.0;
}

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= kPi;
  return std::sin(x) / x;
}

double filterWeight(ResampleFilter filter, double x) {
  switch (filter) {
    case ResampleFilter::BilinearAntialias: return std::max(0.0, 1.0 - std::abs(x));
    case ResampleFilter::BicubicAntialias: return cubic(x, -0.5);
    case ResampleFilter::Lanczos: return (x >= -3.0 && x < 3.0) ? sinc(x) * sinc(x / 3.0) : 0.0;
    default: return 0.0;
  }
}

// Half the filter's width in input samples at scale 1.
double filterSupport(ResampleFilter filter) {
  switch (filter) {
    case ResampleFilter::BicubicAntialias: return 2.0;
    case ResampleFilter::Lanczos: return 3.0;
    default: return 1.0;
  }
}

// torch's _compute_indices_min_size_weights_aa and PIL's precompute_coeffs (the same algorithm):
// the filter is stretched by the scale when shrinking, taps outside the input are dropped and the
// rest renormalised.
std::vector<Tap> filteredTaps(ResampleFilter filter, int64_t i, int64_t in, double scale) {
  const double support = filterSupport(filter) * std::max(scale, 1.0);
  const double invScale = scale >= 1.0 ? 1.0 / scale : 1.0;
  const double center = scale * (static_cast<double>(i) + 0.5);
  const int64_t first = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
  const int64_t end = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in);
  std::vector<Tap> taps;
  double total = 0.0;
  for (int64_t j = first; j < end; j++) {
    const double w = filterWeight(filter, (static_cast<double>(j) - center + 0.5) * invScale);
    taps.push_back({j, static_cast<float>(w)});
    total += w;
  }
  if (total != 0.0) {
    for (Tap& tap : taps) tap.weight = static_cast<float>(tap.weight / total);
  }
  return taps;
}

std::vector<Tap> pointTaps(ResampleFilter filter, int64_t i, int64_t in, int64_t out) {
  // torch computes the scale in float for these modes.
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  const int64_t last = in - 1;
  auto clamped = [&](int64_t j) { return std::min(std::max<int64_t>(j, 0), last); };
  switch (filter) {
    case ResampleFilter::Nearest:
      return {{clamped(static_cast<int64_t>(std::floor(static_cast<float>(i) * scale))), 1.0f}};
    case ResampleFilter::NearestExact:
      return {{clamped(static_cast<int64_t>(std::floor((static_cast<float>(i) + 0.5f) * scale))), 1.0f}};
    case ResampleFilter::Bilinear: {
      // area_pixel_compute_source_index: linear modes clamp a source before the first sample to it.
      const float source = std::max(0.0f, scale * (static_cast<float>(i) + 0.5f) - 0.5f);
      const int64_t i0 = std::min(static_cast<int64_t>(source), last);
      const float lambda = source - static_cast<float>(i0);
      return {{i0, 1.0f - lambda}, {clamped(i0 + 1), lambda}};
    }
    default: {  // Bicubic: four taps around the source, indices clamped to the edge
      const float source = scale * (static_cast<float>(i) + 0.5f) - 0.5f;
      const int64_t i0 = static_cast<int64_t>(std::floor(source));
      const double t = source - static_cast<float>(i0);
      std::vector<Tap> taps;
      for (int k = -1; k <= 2; k++) taps.push_back({clamped(i0 + k), static_cast<float>(cubic(t - k, -0.75))});
      return taps;
    }
  }
}

AxisTaps axisTaps(ResampleFilter filter, int64_t in, int64_t out) {
  AxisTaps taps(out);
  const bool filtered = filter == ResampleFilter::BilinearAntialias || filter == ResampleFilter::BicubicAntialias ||
                        filter == ResampleFilter::Lanczos;
  for (int64_t i = 0; i < out; i++) {
    taps[i] = filtered ? filteredTaps(filter, i, in, static_cast<double>(in) / static_cast<double>(out))
                       : pointTaps(filter, i, in, out);
  }
  return taps;
}

}  // namespace

std::vector<float> resamplePlanes(const std::vector<float>& planes, int64_t count, int64_t inWidth, int64_t inHeight,
                                  int64_t outWidth, int64_t outHeight, ResampleFilter filter) {
  const AxisTaps across = axisTaps(filter, inWidth, outWidth);
  const AxisTaps down = axisTaps(filter, inHeight, outHeight);
  // Rows first (as PIL does), into [count, inHeight, outWidth].
  std::vector<float> rows(count * inHeight * outWidth);
  for (int64_t r = 0; r < count * inHeight; r++) {
    const float* in = planes.data() + r * inWidth;
    float* out = rows.data() + r * outWidth;
    for (int64_t x = 0; x < outWidth; x++) {
      float sum = 0.0f;
      for (const Tap& tap : across[x]) sum += in[tap.index] * tap.weight;
      out[x] = sum;
    }
  }
  std::vector<float> result(count * outHeight * outWidth);
  for (int64_t p = 0; p < count; p++) {
    const float* in = rows.data() + p * inHeight * outWidth;
    float* out = result.data() + p * outHeight * outWidth;
    for (int64_t y = 0; y < outHeight; y++) {
      for (int64_t x = 0; x < outWidth; x++) {
        float sum = 0.0f;
        for (const Tap& tap : down[y]) sum += in[tap.index * outWidth + x] * tap.weight;
        out[y * outWidth + x] = sum;
      }
    }
  }
  return result;
}

}  // namespace sdnode

// Runs the engine's CPU 3x3 convolution (native/engine/conv3x3.cpp) on pseudo-random images and
// kernels and prints, per case, the largest difference from the same convolution computed here in
// double precision, relative to the largest sum of absolute products (one JSON object per line).
// test/conv3x3.test.ts compiles it against the engine and ggml libraries of the last native build.
// Usage: conv3x3 threads
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend.h"
#include "conv3x3.h"
#include "ggml-cpu.h"

namespace {

struct Case {
  const char* name;
  int64_t width, height, channels, outChannels, batch;
  bool circular, bias;
  ggml_type kernelType;
  int64_t bandBytes;  // small values cut the image into many bands, down to one row each
};

double noise(uint64_t& state) {
  state = state * 6364136223846793005ull + 1442695040888963407ull;
  return static_cast<double>(state >> 11) / static_cast<double>(1ull << 53) * 2.0 - 1.0;
}

void run(const Case& c, int threads) {
  uint64_t state = 12345;
  std::vector<float> x(c.width * c.height * c.channels * c.batch);
  for (float& v : x) v = static_cast<float>(noise(state));
  const size_t kernelCount = 9 * c.channels * c.outChannels;
  std::vector<float> kernel(kernelCount);
  for (float& v : kernel) v = static_cast<float>(noise(state) * 0.2);
  std::vector<ggml_fp16_t> kernel16(kernelCount);
  // The engine multiplies f16 kernels with f16 copies of the image: the reference uses the same
  // rounded values, so what is left is the order of the f32 sums.
  ggml_cpu_fp32_to_fp16(kernel.data(), kernel16.data(), static_cast<int64_t>(kernelCount));
  std::vector<float> xr = x;
  if (c.kernelType == GGML_TYPE_F16) {
    for (auto* v : {&kernel, &xr}) {
      std::vector<ggml_fp16_t> h(v->size());
      ggml_cpu_fp32_to_fp16(v->data(), h.data(), static_cast<int64_t>(v->size()));
      ggml_cpu_fp16_to_fp32(h.data(), v->data(), static_cast<int64_t>(v->size()));
    }
  }
  std::vector<float> bias(c.outChannels);
  for (float& v : bias) v = static_cast<float>(noise(state));

  sdnode::Backend backend("cpu", threads);
  sdnode::GraphRunner runner(backend);
  std::vector<float> out = runner.run([&](sdnode::GraphBuild& g) {
    ggml_tensor* in = g.input(GGML_TYPE_F32, {c.width, c.height, c.channels, c.batch}, x.data());
    ggml_tensor* k = c.kernelType == GGML_TYPE_F16 ? g.input(GGML_TYPE_F16, {3, 3, c.channels, c.outChannels}, kernel16.data())
                                                   : g.input(GGML_TYPE_F32, {3, 3, c.channels, c.outChannels}, kernel.data());
    ggml_tensor* b = c.bias ? g.input(GGML_TYPE_F32, {c.outChannels}, bias.data()) : nullptr;
    if (!sdnode::conv3x3CpuFits(in, k)) {
      std::fprintf(stderr, "case %s does not fit\n", c.name);
      std::exit(1);
    }
    return sdnode::conv3x3Cpu(g, in, k, b, c.circular, c.bandBytes);
  });

  double worst = 0, scale = 0;
  for (int64_t n = 0; n < c.batch; n++) {
    for (int64_t oc = 0; oc < c.outChannels; oc++) {
      for (int64_t y = 0; y < c.height; y++) {
        for (int64_t px = 0; px < c.width; px++) {
          double sum = c.bias ? bias[oc] : 0.0, magnitude = std::fabs(sum);
          for (int64_t ic = 0; ic < c.channels; ic++) {
            for (int64_t ky = 0; ky < 3; ky++) {
              for (int64_t kx = 0; kx < 3; kx++) {
                int64_t sy = y + ky - 1, sx = px + kx - 1;
                if (c.circular) {
                  sy = (sy + c.height) % c.height;
                  sx = (sx + c.width) % c.width;
                } else if (sy < 0 || sy >= c.height || sx < 0 || sx >= c.width) {
                  continue;
                }
                const double term = static_cast<double>(xr[((n * c.channels + ic) * c.height + sy) * c.width + sx]) *
                                    kernel[((oc * c.channels + ic) * 3 + ky) * 3 + kx];
                sum += term;
                magnitude += std::fabs(term);
              }
            }
          }
          const double got = out[((n * c.outChannels + oc) * c.height + y) * c.width + px];
          worst = std::fmax(worst, std::fabs(got - sum));
          scale = std::fmax(scale, magnitude);
        }
      }
    }
  }
  std::printf("{\"case\":\"%s\",\"threads\":%d,\"relativeError\":%.3e}\n", c.name, threads, worst / scale);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const Case cases[] = {
      {"one-band", 37, 23, 16, 5, 1, false, true, GGML_TYPE_F16, sdnode::kConvBandBytes},
      {"bands-of-3-rows", 37, 23, 16, 5, 1, false, true, GGML_TYPE_F16, 3 * 9 * 16 * 37 * 2},
      {"one-row-bands", 11, 9, 32, 7, 1, false, false, GGML_TYPE_F16, 1},
      {"circular", 19, 13, 16, 6, 1, true, true, GGML_TYPE_F16, 4 * 9 * 16 * 19 * 2},
      {"batch-of-2", 17, 15, 16, 4, 2, false, true, GGML_TYPE_F16, 5 * 9 * 16 * 17 * 2},
      {"f32-kernel", 21, 10, 32, 3, 1, true, true, GGML_TYPE_F32, 2 * 9 * 32 * 21 * 4},
      {"one-pixel", 1, 1, 16, 2, 1, true, true, GGML_TYPE_F16, sdnode::kConvBandBytes},
  };
  for (const Case& c : cases) run(c, threads);
  return 0;
}

// GFLOP/s of ggml's matrix product on this machine, through the engine's own graph runner (so with
// the same ggml build, threads and kernels as the engine): weights of each type times f32
// activations, as the UNet's linear layers run, and f16 times f16, as the convolutions run.
// bench/roofline.mjs compiles it against the last native build and prints the table.
// Usage: gemm-peak threads  -> one JSON object per line
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "backend.h"
#include "ggml-cpu.h"

namespace {

struct Shape {
  const char* name;
  ggml_type weights;
  ggml_type activations;
  int64_t k, m, n;  // weights [k, m] x activations [k, n]
};

std::vector<float> noise(size_t count, uint64_t seed) {
  std::vector<float> v(count);
  for (float& x : v) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<float>(static_cast<double>(seed >> 11) / static_cast<double>(1ull << 53) - 0.5);
  }
  return v;
}

std::vector<uint8_t> encode(ggml_type type, const std::vector<float>& values, int64_t rowLength) {
  const int64_t rows = static_cast<int64_t>(values.size()) / rowLength;
  std::vector<uint8_t> bytes(ggml_row_size(type, rowLength) * rows);
  if (type == GGML_TYPE_F32) {
    std::copy_n(reinterpret_cast<const uint8_t*>(values.data()), bytes.size(), bytes.data());
  } else if (type == GGML_TYPE_F16) {
    ggml_cpu_fp32_to_fp16(values.data(), reinterpret_cast<ggml_fp16_t*>(bytes.data()), static_cast<int64_t>(values.size()));
  } else {
    ggml_quantize_chunk(type, values.data(), bytes.data(), 0, rows, rowLength, nullptr);
  }
  return bytes;
}

double processCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

void measure(const Shape& s, int threads) {
  const std::vector<uint8_t> w = encode(s.weights, noise(s.k * s.m, 1), s.k);
  const std::vector<uint8_t> x = encode(s.activations, noise(s.k * s.n, 2), s.k);
  sdnode::Backend backend("cpu", threads);
  sdnode::GraphRunner runner(backend);
  double best = 1e30, bestCpu = 1e30;
  for (int round = 0; round < 4; round++) {
    const auto start = std::chrono::steady_clock::now();
    const double cpuStart = processCpuSeconds();
    runner.run([&](sdnode::GraphBuild& g) {
      return ggml_mul_mat(g.ctx(), g.input(s.weights, {s.k, s.m}, w.data()), g.input(s.activations, {s.k, s.n}, x.data()));
    });
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    bestCpu = std::min(bestCpu, processCpuSeconds() - cpuStart);
  }
  const double flops = 2.0 * static_cast<double>(s.k) * static_cast<double>(s.m) * static_cast<double>(s.n);
  // cpu_gflops: per core, from the process's CPU time (what a shared machine's other work does not
  // inflate; with several threads it also counts their waits).
  std::printf("{\"shape\":\"%s\",\"weights\":\"%s\",\"threads\":%d,\"k\":%lld,\"m\":%lld,\"n\":%lld,\"gflops\":%.1f,\"cpu_gflops\":%.1f}\n",
              s.name, ggml_type_name(s.weights), threads, static_cast<long long>(s.k), static_cast<long long>(s.m),
              static_cast<long long>(s.n), flops / best / 1e9, flops / bestCpu / 1e9);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const Shape shapes[] = {
      {"square 2048", GGML_TYPE_F16, GGML_TYPE_F32, 2048, 2048, 2048},
      {"square 2048", GGML_TYPE_Q8_0, GGML_TYPE_F32, 2048, 2048, 2048},
      {"square 2048", GGML_TYPE_F32, GGML_TYPE_F32, 2048, 2048, 2048},
      // SD 1.x UNet, first level at 512x512: 4096 tokens, 320 wide; its feed-forward (GEGLU in)
      {"unet 320x320, 4096 tokens", GGML_TYPE_F16, GGML_TYPE_F32, 320, 320, 4096},
      {"unet 320x320, 4096 tokens", GGML_TYPE_Q8_0, GGML_TYPE_F32, 320, 320, 4096},
      {"unet ff 320->2560, 4096 tokens", GGML_TYPE_F16, GGML_TYPE_F32, 320, 2560, 4096},
      {"unet ff 320->2560, 4096 tokens", GGML_TYPE_Q8_0, GGML_TYPE_F32, 320, 2560, 4096},
      {"unet 1280x1280, 256 tokens", GGML_TYPE_F16, GGML_TYPE_F32, 1280, 1280, 256},
      {"unet 1280x1280, 256 tokens", GGML_TYPE_Q8_0, GGML_TYPE_F32, 1280, 1280, 256},
      // A VAE convolution band: 9 x 128 gathered values per pixel, 16384 pixels, 128 outputs
      {"vae conv 3x3x128->128, 16384 px", GGML_TYPE_F16, GGML_TYPE_F16, 1152, 16384, 128},
      // FLUX.1 at 512x512 (1024 image + 256 text tokens): a double block's image q/k/v and MLP in,
      // a single block's linear1 and linear2; T5's context in (txt_in) at 256 tokens.
      {"flux qkv 3072->9216, 1024 tokens", GGML_TYPE_F16, GGML_TYPE_F32, 3072, 9216, 1024},
      {"flux mlp 3072->12288, 1024 tokens", GGML_TYPE_F16, GGML_TYPE_F32, 3072, 12288, 1024},
      {"flux single 3072->21504, 1280 tokens", GGML_TYPE_F16, GGML_TYPE_F32, 3072, 21504, 1280},
      {"flux single 15360->3072, 1280 tokens", GGML_TYPE_F16, GGML_TYPE_F32, 15360, 3072, 1280},
      {"flux txt_in 4096->3072, 256 tokens", GGML_TYPE_F16, GGML_TYPE_F32, 4096, 3072, 256},
  };
  for (const Shape& s : shapes) measure(s, threads);
  return 0;
}

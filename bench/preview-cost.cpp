// The engine's share of a preview, alone: keeping the step's denoised latent (the copy the
// generation loop makes while previews are on) and projecting it to RGB. Built and run by
// bench/previews.mjs: preview-cost <latent width> <latent height> <repeats>; prints JSON.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "preview.h"

int main(int argc, char** argv) {
  const int width = argc > 1 ? std::atoi(argv[1]) : 64;
  const int height = argc > 2 ? std::atoi(argv[2]) : 64;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 2000;
  std::vector<float> denoised(static_cast<size_t>(width) * height * 4);
  for (size_t i = 0; i < denoised.size(); i++) denoised[i] = static_cast<float>((i * 7919) % 2001) / 1000.0f - 1.0f;
  std::vector<float> kept;
  unsigned checksum = 0;  // keeps the compiler from dropping the work
  const auto started = std::chrono::steady_clock::now();
  for (int r = 0; r < repeats; r++) {
    denoised[r % denoised.size()] += 1e-3f;
    kept = denoised;
    checksum += sdnode::previewOfLatent(kept, width, height).rgb[static_cast<size_t>(r) % (width * height * 3)];
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  std::printf("{\"width\":%d,\"height\":%d,\"repeats\":%d,\"msPerPreview\":%.5f,\"checksum\":%u}\n", width, height, repeats,
              ms / repeats, checksum);
  return 0;
}

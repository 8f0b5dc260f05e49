#include "preview.h"

#include <stdexcept>
#include <string>

#include "pixels.h"

namespace sdnode {

namespace {

// The published SD 1.x latent-to-RGB factors (ComfyUI's latent_formats SD15 table, a least-squares
// fit of decoded pixels in [-1, 1] to the scaled latent); SD 2.x shares the VAE, so the table too.
// Row = latent channel, column = R, G, B.
constexpr float kSd1LatentRgbFactors[4][3] = {
    {0.3512f, 0.2297f, 0.3227f},
    {0.3250f, 0.4974f, 0.2350f},
    {-0.2829f, 0.1762f, 0.2721f},
    {-0.2120f, -0.2616f, -0.7177f},
};
// SDXL's VAE lays colours out differently (ComfyUI's SDXL table, the same kind of fit).
constexpr float kSdxlLatentRgbFactors[4][3] = {
    {0.3920f, 0.4054f, 0.4549f},
    {-0.2634f, -0.0196f, 0.0653f},
    {0.0568f, 0.1687f, -0.0755f},
    {-0.3112f, -0.2359f, -0.2076f},
};

}  // namespace

LatentPreview previewOfLatent(const std::vector<float>& latent, int64_t width, int64_t height, bool sdxl) {
  const float(&factors)[4][3] = sdxl ? kSdxlLatentRgbFactors : kSd1LatentRgbFactors;
  const size_t cells = static_cast<size_t>(width) * static_cast<size_t>(height);
  if (width <= 0 || height <= 0 || latent.size() != cells * 4) {
    throw std::runtime_error("preview: a 4-channel latent of " + std::to_string(width) + "x" + std::to_string(height) +
                                " holds " + std::to_string(cells * 4) + " values, got " + std::to_string(latent.size()));
  }
  LatentPreview preview;
  preview.width = static_cast<int>(width);
  preview.height = static_cast<int>(height);
  preview.rgb.resize(cells * 3);
  const float* planes[4] = {latent.data(), latent.data() + cells, latent.data() + 2 * cells, latent.data() + 3 * cells};
  for (size_t p = 0; p < cells; p++) {
    for (int c = 0; c < 3; c++) {
      float v = 0.0f;
      for (int k = 0; k < 4; k++) v += planes[k][p] * factors[k][c];
      preview.rgb[p * 3 + c] = signedUnitToByte(v);
    }
  }
  return preview;
}

bool isPreviewStep(int step, int steps, int every) {
  return every > 0 && (step % every == 0 || step == steps);
}

}  // namespace sdnode

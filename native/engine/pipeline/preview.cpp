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

// The 16-channel latents: SD3's published table (ComfyUI's latent_formats SD3, no bias) and a fit
// for FLUX.1's VAE with its bias (the one the reference engine previews with).
constexpr float kSd3LatentRgbFactors[16][3] = {
    {-0.0645f, 0.0177f, 0.1052f},  {0.0028f, 0.0312f, 0.0650f},   {0.1848f, 0.0762f, 0.0360f},   {0.0944f, 0.0360f, 0.0889f},
    {0.0897f, 0.0506f, -0.0364f},  {-0.0020f, 0.1203f, 0.0284f},  {0.0855f, 0.0118f, 0.0283f},   {-0.0539f, 0.0658f, 0.1047f},
    {-0.0057f, 0.0116f, 0.0700f},  {-0.0412f, 0.0281f, -0.0039f}, {0.1106f, 0.1171f, 0.1220f},   {-0.0248f, 0.0682f, -0.0481f},
    {0.0815f, 0.0846f, 0.1207f},   {-0.0120f, -0.0055f, -0.0867f}, {-0.0749f, -0.0634f, -0.0456f}, {-0.1418f, -0.1457f, -0.1259f},
};
constexpr float kFluxLatentRgbFactors[16][3] = {
    {-0.041168f, 0.019917f, 0.097253f}, {0.028096f, 0.026730f, 0.129576f},   {0.065618f, -0.067950f, -0.014651f},
    {-0.012998f, -0.014762f, 0.081251f}, {0.078567f, 0.059296f, -0.024687f}, {-0.015987f, -0.003697f, 0.005012f},
    {0.033605f, 0.138999f, 0.068517f},  {-0.024450f, -0.063567f, -0.030101f}, {-0.040194f, -0.016710f, 0.127185f},
    {0.112681f, 0.088764f, -0.041940f}, {-0.023498f, 0.093664f, 0.025543f},  {0.082899f, 0.048320f, 0.007491f},
    {0.075712f, 0.074139f, 0.081965f},  {-0.143501f, 0.018263f, -0.136138f}, {-0.025767f, -0.082035f, -0.040023f},
    {-0.111849f, -0.055589f, -0.032361f},
};
constexpr float kFluxLatentRgbBias[3] = {0.024600f, -0.006937f, -0.008089f};
constexpr float kNoBias[3] = {0.0f, 0.0f, 0.0f};

struct ColourMap {
  int channels;
  const float (*factors)[3];
  const float* bias;
};

ColourMap colourMap(LatentColours colours) {
  switch (colours) {
    case LatentColours::Sdxl: return {4, kSdxlLatentRgbFactors, kNoBias};
    case LatentColours::Flux: return {16, kFluxLatentRgbFactors, kFluxLatentRgbBias};
    case LatentColours::Sd3: return {16, kSd3LatentRgbFactors, kNoBias};
    case LatentColours::Sd1: break;
  }
  return {4, kSd1LatentRgbFactors, kNoBias};
}

}  // namespace

LatentPreview previewOfLatent(const std::vector<float>& latent, int64_t width, int64_t height, LatentColours colours) {
  const ColourMap map = colourMap(colours);
  const size_t cells = static_cast<size_t>(width) * static_cast<size_t>(height);
  if (width <= 0 || height <= 0 || latent.size() != cells * map.channels) {
    throw std::runtime_error("preview: a " + std::to_string(map.channels) + "-channel latent of " + std::to_string(width) + "x" +
                             std::to_string(height) + " holds " + std::to_string(cells * map.channels) + " values, got " +
                             std::to_string(latent.size()));
  }
  LatentPreview preview;
  preview.width = static_cast<int>(width);
  preview.height = static_cast<int>(height);
  preview.rgb.resize(cells * 3);
  for (size_t p = 0; p < cells; p++) {
    for (int c = 0; c < 3; c++) {
      float v = map.bias[c];
      for (int k = 0; k < map.channels; k++) v += latent[k * cells + p] * map.factors[k][c];
      preview.rgb[p * 3 + c] = signedUnitToByte(v);
    }
  }
  return preview;
}

bool isPreviewStep(int step, int steps, int every) {
  return every > 0 && (step % every == 0 || step == steps);
}

}  // namespace sdnode

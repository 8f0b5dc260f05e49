// Where image-to-image and inpainting start: the input image's latent, the mask at latent
// resolution, the 9-channel UNet's extra input, and the final composite that keeps unmasked
// pixels byte-identical to the input.
#include <cmath>

#include "image_start.h"
#include "model_impl.h"
#include "rng.h"

namespace sdnode {

namespace {

constexpr float kLatentScale = 0.18215f;

// RGB bytes -> planes [3, H, W] in [-1, 1], the VAE's input range.
std::vector<float> toPlanes(const std::vector<uint8_t>& rgb, int64_t pixels) {
  std::vector<float> planes(3 * pixels);
  for (int64_t p = 0; p < pixels; p++) {
    for (int c = 0; c < 3; c++) planes[c * pixels + p] = rgb[p * 3 + c] / 127.5f - 1.0f;
  }
  return planes;
}

}  // namespace

std::vector<float> DiffusionModel::encodeImage(const std::vector<uint8_t>& rgb, int width, int height) {
  std::vector<float> moments = vae_->encode(toPlanes(rgb, static_cast<int64_t>(width) * height), width, height);
  vae_->releaseBuffers();
  return moments;
}

ImageStart DiffusionModel::prepareImageStart(const Request& r) {
  ImageStart start;
  const int64_t w = r.width / info_.vaeScale, h = r.height / info_.vaeScale, cells = w * h;
  const int64_t channels = vae_->config().latentChannels;
  const bool inpaint = r.mode == "inpaint";
  const bool inpaintModel = unet_->config().inChannels == 2 * channels + 1;

  if (inpaint) {
    // Mask at latent resolution: the mean of each cell's pixels, 1 = repaint.
    start.latentMask.assign(cells, 0.0f);
    const int s = info_.vaeScale;
    for (int64_t y = 0; y < h; y++) {
      for (int64_t x = 0; x < w; x++) {
        float sum = 0;
        for (int dy = 0; dy < s; dy++) {
          for (int dx = 0; dx < s; dx++) sum += r.mask[(y * s + dy) * r.width + (x * s + dx)];
        }
        start.latentMask[y * w + x] = sum / (255.0f * s * s);
      }
    }
  }

  if (r.mode != "txt2img") {
    // As the reference engine: the posterior is sampled once, with noise from a generator seeded
    // with the request's seed, before any image's own generator starts.
    const std::vector<float> moments = encodeImage(r.image, r.width, r.height);
    std::unique_ptr<Rng> rng = makeRng(r.rng);
    rng->seed(r.seed);
    const std::vector<float> noise = rng->randn(static_cast<size_t>(channels * cells));
    start.initLatent.resize(channels * cells);
    for (int64_t i = 0; i < channels * cells; i++) {
      const float logVar = std::min(20.0f, std::max(-30.0f, moments[channels * cells + i]));
      start.initLatent[i] = (moments[i] + std::exp(0.5f * logVar) * noise[i]) * kLatentScale;
    }
  }

  if (inpaintModel) {
    // The inpainting UNet also sees the mask and the latent of the image with the masked area
    // blanked (grey); text-to-image gives it an all-repaint mask and a blank image.
    std::vector<uint8_t> masked(static_cast<size_t>(r.width) * r.height * 3, 128);
    if (r.mode != "txt2img") {
      for (size_t p = 0; p < static_cast<size_t>(r.width) * r.height; p++) {
        const float keep = r.mode == "inpaint" ? 1.0f - r.mask[p] / 255.0f : 1.0f;
        for (int c = 0; c < 3; c++) {
          masked[p * 3 + c] = static_cast<uint8_t>(std::lround(r.image[p * 3 + c] * keep + 127.5f * (1.0f - keep)));
        }
      }
    }
    const std::vector<float> moments = encodeImage(masked, r.width, r.height);
    start.concat.assign(cells, 1.0f);
    if (!start.latentMask.empty()) start.concat = start.latentMask;
    for (int64_t i = 0; i < channels * cells; i++) start.concat.push_back(moments[i] * kLatentScale);
  }
  return start;
}

std::vector<float> startSigmas(const std::vector<float>& sigmas, int steps, float strength, bool fromImage) {
  if (!fromImage) return sigmas;
  // The reference engine runs int(steps * strength) + 1 steps (all of them at strength 1), from the
  // matching point of the full schedule.
  int encodeSteps = static_cast<int>(static_cast<float>(steps) * strength);
  if (encodeSteps >= steps) encodeSteps = steps - 1;
  return std::vector<float>(sigmas.begin() + (steps - encodeSteps - 1), sigmas.end());
}

void compositeKept(std::vector<uint8_t>& out, const std::vector<uint8_t>& input, const std::vector<uint8_t>& mask) {
  for (size_t p = 0; p < mask.size(); p++) {
    const int m = mask[p];
    for (int c = 0; c < 3; c++) {
      const size_t i = p * 3 + c;
      out[i] = static_cast<uint8_t>((out[i] * m + input[i] * (255 - m) + 127) / 255);
    }
  }
}

}  // namespace sdnode

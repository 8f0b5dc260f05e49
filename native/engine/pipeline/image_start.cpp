// Where image-to-image and inpainting start: the input image's latent, the mask at latent
// resolution, the 9-channel UNet's extra input, and the final composite that keeps unmasked
// pixels byte-identical to the input. Random draws follow stable-diffusion.cpp (the reference
// images): one generator seeded with the request's seed samples the VAE posterior of the input
// image, then of the masked image, before any image's own generator starts.
#include <algorithm>
#include <cmath>

#include "image_start.h"
#include "model_impl.h"
#include "rng.h"
#include "vae_tiles.h"

namespace sdnode {

namespace {

// RGB bytes -> planes [3, H, W] in [-1, 1], the VAE's input range. Where `repaint` (0–1 per pixel)
// is given, the image fades to mid-grey (0) there: the masked image the LDM inpainting UNet was
// trained with.
std::vector<float> toPlanes(const std::vector<uint8_t>& rgb, int64_t pixels, const std::vector<float>& repaint = {}) {
  std::vector<float> planes(3 * pixels);
  for (int64_t p = 0; p < pixels; p++) {
    const float keep = repaint.empty() ? 1.0f : 1.0f - repaint[p];
    for (int c = 0; c < 3; c++) planes[c * pixels + p] = keep * (rgb[p * 3 + c] / 127.5f - 1.0f);
  }
  return planes;
}

// A latent cell is repainted as much as the most repainted of its pixels, so every pixel the mask
// repaints lies in a cell the sampler may change (the reference engine's nearest-max resize). Grey
// stays partial. Returns [h, w] in 0–1.
std::vector<float> maskToLatent(const std::vector<uint8_t>& mask, int width, int64_t w, int64_t h, int scale) {
  std::vector<float> cells(w * h, 0.0f);
  for (int64_t y = 0; y < h * scale; y++) {
    for (int64_t x = 0; x < w * scale; x++) {
      float& cell = cells[(y / scale) * w + x / scale];
      cell = std::max(cell, mask[y * width + x] / 255.0f);
    }
  }
  return cells;
}

// 3x3 max filter: the inpainting UNet repaints one latent cell beyond the mask, so it can blend
// the border (as the reference engine does for inpainting checkpoints).
std::vector<float> dilate(const std::vector<float>& m, int64_t w, int64_t h) {
  std::vector<float> out(m.size());
  for (int64_t y = 0; y < h; y++) {
    for (int64_t x = 0; x < w; x++) {
      float v = 0.0f;
      for (int64_t yy = std::max<int64_t>(0, y - 1); yy <= std::min(h - 1, y + 1); yy++) {
        for (int64_t xx = std::max<int64_t>(0, x - 1); xx <= std::min(w - 1, x + 1); xx++) v = std::max(v, m[yy * w + xx]);
      }
      out[y * w + x] = v;
    }
  }
  return out;
}

}  // namespace

std::vector<float> rgbToPlanes(const std::vector<uint8_t>& rgb, int64_t pixels) { return toPlanes(rgb, pixels); }

std::vector<float> encodeLatent(Vae& vae, const std::vector<float>& planes, int width, int height, bool tiled, Rng* rng) {
  const std::vector<float> moments = tiled ? encodeInTiles(vae, planes, width, height) : vae.encode(planes, width, height);
  vae.releaseBuffers();
  const size_t n = moments.size() / 2;
  const std::vector<float> noise = rng ? rng->randn(n) : std::vector<float>(n, 0.0f);
  const VaeConfig& c = vae.config();
  std::vector<float> latent(n);
  for (size_t i = 0; i < n; i++) {
    const float logVar = std::min(20.0f, std::max(-30.0f, moments[n + i]));
    latent[i] = (moments[i] + std::exp(0.5f * logVar) * noise[i] - c.latentShift) * c.latentScale;
  }
  return latent;
}

std::vector<float> DiffusionModel::encodeToLatent(const std::vector<float>& planes, int width, int height, bool tiled, Rng& rng) {
  return encodeLatent(*vae_, planes, width, height, tiled, &rng);
}

ImageStart DiffusionModel::prepareImageStart(const Request& r) {
  ImageStart start;
  const int scale = info_.vaeScale;
  const int64_t w = r.width / scale, h = r.height / scale, cells = w * h, pixels = static_cast<int64_t>(r.width) * r.height;
  const int64_t channels = vae_->config().latentChannels;
  const bool inpaintModel = isInpaintModel();
  if (r.mode == "txt2img") return textStart(cells, channels, inpaintModel);

  // Without a mask (image-to-image) the inpainting UNet is told to repaint everything.
  std::vector<float> pixelMask;
  if (r.mode == "inpaint") {
    pixelMask.resize(pixels);
    for (int64_t p = 0; p < pixels; p++) pixelMask[p] = r.mask[p] / 255.0f;
    start.latentMask = maskToLatent(r.mask, r.width, w, h, scale);
    if (r.maskedStart != "original") start.maskedStartMask = start.latentMask;
  }

  std::unique_ptr<Rng> rng = makeRng(r.rng);
  rng->seed(r.seed);
  start.initLatent = encodeToLatent(toPlanes(r.image, pixels), r.width, r.height, r.vaeTiling, *rng);
  if (inpaintModel) {
    const std::vector<float> maskedLatent =
        encodeToLatent(toPlanes(r.image, pixels, pixelMask.empty() ? std::vector<float>(pixels, 1.0f) : pixelMask), r.width,
                       r.height, r.vaeTiling, *rng);
    start.concat = start.latentMask.empty() ? std::vector<float>(cells, 1.0f) : start.latentMask;
    start.concat.insert(start.concat.end(), maskedLatent.begin(), maskedLatent.end());
    if (!start.latentMask.empty()) start.latentMask = dilate(start.latentMask, w, h);
  }
  return start;
}

ImageStart withMaskedStart(const ImageStart& start, const Request& r, uint64_t seed) {
  ImageStart image = start;
  std::vector<float> replacement(image.initLatent.size(), 0.0f);
  if (r.maskedStart == "noise") {
    std::unique_ptr<Rng> rng = makeRng(r.rng);
    rng->seed(seed);
    replacement = rng->randn(replacement.size());
  }
  // As A1111: init * (1 - mask) + replacement * mask, the same mask for every channel. The blend
  // the sampler applies at every step then also starts from this latent where the mask is grey.
  const size_t cells = image.maskedStartMask.size();
  for (size_t j = 0; j < image.initLatent.size(); j++) {
    const float m = image.maskedStartMask[j % cells];
    image.initLatent[j] = image.initLatent[j] * (1.0f - m) + replacement[j] * m;
  }
  return image;
}

bool DiffusionModel::isInpaintModel() const { return unet_->config().inChannels == 2 * vae_->config().latentChannels + 1; }

ImageStart textStart(int64_t cells, int64_t channels, bool inpaintModel) {
  ImageStart start;
  if (inpaintModel) {
    // There is no image: the inpainting UNet is told to repaint everything, with a zero latent
    // standing for the masked image, as in the reference engine.
    start.concat.assign(cells, 1.0f);
    start.concat.resize(cells + channels * cells, 0.0f);
  }
  return start;
}

bool keepsInput(const Request& r) {
  if (r.mode == "txt2img") return false;
  if (r.strength == 0.0f) return true;
  return r.mode == "inpaint" && std::all_of(r.mask.begin(), r.mask.end(), [](uint8_t m) { return m == 0; });
}

std::vector<float> startSigmas(const std::vector<float>& sigmas, int steps, float strength, bool fromImage) {
  if (!fromImage) return sigmas;
  // The reference engine (and AUTOMATIC1111) run int(steps * strength) + 1 steps (all of them at
  // strength 1), from the matching point of the full schedule. (A beta schedule may hold fewer
  // steps than asked for.)
  steps = std::min(steps, static_cast<int>(sigmas.size()) - 1);
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

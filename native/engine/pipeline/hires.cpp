// The hires fix's second pass, after AUTOMATIC1111's StableDiffusionProcessingTxt2Img.sample_hr_pass:
// the first pass's latent is resized (on the latent, or as an image), cropped to the target, noised
// with fresh noise of the image's seeds at the new size, and denoised for exactly `steps` steps.
#include "hires.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "model_impl.h"
#include "vae_tiles.h"

namespace sdnode {

namespace {

const std::vector<std::pair<std::string, ResampleFilter>>& latentUpscalers() {
  static const std::vector<std::pair<std::string, ResampleFilter>> table = {
      {"latent-bilinear", ResampleFilter::Bilinear},
      {"latent-bilinear-antialiased", ResampleFilter::BilinearAntialias},
      {"latent-bicubic", ResampleFilter::Bicubic},
      {"latent-bicubic-antialiased", ResampleFilter::BicubicAntialias},
      {"latent-nearest", ResampleFilter::Nearest},
      {"latent-nearest-exact", ResampleFilter::NearestExact},
  };
  return table;
}

const char* const kLanczos = "lanczos";

// A1111 asks the img2img sampler for `steps` steps at strength s: it builds a schedule of
// int(steps / s) steps and runs its last `steps` (setup_img2img_steps with explicit steps), so the
// second pass always runs the steps asked for.
std::vector<float> secondPassSigmas(const NoiseSchedule& schedule, const std::string& scheduler, int steps, float strength) {
  const int total = static_cast<int>(static_cast<double>(steps) / std::min(static_cast<double>(strength), 0.999));
  const std::vector<float> sigmas = makeSigmas(schedule, scheduler, total);
  return std::vector<float>(sigmas.end() - (steps + 1), sigmas.end());
}

}  // namespace

bool isHiresUpscaler(const std::string& name) {
  if (name == kLanczos) return true;
  return std::any_of(latentUpscalers().begin(), latentUpscalers().end(), [&](const auto& entry) { return entry.first == name; });
}

HiresPlan planHires(const HiresFix& hires, int vaeScale, int requestSteps, const std::string& scheduler,
                    const NoiseSchedule& schedule) {
  HiresPlan plan;
  plan.width = hires.width / vaeScale;
  plan.height = hires.height / vaeScale;
  plan.upscaleWidth = hires.upscaleWidth / vaeScale;
  plan.upscaleHeight = hires.upscaleHeight / vaeScale;
  if (hires.upscaler == kLanczos) {
    plan.inImageSpace = true;
    plan.filter = ResampleFilter::Lanczos;
  } else {
    const auto& table = latentUpscalers();
    const auto found = std::find_if(table.begin(), table.end(), [&](const auto& entry) { return entry.first == hires.upscaler; });
    if (found == table.end()) throw std::invalid_argument("hires.upscaler: unknown name '" + hires.upscaler + "'");
    plan.filter = found->second;
  }
  plan.sigmas = secondPassSigmas(schedule, scheduler, hires.steps > 0 ? hires.steps : requestSteps, hires.denoisingStrength);
  return plan;
}

std::vector<float> cropCentre(const std::vector<float>& planes, int64_t count, int64_t width, int64_t height,
                              int64_t cropWidth, int64_t cropHeight) {
  if (cropWidth == width && cropHeight == height) return planes;
  const int64_t left = (width - cropWidth) / 2, top = (height - cropHeight) / 2;
  std::vector<float> out(count * cropWidth * cropHeight);
  for (int64_t p = 0; p < count; p++) {
    for (int64_t y = 0; y < cropHeight; y++) {
      const float* row = planes.data() + (p * height + top + y) * width + left;
      std::copy(row, row + cropWidth, out.data() + (p * cropHeight + y) * cropWidth);
    }
  }
  return out;
}

std::vector<float> DiffusionModel::upscaleForHires(const std::vector<float>& latent, int64_t width, int64_t height,
                                                   const HiresPlan& plan, bool vaeTiling, uint64_t seed) {
  const int64_t channels = vae_->config().latentChannels;
  std::vector<float> upscaled;
  if (!plan.inImageSpace) {
    upscaled = resamplePlanes(latent, channels, width, height, plan.upscaleWidth, plan.upscaleHeight, plan.filter);
  } else {
    const int64_t scale = info_.vaeScale;
    std::vector<float> scaled(latent.size());
    for (size_t i = 0; i < latent.size(); i++) scaled[i] = latent[i] / vae_->config().latentScale;
    std::vector<float> image = vaeTiling ? decodeInTiles(*vae_, scaled, width, height) : vae_->decode(scaled, width, height);
    vae_->releaseBuffers();
    // A1111 clamps the decoded image to its 0–1 range, and PIL clips the resized one.
    auto clampSigned = [](std::vector<float>& planes) {
      for (float& v : planes) v = std::min(1.0f, std::max(-1.0f, v));
    };
    clampSigned(image);
    image = resamplePlanes(image, 3, width * scale, height * scale, plan.upscaleWidth * scale, plan.upscaleHeight * scale,
                           plan.filter);
    clampSigned(image);
    // The posterior's noise: A1111 samples it with torch's global CPU generator, which its noise
    // set-up has just seeded with the image's seed (for one image per batch).
    Mt19937Rng posteriorRng(seed);
    upscaled = encodeToLatent(image, static_cast<int>(plan.upscaleWidth * scale), static_cast<int>(plan.upscaleHeight * scale),
                              vaeTiling, posteriorRng);
  }
  return cropCentre(upscaled, channels, plan.upscaleWidth, plan.upscaleHeight, plan.width, plan.height);
}

}  // namespace sdnode

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
const char* const kEsrgan = "esrgan";
// AUTOMATIC1111 runs an upscaler model again on its own output while the image is smaller than
// asked, at most this many times, then resizes with Lanczos.
constexpr int kMaxUpscalerPasses = 3;

// planes [3, h, w] in [-1, 1] -> interleaved bytes, truncated as A1111's conversion to a PIL image.
std::vector<uint8_t> toBytes(const std::vector<float>& planes, int64_t w, int64_t h) {
  std::vector<uint8_t> rgb(static_cast<size_t>(w * h * 3));
  for (int64_t c = 0; c < 3; c++)
    for (int64_t p = 0; p < w * h; p++) rgb[p * 3 + c] = static_cast<uint8_t>(std::clamp((planes[c * w * h + p] + 1.0f) / 2.0f, 0.0f, 1.0f) * 255.0f);
  return rgb;
}

std::vector<float> fromBytes(const std::vector<uint8_t>& rgb, int64_t w, int64_t h) {
  std::vector<float> planes(static_cast<size_t>(3 * w * h));
  for (int64_t c = 0; c < 3; c++)
    for (int64_t p = 0; p < w * h; p++) planes[c * w * h + p] = static_cast<float>(rgb[p * 3 + c]) / 255.0f * 2.0f - 1.0f;
  return planes;
}

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
  if (name == kLanczos || name == kEsrgan) return true;
  return std::any_of(latentUpscalers().begin(), latentUpscalers().end(), [&](const auto& entry) { return entry.first == name; });
}

HiresPlan planHires(const HiresFix& hires, int vaeScale, int requestSteps, const std::string& scheduler,
                    const NoiseSchedule& schedule) {
  HiresPlan plan;
  plan.width = hires.width / vaeScale;
  plan.height = hires.height / vaeScale;
  plan.upscaleWidth = hires.upscaleWidth / vaeScale;
  plan.upscaleHeight = hires.upscaleHeight / vaeScale;
  if (hires.upscaler == kLanczos || hires.upscaler == kEsrgan) {
    plan.inImageSpace = true;
    plan.filter = ResampleFilter::Lanczos;
    if (hires.upscaler == kEsrgan) {
      if (hires.upscalerPath.empty()) throw std::invalid_argument("hires.upscalerPath: the esrgan upscaler needs its model file");
      plan.esrganPath = hires.upscalerPath;
    }
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

std::vector<float> DiffusionModel::upscaleWithModel(const std::vector<float>& image, int64_t& width, int64_t& height,
                                                    const HiresPlan& plan) {
  UpscalerParams params;
  params.path = plan.esrganPath;
  params.backend = backend_->name();
  params.threads = threads_;
  std::unique_ptr<Upscaler> upscaler = Upscaler::load(params);
  const int64_t s = upscaler->info().scale, scale = info_.vaeScale;
  std::vector<uint8_t> rgb = toBytes(image, width, height);
  for (int pass = 0; pass < kMaxUpscalerPasses && (width < plan.upscaleWidth * scale || height < plan.upscaleHeight * scale); pass++) {
    UpscaleOptions options;
    options.aborted = plan.aborted;
    rgb = upscaler->upscale(rgb, static_cast<int>(width), static_cast<int>(height), options);
    width *= s;
    height *= s;
  }
  return fromBytes(rgb, width, height);
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
    int64_t w = width * scale, h = height * scale;
    if (!plan.esrganPath.empty()) image = upscaleWithModel(image, w, h, plan);
    image = resamplePlanes(image, 3, w, h, plan.upscaleWidth * scale, plan.upscaleHeight * scale, plan.filter);
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

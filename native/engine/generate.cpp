// One generation: text conditioning (and the input image's latent) once, then per image: initial
// noise, the sampler loop over the UNet with classifier-free guidance, and the VAE decode.
#include <chrono>
#include <cmath>

#include "model_impl.h"
#include "pixels.h"
#include "preview.h"
#include "rng.h"
#include "samplers.h"
#include "vae_tiles.h"

namespace sdnode {

namespace {

struct AbortScope {
  Backend& backend;
  AbortScope(Backend& b, std::function<bool()> check) : backend(b) { backend.setAbortCheck(std::move(check)); }
  ~AbortScope() { backend.setAbortCheck(nullptr); }
};

template <typename Fn>
auto asEngineError(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error&) {
    throw;
  } catch (const std::invalid_argument& e) {
    throw Error(ErrorCode::InvalidArgument, e.what());
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::OutOfMemory, "out of memory");
  }
}

}  // namespace

void DiffusionModel::checkRequest(const Request& r) const {
  auto fail = [](const std::string& what) { throw Error(ErrorCode::InvalidArgument, what); };
  const int scale = info_.vaeScale;
  if (r.width < scale || r.height < scale || r.width % scale != 0 || r.height % scale != 0 || r.width > 4096 || r.height > 4096) {
    fail("width and height must be multiples of " + std::to_string(scale) + " between " + std::to_string(scale) +
         " and 4096, got " + std::to_string(r.width) + "x" + std::to_string(r.height));
  }
  if (r.steps < 1 || r.steps > 1000) fail("steps must be between 1 and 1000, got " + std::to_string(r.steps));
  if (r.count < 1 || r.count > 64) fail("count must be between 1 and 64, got " + std::to_string(r.count));
  if (!std::isfinite(r.cfgScale) || r.cfgScale < 0) fail("cfgScale must be a finite number >= 0");
  if (r.mode != "txt2img" && r.mode != "img2img" && r.mode != "inpaint") {
    fail("mode must be txt2img, img2img or inpaint, got '" + r.mode + "'");
  }
  const size_t pixels = static_cast<size_t>(r.width) * r.height;
  if (r.mode != "txt2img" && r.image.size() != pixels * 3) {
    fail("image must hold width*height*3 = " + std::to_string(pixels * 3) + " RGB bytes, got " + std::to_string(r.image.size()));
  }
  if (r.mode == "inpaint" && r.mask.size() != pixels) {
    fail("mask must hold width*height = " + std::to_string(pixels) + " bytes, got " + std::to_string(r.mask.size()));
  }
  if (!std::isfinite(r.strength) || r.strength < 0 || r.strength > 1) fail("strength must be between 0 and 1");
  if (r.previewEvery < 0 || r.previewEvery > 1000) {
    fail("previewEvery must be between 0 (off) and 1000, got " + std::to_string(r.previewEvery));
  }
}

std::vector<float> DiffusionModel::denoise(const std::vector<float>& x, float sigma, int64_t width, int64_t height,
                                           const std::vector<float>& cond, int64_t condTokens, const std::vector<float>& uncond,
                                           int64_t uncondTokens, float cfgScale, const std::vector<float>& concat) {
  // k-diffusion's CompVis wrappers (sigma_data = 1): eps models predict the noise, v models the velocity.
  const float s2 = sigma * sigma + 1.0f;
  const float cIn = 1.0f / std::sqrt(s2);
  const float cSkip = vPrediction_ ? 1.0f / s2 : 1.0f;
  const float cOut = vPrediction_ ? -sigma / std::sqrt(s2) : -sigma;
  const float t = schedule_.sigmaToT(sigma);
  std::vector<float> input(x.size() + concat.size());
  for (size_t i = 0; i < x.size(); i++) input[i] = x[i] * cIn;
  std::copy(concat.begin(), concat.end(), input.begin() + x.size());
  std::vector<float> out = unet_->forward(input, width, height, t, cond, condTokens);
  if (!uncond.empty()) {
    std::vector<float> outUncond = unet_->forward(input, width, height, t, uncond, uncondTokens);
    for (size_t i = 0; i < out.size(); i++) out[i] = outUncond[i] + cfgScale * (out[i] - outUncond[i]);
  }
  for (size_t i = 0; i < out.size(); i++) out[i] = x[i] * cSkip + out[i] * cOut;
  return out;
}

std::vector<uint8_t> DiffusionModel::decodeToRgb(const std::vector<float>& latent, int64_t width, int64_t height, bool tiled) {
  std::vector<float> scaled(latent.size());
  for (size_t i = 0; i < latent.size(); i++) scaled[i] = latent[i] / vae_->config().latentScale;
  std::vector<float> planes = tiled ? decodeInTiles(*vae_, scaled, width, height) : vae_->decode(scaled, width, height);
  const int64_t W = width * info_.vaeScale, H = height * info_.vaeScale, plane = W * H;
  std::vector<uint8_t> rgb(plane * 3);
  for (int64_t p = 0; p < plane; p++) {
    for (int c = 0; c < 3; c++) rgb[p * 3 + c] = signedUnitToByte(planes[c * plane + p]);
  }
  return rgb;
}

std::vector<Image> DiffusionModel::generate(const Request& r, const Callbacks& callbacks) {
  return asEngineError([&]() {
    checkRequest(r);
    const auto started = std::chrono::steady_clock::now();
    const std::function<bool()> aborted = callbacks.aborted ? callbacks.aborted : [] { return false; };
    AbortScope abortScope(*backend_, aborted);
    if (aborted()) throw Error(ErrorCode::Aborted, "generation aborted");

    if (keepsInput(r)) {
      // Nothing is to be repainted: every image is the input as it was.
      std::vector<Image> copies;
      for (int i = 0; i < r.count; i++) copies.push_back({r.width, r.height, r.image, r.seed + static_cast<uint64_t>(i)});
      return copies;
    }
    const std::vector<float> cond = clip_->encode(r.prompt.tokens, r.prompt.weights, r.clipSkip);
    const int64_t condTokens = static_cast<int64_t>(r.prompt.tokens.size());
    // cfg 1 makes the unconditional pass cancel out, so it is skipped.
    std::vector<float> uncond;
    int64_t uncondTokens = 0;
    if (r.cfgScale != 1.0f) {
      uncond = clip_->encode(r.negative.tokens, r.negative.weights, r.clipSkip);
      uncondTokens = static_cast<int64_t>(r.negative.tokens.size());
    }
    // Each phase's compute buffer is freed before the next phase allocates its own, so peak memory
    // is the weights plus the largest phase (the VAE decode at large sizes), not their sum.
    clip_->releaseBuffers();
    const bool fromImage = r.mode != "txt2img";
    const std::vector<float> sigmas = startSigmas(makeSigmas(schedule_, r.scheduler, r.steps), r.steps, r.strength, fromImage);
    const int64_t w = r.width / info_.vaeScale, h = r.height / info_.vaeScale;
    const int64_t latentSize = vae_->config().latentChannels * w * h;
    const ImageStart start = prepareImageStart(r);

    std::vector<Image> images;
    for (int i = 0; i < r.count; i++) {
      const uint64_t seed = r.seed + static_cast<uint64_t>(i);
      // Like stable-diffusion.cpp (the reference images): one generator per image, seeded with its
      // seed, draws the initial noise and then every ancestral step's noise.
      std::unique_ptr<Rng> rng = makeRng(r.rng);
      rng->seed(seed);
      std::vector<float> x = rng->randn(static_cast<size_t>(latentSize));
      for (size_t j = 0; j < x.size(); j++) x[j] = (fromImage ? start.initLatent[j] : 0.0f) + x[j] * sigmas[0];

      // The preview shows the model's latest estimate of the clean image (the denoiser's x0 from the
      // step's last model call), not x: x carries the remaining noise, which at early steps hides
      // the picture completely, while x0 shows the composition from the first steps on.
      std::vector<float> latestDenoised;
      const bool previews = r.previewEvery > 0 && static_cast<bool>(callbacks.onProgress);
      SamplerHooks hooks;
      hooks.aborted = aborted;
      hooks.onStep = [&](int step, int steps) {
        if (!callbacks.onProgress) return;
        Progress p;
        p.step = step;
        p.steps = steps;
        p.image = i;
        p.images = r.count;
        if (previews && isPreviewStep(step, steps, r.previewEvery)) p.preview = previewOfLatent(latestDenoised, w, h);
        p.elapsedMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
        callbacks.onProgress(p);
      };
      const Denoiser model = [&](const std::vector<float>& latent, float sigma) {
        std::vector<float> denoised = denoise(latent, sigma, w, h, cond, condTokens, uncond, uncondTokens, r.cfgScale, start.concat);
        // Inpainting: the kept region's prediction is the input's latent, so at every step the
        // sampler re-imposes it at the current noise level.
        if (!start.latentMask.empty()) {
          const size_t cells = start.latentMask.size();
          for (size_t j = 0; j < denoised.size(); j++) {
            const float m = start.latentMask[j % cells];
            denoised[j] = start.initLatent[j] + m * (denoised[j] - start.initLatent[j]);
          }
        }
        if (previews) latestDenoised = denoised;
        return denoised;
      };
      x = sample(r.sampler, model, std::move(x), sigmas, *rng, schedule_, hooks);

      Image image;
      image.width = r.width;
      image.height = r.height;
      image.seed = seed;
      unet_->releaseBuffers();
      image.rgb = decodeToRgb(x, w, h, r.vaeTiling);
      vae_->releaseBuffers();
      if (r.mode == "inpaint") compositeKept(image.rgb, r.image, r.mask);
      images.push_back(std::move(image));
    }
    return images;
  });
}

}  // namespace sdnode

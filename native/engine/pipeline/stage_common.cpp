#include "stage_common.h"

#include <cmath>
#include <string>

#include "image_start.h"
#include "rng.h"
#include "run_scopes.h"

namespace sdnode {

void stageFail(const std::string& what) { throw Error(ErrorCode::InvalidArgument, what); }

void checkStageSample(const SampleRequest& s, const LatentBatch& latent, int64_t channels, int cellStep, int64_t textWidth) {
  const int64_t w = latent.width, h = latent.height, cells = w * h;
  if (w < cellStep || h < cellStep || w > 512 || h > 512 || w % cellStep != 0 || h % cellStep != 0 || latent.batch < 1 || latent.batch > 64) {
    stageFail("latent must be " + std::to_string(cellStep) + " to 512 cells wide and high (a multiple of " + std::to_string(cellStep) +
              "), with a batch of 1 to 64");
  }
  if (latent.channels != channels || latent.data.size() != static_cast<size_t>(latent.batch * channels * cells)) {
    stageFail("latent must hold batch*" + std::to_string(channels) + "*height*width values for this model");
  }
  if (!latent.noiseMask.empty() && latent.noiseMask.size() != static_cast<size_t>(cells)) stageFail("noiseMask must hold height*width values");
  if (s.steps < 1 || s.steps > 1000) stageFail("steps must be between 1 and 1000, got " + std::to_string(s.steps));
  if (!std::isfinite(s.denoise) || s.denoise <= 0 || s.denoise > 1) stageFail("denoise must be above 0 and at most 1");
  if (s.startStep < 0 || s.endStep < 0) stageFail("startStep and endStep must be >= 0");
  if (!std::isfinite(s.cfgScale) || s.cfgScale < 0) stageFail("cfgScale must be a finite number >= 0");
  if (s.previewEvery < 0 || s.previewEvery > 1000) stageFail("previewEvery must be between 0 (off) and 1000");
  if (s.positive.empty() || (s.cfgScale != 1.0f && s.negative.empty())) stageFail("positive and negative must be encoded text");
  if (s.positive.size() > 16 || s.negative.size() > 16) stageFail("at most 16 positive and 16 negative conditionings");
  for (const std::vector<EncodedText>* list : {&s.positive, &s.negative}) {
    for (const EncodedText& text : *list) {
      if (text.hidden.empty()) stageFail("positive and negative must be encoded text");
      if (textWidth > 0 && static_cast<int64_t>(text.hidden.size()) != text.tokens * textWidth) {
        stageFail("the conditioning was not made by a model of this text width (" + std::to_string(textWidth) + ")");
      }
    }
  }
}

std::vector<float> stageSigmas(const SampleRequest& r, const std::function<std::vector<float>(int)>& makeSigmas) {
  std::vector<float> sigmas;
  if (r.denoise < 1.0f) {
    const int total = static_cast<int>(static_cast<float>(r.steps) / r.denoise);
    const std::vector<float> full = makeSigmas(total);
    sigmas.assign(full.end() - (r.steps + 1), full.end());
  } else {
    sigmas = makeSigmas(r.steps);
  }
  const int last = static_cast<int>(sigmas.size()) - 1;
  if (r.endStep < last) {
    sigmas.resize(r.endStep + 1);
    if (r.forceFullDenoise) sigmas.back() = 0.0f;
  }
  if (r.startStep > 0) {
    if (r.startStep >= static_cast<int>(sigmas.size()) - 1) return {};
    sigmas.erase(sigmas.begin(), sigmas.begin() + r.startStep);
  }
  return sigmas;
}

std::function<bool()> stageAbortCheck(const Callbacks& callbacks) {
  return callbacks.aborted ? callbacks.aborted : [] { return false; };
}

std::vector<Image> decodeBatch(const LatentBatch& latent, Vae& vae, int vaeScale, Backend& backend, const Callbacks& callbacks,
                               const std::function<std::vector<uint8_t>(const std::vector<float>&, int64_t, int64_t)>& decodeOne) {
  const int64_t channels = vae.config().latentChannels;
  const int64_t w = latent.width, h = latent.height, n = channels * w * h;
  if (w < 1 || h < 1 || w * vaeScale > 4096 || h * vaeScale > 4096 || latent.batch < 1) stageFail("latent must decode to 8 to 4096 pixels wide and high");
  if (latent.channels != channels || latent.data.size() != static_cast<size_t>(latent.batch * n)) {
    stageFail("latent must hold batch*" + std::to_string(channels) + "*height*width values for this model");
  }
  AbortScope abortScope(backend, stageAbortCheck(callbacks));
  std::vector<Image> images;
  for (int i = 0; i < latent.batch; i++) {
    if (callbacks.aborted && callbacks.aborted()) throw Error(ErrorCode::Aborted, "generation aborted");
    Image image;
    image.width = static_cast<int>(w) * vaeScale;
    image.height = static_cast<int>(h) * vaeScale;
    image.rgb = decodeOne(std::vector<float>(latent.data.begin() + i * n, latent.data.begin() + (i + 1) * n), w, h);
    vae.releaseBuffers();
    images.push_back(std::move(image));
  }
  return images;
}

LatentBatch encodeImageLatent(Vae& vae, int vaeScale, int sizeStep, const std::vector<uint8_t>& rgb, int width, int height, bool tiled,
                              bool sampled, uint64_t seed, const std::string& rngKind) {
  if (width < sizeStep || height < sizeStep || width % sizeStep != 0 || height % sizeStep != 0 || width > 4096 || height > 4096) {
    stageFail("width and height must be multiples of " + std::to_string(sizeStep) + " between " + std::to_string(sizeStep) + " and 4096");
  }
  const int64_t pixels = static_cast<int64_t>(width) * height;
  if (rgb.size() != static_cast<size_t>(pixels * 3)) stageFail("image must hold width*height*3 RGB bytes");
  std::unique_ptr<Rng> rng;
  if (sampled) {
    rng = makeRng(rngKind);
    rng->seed(seed);
  }
  LatentBatch latent;
  latent.width = width / vaeScale;
  latent.height = height / vaeScale;
  latent.channels = static_cast<int>(vae.config().latentChannels);
  latent.data = encodeLatent(vae, rgbToPlanes(rgb, pixels), width, height, tiled, rng.get());
  return latent;
}

std::function<void(int, int)> stepReporter(const Callbacks& callbacks, int image, int images,
                                           std::chrono::steady_clock::time_point started) {
  return [&callbacks, image, images, started](int step, int steps) {
    if (!callbacks.onProgress) return;
    Progress p;
    p.step = p.passStep = step;
    p.steps = p.passSteps = steps;
    p.image = image;
    p.images = images;
    p.elapsedMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    callbacks.onProgress(p);
  };
}

void blendKept(std::vector<float>& denoised, const std::vector<float>& input, const std::vector<float>& mask) {
  const size_t cells = mask.size();
  for (size_t j = 0; j < denoised.size(); j++) denoised[j] = input[j] + mask[j % cells] * (denoised[j] - input[j]);
}

}  // namespace sdnode

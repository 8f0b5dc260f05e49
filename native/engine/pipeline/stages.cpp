// The stages of a generation as callers compose them (ComfyUI's nodes): each is the piece
// generate() runs, with the same conditioning, noise, sampler loop and decode, so a composition of
// stages with generate()'s settings gives generate()'s pixels.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "lora.h"
#include "model_impl.h"
#include "run_scopes.h"
#include "samplers.h"

namespace sdnode {

namespace {

[[noreturn]] void fail(const std::string& what) { throw Error(ErrorCode::InvalidArgument, what); }

[[noreturn]] void unsupported(const ModelInfo& info) {
  throw Error(ErrorCode::ModelUnsupported, "the stage API runs UNet models (SD 1.x, 2.x, SDXL); this is a " + info.family + " model");
}

std::function<bool()> abortCheck(const Callbacks& callbacks) {
  return callbacks.aborted ? callbacks.aborted : [] { return false; };
}

// ComfyUI's KSampler schedule: the full schedule of steps / denoise steps, its last `steps` run,
// then KSamplerAdvanced's window [startStep, endStep].
std::vector<float> stageSigmas(const NoiseSchedule& schedule, const SampleRequest& r) {
  std::vector<float> sigmas;
  if (r.denoise < 1.0f) {
    const int total = static_cast<int>(static_cast<float>(r.steps) / r.denoise);
    const std::vector<float> full = makeSigmas(schedule, r.scheduler, total);
    sigmas.assign(full.end() - (r.steps + 1), full.end());
  } else {
    sigmas = makeSigmas(schedule, r.scheduler, r.steps);
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

}  // namespace

EncodedText Model::encodeText(const Conditioning&, int, const std::vector<LoraFile>&) { unsupported(info()); }
LatentBatch Model::encodeImage(const std::vector<uint8_t>&, int, int, bool, bool, uint64_t, const std::string&) { unsupported(info()); }
LatentBatch Model::sampleLatent(const SampleRequest&, const LatentBatch&, const Callbacks&) { unsupported(info()); }
std::vector<Image> Model::decodeLatent(const LatentBatch&, bool, const Callbacks&) { unsupported(info()); }

EncodedText DiffusionModel::encodeText(const Conditioning& prompt, int clipSkip, const std::vector<LoraFile>& loras) {
  return asEngineError([&]() {
    if (!staleWeights_.empty()) throw Error(ErrorCode::ModelIo, staleWeights_);
    if (prompt.tokens.empty() || prompt.tokens.size() % 77 != 0 || prompt.weights.size() != prompt.tokens.size()) {
      fail("prompt must hold rows of 77 token ids and one weight per id");
    }
    std::vector<LoraFile> textLoras = loras;
    for (LoraFile& lora : textLoras) lora.unetMultiplier = 0.0f;
    const LoraMerge merge(info_.family, file_, *weights_, textLoras, threads_, staleWeights_);
    EncodedPrompt encoded = encodePrompt(prompt, clipSkip);
    clip_->releaseBuffers();
    if (clip2_) clip2_->releaseBuffers();
    return EncodedText{std::move(encoded.hidden), encoded.tokens, std::move(encoded.pooled)};
  });
}

LatentBatch DiffusionModel::encodeImage(const std::vector<uint8_t>& rgb, int width, int height, bool tiled, bool sampled,
                                        uint64_t seed, const std::string& rngKind) {
  return asEngineError([&]() {
    const int scale = info_.vaeScale;
    if (width < scale || height < scale || width % scale != 0 || height % scale != 0 || width > 4096 || height > 4096) {
      fail("width and height must be multiples of " + std::to_string(scale) + " between " + std::to_string(scale) + " and 4096");
    }
    const int64_t pixels = static_cast<int64_t>(width) * height;
    if (rgb.size() != static_cast<size_t>(pixels * 3)) fail("image must hold width*height*3 RGB bytes");
    std::unique_ptr<Rng> rng;
    if (sampled) {
      rng = makeRng(rngKind);
      rng->seed(seed);
    }
    LatentBatch latent;
    latent.width = width / scale;
    latent.height = height / scale;
    latent.channels = static_cast<int>(vae_->config().latentChannels);
    latent.data = encodeLatent(*vae_, rgbToPlanes(rgb, pixels), width, height, tiled, rng.get());
    return latent;
  });
}

LatentBatch DiffusionModel::sampleLatent(const SampleRequest& s, const LatentBatch& latent, const Callbacks& callbacks) {
  return asEngineError([&]() {
    if (!staleWeights_.empty()) throw Error(ErrorCode::ModelIo, staleWeights_);
    const int64_t w = latent.width, h = latent.height, cells = w * h;
    const int64_t channels = vae_->config().latentChannels;
    if (w < 1 || h < 1 || w > 512 || h > 512 || latent.batch < 1 || latent.batch > 64) {
      fail("latent must be 1 to 512 cells wide and high, with a batch of 1 to 64");
    }
    if (latent.channels != channels || latent.data.size() != static_cast<size_t>(latent.batch * channels * cells)) {
      fail("latent must hold batch*" + std::to_string(channels) + "*height*width values for this model");
    }
    if (!latent.noiseMask.empty() && latent.noiseMask.size() != static_cast<size_t>(cells)) fail("noiseMask must hold height*width values");
    if (s.steps < 1 || s.steps > 1000) fail("steps must be between 1 and 1000, got " + std::to_string(s.steps));
    if (!std::isfinite(s.denoise) || s.denoise <= 0 || s.denoise > 1) fail("denoise must be above 0 and at most 1");
    if (s.startStep < 0 || s.endStep < 0) fail("startStep and endStep must be >= 0");
    if (!std::isfinite(s.cfgScale) || s.cfgScale < 0) fail("cfgScale must be a finite number >= 0");
    if (s.previewEvery < 0 || s.previewEvery > 1000) fail("previewEvery must be between 0 (off) and 1000");
    if (s.positive.hidden.empty() || (s.cfgScale != 1.0f && s.negative.hidden.empty())) fail("positive and negative must be encoded text");
    for (const EncodedText* text : {&s.positive, &s.negative}) {
      if (!text->hidden.empty() && static_cast<int64_t>(text->hidden.size()) != text->tokens * info_.contextDim) {
        fail("the conditioning was not made by a model of this width (" + std::to_string(info_.contextDim) + ")");
      }
    }

    Request r;
    r.width = static_cast<int>(w) * info_.vaeScale;
    r.height = static_cast<int>(h) * info_.vaeScale;
    r.steps = s.steps;
    r.cfgScale = s.cfgScale;
    r.sampler = s.sampler;
    r.scheduler = s.scheduler;
    r.rng = s.rng;
    r.count = latent.batch;
    r.previewEvery = s.previewEvery;
    const RunContext run{r, callbacks, abortCheck(callbacks), std::chrono::steady_clock::now()};
    AbortScope abortScope(*backend_, run.aborted);
    if (run.aborted()) throw Error(ErrorCode::Aborted, "generation aborted");

    const std::vector<float> sigmas = stageSigmas(schedule_, s);
    LatentBatch out = latent;
    if (sigmas.empty()) return out;  // the window holds no step: the latent as it was
    std::vector<LoraFile> unetLoras = s.loras;
    for (LoraFile& lora : unetLoras) lora.textMultiplier = 0.0f;
    const LoraMerge merge(info_.family, file_, *weights_, unetLoras, threads_, staleWeights_);
    TextConditions text;
    text.cond = s.positive.hidden;
    text.condTokens = s.positive.tokens;
    text.condPooled = s.positive.pooled;
    if (s.cfgScale != 1.0f) {
      text.uncond = s.negative.hidden;
      text.uncondTokens = s.negative.tokens;
      text.uncondPooled = s.negative.pooled;
    }
    std::unique_ptr<Rng> rng = makeRng(s.rng);
    rng->seed(s.seed);
    const size_t n = static_cast<size_t>(channels * cells);
    const std::vector<float> noise = s.addNoise ? rng->randn(n * latent.batch) : std::vector<float>(n * latent.batch, 0.0f);
    const int steps = static_cast<int>(sigmas.size()) - 1;
    for (int i = 0; i < latent.batch; i++) {
      const std::vector<float> image(latent.data.begin() + i * n, latent.data.begin() + (i + 1) * n);
      ImageStart start;
      if (!latent.noiseMask.empty()) {
        start.initLatent = image;
        start.latentMask = latent.noiseMask;
      }
      if (isInpaintModel()) {
        // The inpainting UNet reads the mask and the masked image's latent, which is this latent
        // (VAEEncodeForInpaint's); with no mask it repaints everything.
        start.concat = latent.noiseMask.empty() ? std::vector<float>(cells, 1.0f) : latent.noiseMask;
        start.concat.insert(start.concat.end(), image.begin(), image.end());
      }
      std::vector<float> x(n);
      for (size_t j = 0; j < n; j++) x[j] = image[j] + noise[i * n + j] * sigmas[0];
      x = samplePass(run, std::move(x), sigmas, text, start, w, h, *rng, {i, steps, 0, 0});
      std::copy(x.begin(), x.end(), out.data.begin() + i * n);
    }
    return out;
  });
}

std::vector<Image> DiffusionModel::decodeLatent(const LatentBatch& latent, bool tiled, const Callbacks& callbacks) {
  return asEngineError([&]() {
    const int64_t w = latent.width, h = latent.height, n = static_cast<int64_t>(latent.channels) * w * h;
    if (w < 1 || h < 1 || w * info_.vaeScale > 4096 || h * info_.vaeScale > 4096 || latent.batch < 1) {
      fail("latent must decode to 8 to 4096 pixels wide and high");
    }
    if (latent.channels != vae_->config().latentChannels || latent.data.size() != static_cast<size_t>(latent.batch * n)) {
      fail("latent must hold batch*" + std::to_string(vae_->config().latentChannels) + "*height*width values for this model");
    }
    AbortScope abortScope(*backend_, abortCheck(callbacks));
    std::vector<Image> images;
    for (int i = 0; i < latent.batch; i++) {
      if (callbacks.aborted && callbacks.aborted()) throw Error(ErrorCode::Aborted, "generation aborted");
      const std::vector<float> x(latent.data.begin() + i * n, latent.data.begin() + (i + 1) * n);
      Image image;
      image.width = static_cast<int>(w) * info_.vaeScale;
      image.height = static_cast<int>(h) * info_.vaeScale;
      image.rgb = decodeToRgb(x, w, h, tiled);
      vae_->releaseBuffers();
      images.push_back(std::move(image));
    }
    return images;
  });
}

}  // namespace sdnode

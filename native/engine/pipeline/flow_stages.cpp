// The stages of FLUX.1, Chroma and SD3 / SD3.5 (see stages.cpp for the UNet families): the same
// text encoding, noise, transformer denoiser and VAE as FlowModel::generate, so a composition of
// stages with generate()'s settings gives its pixels.
#include <chrono>

#include "flow_model.h"
#include "image_start.h"
#include "lora.h"
#include "run_scopes.h"
#include "samplers.h"
#include "stage_common.h"
#include "system_info.h"

namespace sdnode {

namespace {

FlowText flowTextOf(const EncodedText& text) { return FlowText{text.hidden, text.tokens, text.pooled, text.mask}; }

}  // namespace

EncodedText FlowModel::encodeText(const TextRequest& request) {
  return asEngineError([&]() {
    if (!staleWeights_.empty()) throw Error(ErrorCode::ModelIo, staleWeights_);
    for (const LoraFile& lora : request.loras) {
      if (lora.textMultiplier != 0.0f) stageFail("LoRAs on the text encoders are not supported for " + info_.family + " models yet");
    }
    FlowText text = encodeCached(request.prompt, request.clipG, request.t5, request.llm);
    doneWithTextEncoders();
    return EncodedText{std::move(text.context), text.tokens, std::move(text.pooled), std::move(text.mask), {}};
  });
}

LatentBatch FlowModel::encodeImage(const std::vector<uint8_t>& rgb, int width, int height, bool tiled, bool sampled, uint64_t seed,
                                   const std::string& rngKind) {
  // The transformer takes 2x2 patches of latent cells: sizes are multiples of 16 pixels.
  return asEngineError([&]() {
    return encodeImageLatent(*vae_, info_.vaeScale, 2 * info_.vaeScale, rgb, width, height, tiled, sampled, seed, rngKind);
  });
}

LatentBatch FlowModel::sampleLatent(const SampleRequest& s, const LatentBatch& latent, const Callbacks& callbacks) {
  return asEngineError([&]() {
    if (!staleWeights_.empty()) throw Error(ErrorCode::ModelIo, staleWeights_);
    const int64_t w = latent.width, h = latent.height, cells = w * h;
    const int64_t channels = vae_->config().latentChannels;
    checkStageSample(s, latent, channels, 2, info_.contextDim);
    for (const auto* texts : {&s.positive, &s.negative}) {
      for (const EncodedText& text : *texts) {
        if (!text.controls.empty()) stageFail("ControlNet units apply to SD 1.x, SD 2.x and SDXL models, not to " + info_.family);
      }
    }
    checkFlowSampling(s.sampler, s.scheduler);
    if (!std::isfinite(s.guidance) || s.guidance < 0 || s.guidance > 100) stageFail("guidance must be between 0 and 100");
    if (!std::isfinite(s.flowShift) || s.flowShift < 0 || s.flowShift > 100) stageFail("flowShift must be between 0 (the family's) and 100");
    if (!s.loras.empty() && !flux_) stageFail("LoRAs are not supported for " + info_.family + " models yet (FLUX.1 only)");
    const std::function<bool()> aborted = stageAbortCheck(callbacks);
    const auto started = std::chrono::steady_clock::now();
    AbortScope abortScope(*backend_, aborted);
    if (aborted()) throw Error(ErrorCode::Aborted, "generation aborted");

    FlowSchedule schedule = schedule_;
    if (s.flowShift > 0) schedule.shift = s.flowShift;
    const std::vector<float> sigmas = stageSigmas(s, [&](int steps) { return makeFlowSigmas(schedule, s.scheduler, steps, cells); });
    LatentBatch out = latent;
    if (sigmas.empty()) return out;  // the window holds no step: the latent as it was
    // With lowMemory the transformer was freed for the text encoders; it comes back now.
    loadTransformer();
    const int threads = params_.threads > 0 ? params_.threads : physicalCores();
    const LoraMerge loras(info_.family, diffusion_->file, *diffusion_->weights, s.loras, threads, staleWeights_);
    const bool guided = s.cfgScale != 1.0f;
    std::vector<FlowText> conds, unconds;
    for (const EncodedText& text : s.positive) conds.push_back(flowTextOf(text));
    if (guided) {
      for (const EncodedText& text : s.negative) unconds.push_back(flowTextOf(text));
    }
    Request r;
    r.cfgScale = s.cfgScale;
    r.guidance = s.guidance;
    const std::vector<FluxReference> noReferences;
    const NoiseSchedule unusedVpSchedule;

    std::unique_ptr<Rng> rng = makeRng(s.rng);
    rng->seed(s.seed);
    const size_t n = static_cast<size_t>(channels * cells);
    const std::vector<float> noise = s.addNoise ? rng->randn(n * latent.batch) : std::vector<float>(n * latent.batch, 0.0f);
    for (int i = 0; i < latent.batch; i++) {
      const std::vector<float> image(latent.data.begin() + i * n, latent.data.begin() + (i + 1) * n);
      // Flow matching mixes rather than adds: x = sigma noise + (1 - sigma) latent, as ComfyUI scales it.
      std::vector<float> x(n);
      for (size_t j = 0; j < n; j++) x[j] = sigmas[0] * noise[i * n + j] + (1.0f - sigmas[0]) * image[j];
      SamplerHooks hooks;
      hooks.aborted = aborted;
      hooks.onStep = stepReporter(callbacks, i, latent.batch, started);
      // Combined conditionings: the mean of the guided predictions over every (positive, negative) pair.
      const Denoiser model = [&](const std::vector<float>& current, float sigma, int /*step*/) {
        std::vector<float> denoised(current.size(), 0.0f);
        size_t pairs = 0;
        for (const FlowText& cond : conds) {
          for (size_t k = 0; k < (guided ? unconds.size() : 1); k++) {
            const std::vector<float> one = denoise(current, sigma, w, h, cond, guided ? &unconds[k] : nullptr, r, noReferences, false);
            for (size_t j = 0; j < one.size(); j++) denoised[j] += one[j];
            pairs++;
          }
        }
        for (float& v : denoised) v /= static_cast<float>(pairs);
        if (!latent.noiseMask.empty()) blendKept(denoised, image, latent.noiseMask);
        return denoised;
      };
      x = sample(s.sampler, model, std::move(x), sigmas, *rng, unusedVpSchedule, hooks, true);
      // ComfyUI hands on a latent that keeps noise as x / (1 - sigma), what the next pass's mixing undoes.
      const float last = sigmas.back();
      if (last > 0.0f) {
        for (float& v : x) v /= (1.0f - last);
      }
      std::copy(x.begin(), x.end(), out.data.begin() + i * n);
    }
    if (flux_) flux_->releaseBuffers();
    if (mmdit_) mmdit_->releaseBuffers();
    if (zImageTransformer_) zImageTransformer_->releaseBuffers();
    return out;
  });
}

std::vector<Image> FlowModel::decodeLatent(const LatentBatch& latent, bool tiled, const Callbacks& callbacks) {
  const auto decodeOne = [&](const std::vector<float>& x, int64_t w, int64_t h) { return decodeToRgb(x, w, h, tiled); };
  return asEngineError([&]() { return decodeBatch(latent, *vae_, info_.vaeScale, *backend_, callbacks, decodeOne); });
}

}  // namespace sdnode

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
#include "stage_common.h"

namespace sdnode {

namespace {

[[noreturn]] void unsupported(const ModelInfo& info) {
  throw Error(ErrorCode::ModelUnsupported, "the stage API does not run " + info.family + " models yet");
}

}  // namespace

EncodedText Model::encodeText(const TextRequest&) { unsupported(info()); }
LatentBatch Model::encodeImage(const std::vector<uint8_t>&, int, int, bool, bool, uint64_t, const std::string&) { unsupported(info()); }
LatentBatch Model::sampleLatent(const SampleRequest&, const LatentBatch&, const Callbacks&) { unsupported(info()); }
std::vector<Image> Model::decodeLatent(const LatentBatch&, bool, const Callbacks&) { unsupported(info()); }

EncodedText DiffusionModel::encodeText(const TextRequest& request) {
  return asEngineError([&]() {
    if (!staleWeights_.empty()) throw Error(ErrorCode::ModelIo, staleWeights_);
    const Conditioning& prompt = request.prompt;
    if (prompt.tokens.empty() || prompt.tokens.size() % 77 != 0 || prompt.weights.size() != prompt.tokens.size()) {
      stageFail("prompt must hold rows of 77 token ids and one weight per id");
    }
    std::vector<LoraFile> textLoras = request.loras;
    for (LoraFile& lora : textLoras) lora.unetMultiplier = 0.0f;
    const LoraMerge merge(info_.family, file_, *weights_, textLoras, threads_, staleWeights_);
    EncodedPrompt encoded = encodePrompt(prompt, request.clipSkip);
    clip_->releaseBuffers();
    if (clip2_) clip2_->releaseBuffers();
    return EncodedText{std::move(encoded.hidden), encoded.tokens, std::move(encoded.pooled), {}, {}};
  });
}

LatentBatch DiffusionModel::encodeImage(const std::vector<uint8_t>& rgb, int width, int height, bool tiled, bool sampled,
                                        uint64_t seed, const std::string& rngKind) {
  return asEngineError([&]() { return encodeImageLatent(*vae_, info_.vaeScale, info_.vaeScale, rgb, width, height, tiled, sampled, seed, rngKind); });
}

LatentBatch DiffusionModel::sampleLatent(const SampleRequest& s, const LatentBatch& latent, const Callbacks& callbacks) {
  return asEngineError([&]() {
    if (!staleWeights_.empty()) throw Error(ErrorCode::ModelIo, staleWeights_);
    const int64_t w = latent.width, h = latent.height, cells = w * h;
    const int64_t channels = vae_->config().latentChannels;
    checkStageSample(s, latent, channels, 1, info_.contextDim);

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
    const RunContext run{r, callbacks, stageAbortCheck(callbacks), std::chrono::steady_clock::now()};
    AbortScope abortScope(*backend_, run.aborted);
    if (run.aborted()) throw Error(ErrorCode::Aborted, "generation aborted");

    const std::vector<float> sigmas = stageSigmas(s, [&](int steps) { return makeSigmas(schedule_, s.scheduler, steps); });
    LatentBatch out = latent;
    if (sigmas.empty()) return out;  // the window holds no step: the latent as it was
    std::vector<LoraFile> unetLoras = s.loras;
    for (LoraFile& lora : unetLoras) lora.textMultiplier = 0.0f;
    const LoraMerge merge(info_.family, file_, *weights_, unetLoras, threads_, staleWeights_);
    // The conditionings' ControlNet units, prepared at once (the model keeps this call's networks),
    // then handed back to each conditioning.
    const bool guided = s.cfgScale != 1.0f;
    std::vector<ControlUnit> units;
    std::vector<size_t> firstUnit;  // per conditioning, positives then negatives
    auto collect = [&](const std::vector<EncodedText>& texts, const std::string& name) {
      for (size_t k = 0; k < texts.size(); k++) {
        checkControlUnits(texts[k].controls, r.width, r.height, nullptr, name + "[" + std::to_string(k) + "].controls");
        firstUnit.push_back(units.size());
        units.insert(units.end(), texts[k].controls.begin(), texts[k].controls.end());
      }
    };
    collect(s.positive, "positive");
    if (guided) collect(s.negative, "negative");
    firstUnit.push_back(units.size());
    const std::vector<ControlRun> runs = prepareControls(units, r.width, r.height);
    std::vector<std::vector<ControlRun>> controls;
    for (size_t c = 0; c + 1 < firstUnit.size(); c++) controls.emplace_back(runs.begin() + firstUnit[c], runs.begin() + firstUnit[c + 1]);
    auto controlsOf = [&](size_t c) { return controls[c].empty() ? nullptr : &controls[c]; };
    // Every (positive, negative) pair; at cfg 1 the positives alone.
    std::vector<TextConditions> pairs;
    for (size_t p = 0; p < s.positive.size(); p++) {
      const EncodedText& positive = s.positive[p];
      const size_t negatives = guided ? s.negative.size() : 1;
      for (size_t k = 0; k < negatives; k++) {
        TextConditions text;
        text.cond = positive.hidden;
        text.condTokens = positive.tokens;
        text.condPooled = positive.pooled;
        text.condControls = controlsOf(p);
        if (guided) {
          text.uncond = s.negative[k].hidden;
          text.uncondTokens = s.negative[k].tokens;
          text.uncondPooled = s.negative[k].pooled;
          text.uncondControls = controlsOf(s.positive.size() + k);
        }
        pairs.push_back(std::move(text));
      }
    }
    std::vector<const TextConditions*> texts;
    for (const TextConditions& text : pairs) texts.push_back(&text);
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
      x = samplePass(run, std::move(x), sigmas, texts, start, w, h, *rng, {i, steps, 0, 0});
      std::copy(x.begin(), x.end(), out.data.begin() + i * n);
    }
    return out;
  });
}

std::vector<Image> DiffusionModel::decodeLatent(const LatentBatch& latent, bool tiled, const Callbacks& callbacks) {
  const auto decodeOne = [&](const std::vector<float>& x, int64_t w, int64_t h) { return decodeToRgb(x, w, h, tiled); };
  return asEngineError([&]() { return decodeBatch(latent, *vae_, info_.vaeScale, *backend_, callbacks, decodeOne); });
}

}  // namespace sdnode

// One generation: text conditioning (and the input image's latent) once, then per image: initial
// noise, the sampler loop over the UNet with classifier-free guidance, optionally the hires fix's
// second pass, and the VAE decode.
#include <chrono>
#include <cmath>

#include "lora.h"
#include "model_impl.h"
#include "noise.h"
#include "pixels.h"
#include "preview.h"
#include "rng.h"
#include "run_scopes.h"
#include "samplers.h"
#include "stage_common.h"
#include "vae_tiles.h"

namespace sdnode {

namespace {

bool sameText(const Conditioning& a, const Conditioning& b) {
  return a.tokens == b.tokens && a.weights == b.weights && a.embeddings == b.embeddings && a.embeddings2 == b.embeddings2;
}

// Image i of a call uses seed + i, wrapping within the 32-bit seeds a caller may give (so the
// image after seed 4294967295 has seed 0, and every reported seed reproduces its image alone).
uint64_t imageSeed(uint64_t base, int i) { return (base + static_cast<uint64_t>(i)) & 0xffffffffull; }

}  // namespace

void DiffusionModel::checkRequest(const Request& r) const {
  auto fail = [](const std::string& what) { throw Error(ErrorCode::InvalidArgument, what); };
  const int scale = info_.vaeScale;
  auto checkSize = [&](const std::string& what, int width, int height) {
    if (width < scale || height < scale || width % scale != 0 || height % scale != 0 || width > 4096 || height > 4096) {
      fail(what + " must be multiples of " + std::to_string(scale) + " between " + std::to_string(scale) + " and 4096, got " +
           std::to_string(width) + "x" + std::to_string(height));
    }
  };
  checkSize("width and height", r.width, r.height);
  if (r.steps < 1 || r.steps > 1000) fail("steps must be between 1 and 1000, got " + std::to_string(r.steps));
  if (r.count < 1 || r.count > 64) fail("count must be between 1 and 64, got " + std::to_string(r.count));
  if (!std::isfinite(r.cfgScale) || r.cfgScale < 0) fail("cfgScale must be a finite number >= 0");
  if (r.mode != "txt2img" && r.mode != "img2img" && r.mode != "inpaint") {
    fail("mode must be txt2img, img2img or inpaint, got '" + r.mode + "'");
  }
  try {
    checkCacheOptions(r.cache, false);
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  const size_t pixels = static_cast<size_t>(r.width) * r.height;
  if (r.mode != "txt2img" && r.image.size() != pixels * 3) {
    fail("image must hold width*height*3 = " + std::to_string(pixels * 3) + " RGB bytes, got " + std::to_string(r.image.size()));
  }
  if (r.mode == "inpaint" && r.mask.size() != pixels) {
    fail("mask must hold width*height = " + std::to_string(pixels) + " bytes, got " + std::to_string(r.mask.size()));
  }
  if (!std::isfinite(r.strength) || r.strength < 0 || r.strength > 1) fail("strength must be between 0 and 1");
  if (r.maskedStart != "original" && r.maskedStart != "noise" && r.maskedStart != "zeros") {
    fail("maskedStart must be original, noise or zeros, got '" + r.maskedStart + "'");
  }
  if (r.maskedStart != "original" && r.mode != "inpaint") fail("maskedStart applies to inpaint only, got mode '" + r.mode + "'");
  if (r.previewEvery < 0 || r.previewEvery > 1000) {
    fail("previewEvery must be between 0 (off) and 1000, got " + std::to_string(r.previewEvery));
  }
  if (!std::isfinite(r.subseedStrength) || r.subseedStrength < 0 || r.subseedStrength > 1) {
    fail("subseedStrength must be between 0 and 1");
  }
  if (r.seedResizeWidth != 0 || r.seedResizeHeight != 0) checkSize("seedResizeWidth and seedResizeHeight", r.seedResizeWidth, r.seedResizeHeight);
  auto checkConditioningSize = [&](const std::string& what, int width, int height) {
    if (width < 0 || height < 0 || width > 16384 || height > 16384 || (width == 0) != (height == 0)) {
      fail(what + " must both be 0 (the generated size) or both between 1 and 16384, got " + std::to_string(width) + "x" +
           std::to_string(height));
    }
  };
  checkConditioningSize("originalWidth and originalHeight", r.originalWidth, r.originalHeight);
  checkConditioningSize("targetWidth and targetHeight", r.targetWidth, r.targetHeight);
  if (r.cropTop < 0 || r.cropLeft < 0 || r.cropTop > 16384 || r.cropLeft > 16384) {
    fail("cropTop and cropLeft must be between 0 and 16384, got " + std::to_string(r.cropTop) + ", " + std::to_string(r.cropLeft));
  }
  for (float score : {r.aestheticScore, r.negativeAestheticScore}) {
    if (!std::isfinite(score) || score < 0 || score > 100) fail("aestheticScore and negativeAestheticScore must be between 0 and 100");
  }
  if (r.refiner) {
    if (r.hires) fail("refiner cannot be combined with hires");
    if (!std::isfinite(r.refiner->switchAt) || r.refiner->switchAt <= 0 || r.refiner->switchAt > 1) {
      fail("refiner.switchAt must be above 0 and at most 1");
    }
  }
  checkControlUnits(r);
  if (r.vaeDecoder != "vae" && r.vaeDecoder != "taesd") fail("vaeDecoder must be vae or taesd, got '" + r.vaeDecoder + "'");
  if (r.vaeDecoder == "taesd" && !taesd_) fail("vaeDecoder is taesd but the model was loaded without a TAESD (LoadParams::taesd)");
  if (r.tiling && r.vaeTiling) fail("tiling and vaeTiling cannot be combined: the VAE's tiles do not wrap around");
  if (r.hires) {
    const HiresFix& h = *r.hires;
    if (r.mode != "txt2img") fail("hires applies to txt2img only, got mode '" + r.mode + "'");
    checkSize("hires width and height", h.width, h.height);
    checkSize("hires upscaleWidth and upscaleHeight", h.upscaleWidth, h.upscaleHeight);
    if (h.upscaleWidth < h.width || h.upscaleHeight < h.height) fail("hires: the upscaled size must cover width x height");
    if (!isHiresUpscaler(h.upscaler)) fail("hires.upscaler: unknown name '" + h.upscaler + "'");
    if (h.steps < 0 || h.steps > 1000) fail("hires.steps must be between 0 and 1000, got " + std::to_string(h.steps));
    if (!std::isfinite(h.denoisingStrength) || h.denoisingStrength <= 0 || h.denoisingStrength > 1) {
      fail("hires.denoisingStrength must be above 0 and at most 1");
    }
  }
}

std::vector<float> DiffusionModel::denoise(const std::vector<float>& x, float sigma, int64_t width, int64_t height,
                                           const TextConditions& text, const std::pair<std::vector<float>, std::vector<float>>& added,
                                           float cfgScale, const std::vector<float>& concat, double stepFraction, StepCache* cache, int step,
                                           int slot) {
  // k-diffusion's CompVis wrappers (sigma_data = 1): eps models predict the noise, v models the velocity.
  const float s2 = sigma * sigma + 1.0f;
  const float cIn = 1.0f / std::sqrt(s2);
  const float cSkip = vPrediction_ ? 1.0f / s2 : 1.0f;
  const float cOut = vPrediction_ ? -sigma / std::sqrt(s2) : -sigma;
  const float t = schedule_.sigmaToT(sigma);
  std::vector<float> input(x.size() + concat.size());
  for (size_t i = 0; i < x.size(); i++) input[i] = x[i] * cIn;
  std::copy(concat.begin(), concat.end(), input.begin() + x.size());
  // ControlNets and the step cache read the latent alone, not an inpainting model's extra channels.
  const bool controlled = text.condControls || text.uncondControls;
  const std::vector<float> latent =
      controlled || cache ? std::vector<float>(input.begin(), input.begin() + x.size()) : std::vector<float>();
  // A pass the step cache foresees runs neither the UNet nor its ControlNets.
  auto pass = [&](int which, const std::vector<float>& context, int64_t tokens, const std::vector<float>& extra,
                  const std::vector<ControlRun>* controls) {
    std::vector<float> out;
    if (cache && cache->reuse(slot + which, latent, sigma, step, out)) return out;
    out = unet_->forward(input, width, height, t, context, tokens, extra,
                         controlResiduals(controls, stepFraction, which == 1, latent, width, height, t, context, tokens, extra));
    if (cache) cache->remember(slot + which, latent, out, step);
    return out;
  };
  std::vector<float> out = pass(0, text.cond, text.condTokens, added.first, text.condControls);
  // At cfg 1 there is no negative pass (encodeText leaves it empty): the output is the conditional one.
  if (!text.uncond.empty()) {
    std::vector<float> outUncond = pass(1, text.uncond, text.uncondTokens, added.second, text.uncondControls);
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

LatentPreview DiffusionModel::previewOf(const std::vector<float>& latent, int64_t width, int64_t height, bool circular) {
  if (!taesd_) return previewOfLatent(latent, width, height, info_.family.rfind("sdxl", 0) == 0 ? LatentColours::Sdxl : LatentColours::Sd1);
  LatentPreview preview;
  preview.width = static_cast<int>(width) * info_.vaeScale;
  preview.height = static_cast<int>(height) * info_.vaeScale;
  preview.rgb = taesd_->decodeToRgb(latent, width, height, circular);
  return preview;
}

TextConditions DiffusionModel::encodeText(const Conditioning& prompt, const Conditioning& negative, const Request& r) {
  TextConditions text;
  EncodedPrompt cond = encodePrompt(prompt, r.clipSkip);
  text.cond = std::move(cond.hidden);
  text.condTokens = cond.tokens;
  text.condPooled = std::move(cond.pooled);
  // cfg 1 makes the unconditional pass cancel out, so it is skipped.
  if (r.cfgScale != 1.0f) {
    EncodedPrompt uncond = encodePrompt(negative, r.clipSkip);
    // SDXL with no negative prompt (its ids are just BOS, EOS): the reference engine, as SGM,
    // guides against zero cross-attention states (the pooled vector is kept).
    if (clip2_ && negative.tokens.size() == 77 && negative.tokens[1] == 49407) {
      std::fill(uncond.hidden.begin(), uncond.hidden.end(), 0.0f);
    }
    text.uncond = std::move(uncond.hidden);
    text.uncondTokens = uncond.tokens;
    text.uncondPooled = std::move(uncond.pooled);
  }
  return text;
}

std::vector<float> DiffusionModel::samplePass(const RunContext& run, std::vector<float> x, const std::vector<float>& sigmas,
                                              const std::vector<const TextConditions*>& texts, const ImageStart& start, int64_t w, int64_t h,
                                              Rng& rng, const ImageProgress& progress, const RefinerPass* refiner) {
  const Request& r = run.request;
  // The preview shows the model's latest estimate of the clean image (the denoiser's x0 from the
  // step's last model call), not x: x carries the remaining noise, which at early steps hides
  // the picture completely, while x0 shows the composition from the first steps on.
  std::vector<float> latestDenoised;
  const bool previews = r.previewEvery > 0 && static_cast<bool>(run.callbacks.onProgress);
  SamplerHooks hooks;
  hooks.aborted = run.aborted;
  int stepsDone = 0;
  hooks.onStep = [&](int step, int steps) {
    stepsDone = step;
    if (!run.callbacks.onProgress) return;
    Progress p;
    p.step = progress.stepsBefore + step;
    p.steps = progress.totalSteps;
    p.pass = progress.pass;
    p.passStep = step;
    p.passSteps = steps;
    p.image = progress.image;
    p.images = r.count;
    if (previews && isPreviewStep(p.step, p.steps, r.previewEvery)) p.preview = previewOf(latestDenoised, w, h, r.tiling);
    p.elapsedMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - run.started).count();
    run.callbacks.onProgress(p);
  };
  std::vector<std::pair<std::vector<float>, std::vector<float>>> added;
  for (const TextConditions* text : texts) added.push_back(addedConditioning(*text, r, w, h));
  std::pair<std::vector<float>, std::vector<float>> refinerAdded;
  if (refiner) refinerAdded = refiner->model.addedConditioning(refiner->text, r, w, h);
  // Each prompt of the pass has its own two cache slots; the refiner's prompt the two after them.
  StepCache cache = StepCache::forUnet(r.cache, sigmas);
  const int refinerSlot = 2 * static_cast<int>(texts.size());
  const int passSteps = static_cast<int>(sigmas.size()) - 1;
  const Denoiser model = [&](const std::vector<float>& latent, float sigma, int step) {
    // A step's model calls (two for heun and its kin) share its place in the sampling.
    const double fraction = (std::abs(step) - 1) / static_cast<double>(passSteps);
    // The refiner takes over the latent (and the sampler's history) at its switch step; it has no
    // inpainting channels, so it sees the latent alone.
    std::vector<float> denoised =
        refiner && stepsDone >= refiner->switchStep
            ? refiner->model.denoise(latent, sigma, w, h, refiner->text, refinerAdded, r.cfgScale, {}, 0, &cache, step, refinerSlot)
            : denoise(latent, sigma, w, h, *texts[0], added[0], r.cfgScale, start.concat, fraction, &cache, step, 0);
    for (size_t k = 1; k < texts.size(); k++) {
      const std::vector<float> more =
          denoise(latent, sigma, w, h, *texts[k], added[k], r.cfgScale, start.concat, fraction, &cache, step, 2 * static_cast<int>(k));
      for (size_t j = 0; j < denoised.size(); j++) denoised[j] += more[j];
    }
    if (texts.size() > 1) {
      for (float& v : denoised) v /= static_cast<float>(texts.size());
    }
    // Inpainting: the kept region's prediction is the input's latent, so at every step the
    // sampler re-imposes it at the current noise level.
    if (!start.latentMask.empty()) blendKept(denoised, start.initLatent, start.latentMask);
    if (previews) latestDenoised = denoised;
    return denoised;
  };
  x = sample(r.sampler, model, std::move(x), sigmas, rng, schedule_, hooks);
  unet_->releaseBuffers();
  for (const TextConditions* text : texts) {
    for (const auto* controls : {text->condControls, text->uncondControls}) {
      if (controls == nullptr) continue;
      for (const ControlRun& control : *controls) control.net->releaseBuffers();
    }
  }
  if (refiner) refiner->model.unet_->releaseBuffers();
  if (taesd_) taesd_->releaseBuffers();
  return x;
}

std::optional<RefinerPass> DiffusionModel::prepareRefiner(const Request& r, int passSteps) {
  if (!r.refiner) return std::nullopt;
  const RefinerHandoff& handoff = *r.refiner;
  auto* partner = dynamic_cast<DiffusionModel*>(handoff.model);
  if (!partner) throw Error(ErrorCode::InvalidArgument, "refiner.model must be a loaded model");
  if (partner == this) throw Error(ErrorCode::InvalidArgument, "refiner.model must be another model than the one generating");
  const std::string& family = partner->info_.family;
  if (family != "sdxl" && family != "sdxl-refiner") {
    throw Error(ErrorCode::InvalidArgument, "refiner.model must be an SDXL or SDXL refiner model, got family '" + family + "'");
  }
  if (partner->vae_->config().latentChannels != vae_->config().latentChannels || partner->info_.vaeScale != info_.vaeScale) {
    throw Error(ErrorCode::InvalidArgument, "refiner.model must have the same latent channels and scale as the model");
  }
  if (partner->unet_->config().inChannels != vae_->config().latentChannels) {
    throw Error(ErrorCode::InvalidArgument, "refiner.model must not be an inpainting model");
  }
  if (!partner->staleWeights_.empty()) throw Error(ErrorCode::ModelIo, "refiner.model: " + partner->staleWeights_);
  // A1111: the base runs round(steps * switchAt) steps of the pass.
  const int switchStep = static_cast<int>(std::lround(passSteps * static_cast<double>(handoff.switchAt)));
  TextConditions text = partner->encodeText(handoff.prompt, handoff.negative, r);
  partner->clip_->releaseBuffers();
  return RefinerPass{*partner, std::move(text), switchStep};
}

std::vector<Image> DiffusionModel::generate(const Request& r, const Callbacks& callbacks) {
  return asEngineError([&]() {
    checkRequest(r);
    if (!staleWeights_.empty()) throw Error(ErrorCode::ModelIo, staleWeights_);
    const RunContext run{r, callbacks, callbacks.aborted ? callbacks.aborted : [] { return false; },
                         std::chrono::steady_clock::now()};
    AbortScope abortScope(*backend_, run.aborted);
    CircularScope circularScope(*unet_, *vae_, r.tiling);
    if (run.aborted()) throw Error(ErrorCode::Aborted, "generation aborted");

    if (keepsInput(r)) {
      // Nothing is to be repainted: every image is the input as it was.
      std::vector<Image> copies;
      for (int i = 0; i < r.count; i++) {
        copies.push_back({r.width, r.height, r.image, imageSeed(r.seed, i), imageSeed(r.subseed, i)});
      }
      return copies;
    }
    const LoraMerge loras(info_.family, file_, *weights_, r.loras, threads_, staleWeights_);
    TextConditions text = encodeText(r.prompt, r.negative, r);
    TextConditions hiresText;
    if (r.hires) {
      const Conditioning& prompt = r.hires->prompt.tokens.empty() ? r.prompt : r.hires->prompt;
      const Conditioning& negative = r.hires->negative.tokens.empty() ? r.negative : r.hires->negative;
      hiresText = sameText(prompt, r.prompt) && sameText(negative, r.negative) ? text : encodeText(prompt, negative, r);
    }
    // Each phase's compute buffer is freed before the next phase allocates its own, so peak memory
    // is the weights plus the largest phase (the VAE decode at large sizes), not their sum.
    clip_->releaseBuffers();
    const bool fromImage = r.mode != "txt2img";
    const std::vector<float> sigmas = startSigmas(makeSigmas(schedule_, r.scheduler, r.steps), r.steps, r.strength, fromImage);
    const int64_t w = r.width / info_.vaeScale, h = r.height / info_.vaeScale;
    const int64_t channels = vae_->config().latentChannels;
    const ImageStart start = prepareImageStart(r);
    HiresPlan hires;
    ImageStart hiresStart;
    if (r.hires) {
      hires = planHires(*r.hires, info_.vaeScale, r.steps, r.scheduler, schedule_);
      hires.aborted = run.aborted;
      hiresStart = textStart(hires.width * hires.height, channels, isInpaintModel());
    }
    const int firstSteps = static_cast<int>(sigmas.size()) - 1;
    const std::optional<RefinerPass> refiner = prepareRefiner(r, firstSteps);
    const std::vector<ControlRun> controls = prepareControls(r.controlNets, r.width, r.height);
    const std::vector<ControlRun> secondPassControls = hiresControls(controls, r);
    // The same units steer both passes of classifier-free guidance (their mode may leave one out).
    if (!controls.empty()) text.condControls = text.uncondControls = &controls;
    if (!secondPassControls.empty()) hiresText.condControls = hiresText.uncondControls = &secondPassControls;
    std::optional<AbortScope> refinerAbort;
    std::optional<CircularScope> refinerCircular;
    if (refiner) {
      refinerAbort.emplace(*refiner->model.backend_, run.aborted);
      refinerCircular.emplace(*refiner->model.unet_, *refiner->model.vae_, r.tiling);
    }
    const int totalSteps = firstSteps + (r.hires ? static_cast<int>(hires.sigmas.size()) - 1 : 0);

    std::vector<Image> images;
    for (int i = 0; i < r.count; i++) {
      NoiseSeeds seeds;
      seeds.seed = imageSeed(r.seed, i);
      seeds.subseed = imageSeed(r.subseed, i);
      seeds.subseedStrength = r.subseedStrength;
      seeds.resizeWidth = r.seedResizeWidth / info_.vaeScale;
      seeds.resizeHeight = r.seedResizeHeight / info_.vaeScale;
      // Like stable-diffusion.cpp (the reference images) and A1111: one generator per image and
      // pass, seeded with the image's seed, draws the initial noise and then every ancestral step's.
      std::unique_ptr<Rng> rng = makeRng(r.rng);
      rng->seed(seeds.seed);
      // A1111 draws the masked region's noise from the first batch's seeds only (a known flaw it
      // notes); here every image takes its own seed's.
      ImageStart maskedStart;
      const ImageStart& imageStart =
          start.maskedStartMask.empty() ? start : (maskedStart = withMaskedStart(start, r, seeds.seed));
      std::vector<float> x = initialNoise(*rng, r.rng, seeds, channels, w, h);
      for (size_t j = 0; j < x.size(); j++) x[j] = (fromImage ? imageStart.initLatent[j] : 0.0f) + x[j] * sigmas[0];
      x = samplePass(run, std::move(x), sigmas, {&text}, imageStart, w, h, *rng, {i, totalSteps, 0, 0},
                     refiner ? &*refiner : nullptr);

      Image image;
      image.width = r.width;
      image.height = r.height;
      if (r.hires) {
        hiresStart.initLatent = upscaleForHires(x, w, h, hires, r.vaeTiling, seeds.seed);
        rng->seed(seeds.seed);
        x = initialNoise(*rng, r.rng, seeds, channels, hires.width, hires.height);
        for (size_t j = 0; j < x.size(); j++) x[j] = hiresStart.initLatent[j] + x[j] * hires.sigmas[0];
        x = samplePass(run, std::move(x), hires.sigmas, {&hiresText}, hiresStart, hires.width, hires.height, *rng,
                       {i, totalSteps, 1, firstSteps});
        image.width = static_cast<int>(hires.width) * info_.vaeScale;
        image.height = static_cast<int>(hires.height) * info_.vaeScale;
      }
      image.seed = seeds.seed;
      image.subseed = seeds.subseed;
      const int64_t latentWidth = image.width / info_.vaeScale, latentHeight = image.height / info_.vaeScale;
      if (r.vaeDecoder == "taesd") {
        image.rgb = taesd_->decodeToRgb(x, latentWidth, latentHeight, r.tiling);
        taesd_->releaseBuffers();
      } else {
        image.rgb = decodeToRgb(x, latentWidth, latentHeight, r.vaeTiling);
        vae_->releaseBuffers();
      }
      if (r.mode == "inpaint") compositeKept(image.rgb, r.image, r.mask);
      images.push_back(std::move(image));
    }
    return images;
  });
}

}  // namespace sdnode

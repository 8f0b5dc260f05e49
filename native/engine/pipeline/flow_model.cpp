#include "flow_model.h"

#include <chrono>
#include <cmath>

#include "image_start.h"
#include "lora.h"
#include "noise.h"
#include "pixels.h"
#include "rng.h"
#include "run_scopes.h"
#include "samplers.h"
#include "system_info.h"
#include "vae_tiles.h"
#include "weight_types.h"

namespace sdnode {

namespace {

constexpr int32_t kT5End = 1;
constexpr int32_t kT5Pad = 0;
// FLUX.1 reads T5's states in runs of 256 tokens (the end token and padding included).
constexpr size_t kFluxT5Chunk = 256;
// Chroma reads T5's states in runs of 512, masking the padding but its first token.
constexpr size_t kChromaT5Chunk = 512;
// SD3 reads T5's and the CLIP encoders' states in runs of 77 tokens.
constexpr size_t kSd3Chunk = 77;
// The 16-channel VAE's latent normalisation for each family.
constexpr float kSd3LatentScale = 1.5305f;
constexpr float kSd3LatentShift = 0.0609f;

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

uint64_t imageSeed(uint64_t base, int i) { return (base + static_cast<uint64_t>(i)) & 0xffffffffull; }

}  // namespace

void checkFlowSampling(const std::string& sampler, const std::string& scheduler) {
  auto fail = [](const std::string& what) { throw Error(ErrorCode::InvalidArgument, what); };
  const std::vector<std::string>& samplers = flowSamplerNames();
  if (std::find(samplers.begin(), samplers.end(), sampler) == samplers.end()) {
    fail("sampler '" + sampler + "' is not supported for flow models; use one of " + joined(samplers));
  }
  const std::vector<std::string>& schedulers = flowSchedulerNames();
  if (std::find(schedulers.begin(), schedulers.end(), scheduler) == schedulers.end()) {
    fail("scheduler '" + scheduler + "' is not supported for flow models; use one of " + joined(schedulers));
  }
}

void weighStates(std::vector<float>& states, const std::vector<float>& weights, int64_t width) {
  bool plain = true;
  for (float w : weights) plain = plain && w == 1.0f;
  if (plain) return;
  double before = 0, after = 0;
  for (float v : states) before += v;
  for (size_t t = 0; t < weights.size(); t++) {
    for (int64_t c = 0; c < width; c++) states[t * width + c] *= weights[t];
  }
  for (float v : states) after += v;
  if (after != 0) {
    const float ratio = static_cast<float>(before / after);
    for (float& v : states) v *= ratio;
  }
}

FlowModel::FlowModel(const LoadParams& params) : params_(params) {
  const ggml_type weightType = parseWeightType(params.weightType);
  const int threads = params.threads > 0 ? params.threads : physicalCores();
  if (params.lowMemory && params.keepTextEncoders) {
    throw Error(ErrorCode::InvalidArgument, "lowMemory frees the text encoders whenever the transformer runs; it cannot keep them (keepTextEncoders)");
  }
  backend_ = std::make_unique<Backend>(params.backend, threads);
  diffusion_ = loadComponent(params.diffusionModel, ComponentRole::DiffusionModel, weightType, threads, backend_->handle());
  if (diffusion_->weights->has("cap_embedder.1.weight")) {
    loadZImage(params, weightType, threads);
    return;
  }
  const bool sd3 = diffusion_->weights->has("x_embedder.proj.weight");
  const bool chroma = diffusion_->weights->has("distilled_guidance_layer.in_proj.weight");
  const std::string kind = sd3 ? "SD3" : chroma ? "Chroma" : "FLUX.1";
  if (!params.llm.empty()) throw Error(ErrorCode::InvalidArgument, kind + " models take no language-model text encoder (--llm)");
  sd3_ = sd3;
  if (sd3) mmditConfig_ = readMmditConfig(*diffusion_->weights);
  else fluxConfig_ = readFluxConfig(*diffusion_->weights);
  buildTransformer();
  noteComponent("diffusionModel", *diffusion_);
  // lowMemory: the transformer comes back once the text encoders have done the first prompt.
  if (params.lowMemory) releaseTransformer();
  auto load = [&](const std::string& path, ComponentRole role, const char* what) {
    if (path.empty()) throw Error(ErrorCode::InvalidArgument, "this " + kind + " model needs " + what + ": give its file with " + componentFlag(role));
    return loadComponent(path, role, weightType, threads, backend_->handle());
  };
  // Chroma reads T5 alone.
  if (!chroma) clipFile_ = load(params.clipL, ComponentRole::ClipL, "the CLIP-L text encoder (clip_l.safetensors)");
  else if (!params.clipL.empty()) throw Error(ErrorCode::InvalidArgument, "Chroma models take no CLIP-L text encoder (--clip-l)");
  if (sd3) {
    clipGFile_ = load(params.clipG, ComponentRole::ClipG, "the CLIP-G text encoder (clip_g.safetensors)");
  } else if (!params.clipG.empty()) {
    throw Error(ErrorCode::InvalidArgument, kind + " models take no CLIP-G text encoder (--clip-g)");
  }
  t5File_ = load(params.t5xxl, ComponentRole::T5, "the T5-XXL text encoder (t5xxl_fp16.safetensors or a GGUF T5)");
  vaeFile_ = load(params.vae, ComponentRole::Vae, sd3 ? "the SD3 VAE (an SD3 checkpoint holds it: give the checkpoint as --vae too)" : "FLUX.1's VAE (ae.safetensors)");

  auto mismatch = [](const std::string& what) { throw Error(ErrorCode::ModelFormat, what); };
  // As the reference engine runs them: the penultimate layer without the final norm for SD3's
  // states, and CLIP-L's pooled vector unprojected (its text_projection, if the file has one, unused).
  ClipConfig clipConfig = chroma ? ClipConfig() : readClipConfig(*clipFile_->weights, clipFile_->file.metadata, "cond_stage_model.");
  if (chroma) clipConfig.width = 0;
  clipConfig.projection = 0;
  clipConfig.defaultClipSkip = 2;
  clipConfig.finalNormOnHidden = false;
  const T5Config t5Config = readT5Config(*t5File_->weights, "");
  VaeConfig vaeConfig = readVaeConfig(*vaeFile_->weights);
  vaeConfig.latentScale = sd3 ? kSd3LatentScale : kFluxLatentScale;
  vaeConfig.latentShift = sd3 ? kSd3LatentShift : kFluxLatentShift;
  int64_t latentChannels = 0, contextDim = 0, pooledDim = 0, pooledGiven = clipConfig.width;
  if (sd3) {
    const MmditConfig& mc = mmditConfig_;
    ClipConfig g = readClipConfig(*clipGFile_->weights, clipGFile_->file.metadata, "cond_stage_model.");
    g.quickGelu = false;  // OpenCLIP's bigG in Hugging Face's names: still GELU
    g.padAfterEnd = 0;
    g.defaultClipSkip = 2;
    g.finalNormOnHidden = false;
    if (g.projection <= 0) mismatch(params.clipG + ": the CLIP-G text encoder has no text_projection for its pooled vector");
    if (clipConfig.width + g.width > t5Config.width) {
      mismatch("the CLIP states (" + std::to_string(clipConfig.width + g.width) + " wide) do not fit T5's width " + std::to_string(t5Config.width));
    }
    pooledGiven += g.projection;
    clipG_ = std::make_unique<ClipTextEncoder>(g, *clipGFile_->weights, *backend_);
    latentChannels = mc.latentChannels, contextDim = mc.contextDim, pooledDim = mc.pooledDim;
    schedule_ = {FlowShiftKind::Snr, 3.0f};
    info_.family = mc.qkNorm ? "sd3.5" : "sd3";
    info_.textEncoders = {"clipL", "clipG", "t5xxl"};
  } else {
    const FluxConfig& fc = fluxConfig_;
    latentChannels = fc.latentChannels, contextDim = fc.contextDim, pooledDim = fc.pooledDim;
    // The shift (mu) of the timestep-based schedules, as the reference engine sets it: 1.15 for FLUX.1
    // dev (guidance_in), 1.0 for schnell and Chroma. The `flux` schedule takes its mu from the size.
    schedule_ = {FlowShiftKind::Flux, fc.guidanceEmbed ? 1.15f : 1.0f};
    info_.family = fc.chroma ? "chroma" : fc.guidanceEmbed ? "flux-dev" : "flux-schnell";
    info_.textEncoders = fc.chroma ? std::vector<std::string>{"t5xxl"} : std::vector<std::string>{"clipL", "t5xxl"};
  }
  if (contextDim != t5Config.width) {
    mismatch(params.diffusionModel + ": the transformer takes " + std::to_string(contextDim) + "-wide text states but the T5 encoder (" +
             params.t5xxl + ") gives " + std::to_string(t5Config.width));
  }
  if (pooledDim != pooledGiven) {
    mismatch(params.diffusionModel + ": the transformer takes a " + std::to_string(pooledDim) + "-wide pooled vector but the CLIP encoders give " +
             std::to_string(pooledGiven));
  }
  if (latentChannels != vaeConfig.latentChannels) {
    mismatch(params.diffusionModel + ": the transformer works on " + std::to_string(latentChannels) + "-channel latents but the VAE (" +
             params.vae + ") has " + std::to_string(vaeConfig.latentChannels));
  }
  clipConfig_ = clipConfig;
  t5Config_ = t5Config;
  if (clipG_) clipGConfig_ = clipG_->config();
  if (clipFile_) clip_ = std::make_unique<ClipTextEncoder>(clipConfig, *clipFile_->weights, *backend_);
  t5_ = std::make_unique<T5Encoder>(t5Config, *t5File_->weights, *backend_);
  vae_ = std::make_unique<Vae>(vaeConfig, *vaeFile_->weights, *backend_);
  if (clip_) clip_->validate();
  if (clipG_) clipG_->validate();
  t5_->validate();
  vae_->validate();
  loadTaesd(params, threads, kind, sd3 ? "taesd3" : "taef1");
  noteModel(latentChannels, contextDim, vaeConfig.scale());
}

void FlowModel::loadTaesd(const LoadParams& params, int threads, const std::string& kind, const char* which) {
  if (params.taesd.empty()) return;
  // TAEF1 and TAESD3 decode the transformer's latents as they are (scaled and shifted).
  taesd_ = std::make_unique<Taesd>(params.taesd, *backend_, threads);
  const TaesdConfig& tc = taesd_->config();
  const VaeConfig& vc = vae_->config();
  if (tc.latentChannels != vc.latentChannels || tc.scale() != vc.scale()) {
    throw Error(ErrorCode::ModelUnsupported, params.taesd + ": this TAESD decodes " + std::to_string(tc.latentChannels) +
                                                 "-channel latents; " + kind + " needs a 16-channel one (" + which + ")");
  }
}

void FlowModel::noteModel(int64_t latentChannels, int64_t contextDim, int vaeScale) {
  info_.prediction = "flow";
  info_.unetInChannels = static_cast<int>(latentChannels);
  info_.contextDim = static_cast<int>(contextDim);
  info_.padToken = 49407;
  info_.vaeScale = vaeScale;
  info_.backend = backend_->name();
  info_.taesd = taesd_ != nullptr;
  const std::pair<const char*, Component*> parts[] = {
      {"clipL", clipFile_.get()}, {"clipG", clipGFile_.get()}, {"t5xxl", t5File_.get()}, {"llm", llmFile_.get()}, {"vae", vaeFile_.get()}};
  for (const auto& [name, part] : parts) {
    if (part) noteComponent(name, *part);
  }
  // Loaded (and checked) above; the first encoding uses them and then frees them unless kept.
}


void FlowModel::noteComponent(const char* role, const Component& part) {
  if (std::string(role) == "diffusionModel") info_.format = part.file.format;
  info_.componentFiles[role] = part.file.path;
  info_.fileBytes += part.file.fileSize;
  info_.weightBytes += part.weights->bytes();
  for (const auto& [type, count] : part.weights->storedTypes()) info_.storedTypes[type] += count;
  for (const std::string& unused : part.weights->unused()) {
    if (unused.find("position_ids") == std::string::npos && unused.find("logit_scale") == std::string::npos &&
        unused.find("text_projection") == std::string::npos && unused != "lm_head.weight") {
      info_.unusedTensors.push_back(unused);
    }
  }
}

void FlowModel::buildTransformer() {
  if (zImage_) {
    zImageTransformer_ = std::make_unique<ZImageTransformer>(zImageConfig_, *diffusion_->weights, *backend_);
    zImageTransformer_->validate();
  } else if (sd3_) {
    mmdit_ = std::make_unique<MmditTransformer>(mmditConfig_, *diffusion_->weights, *backend_);
    mmdit_->validate();
  } else {
    flux_ = std::make_unique<FluxTransformer>(fluxConfig_, *diffusion_->weights, *backend_);
    flux_->validate();
  }
}

void FlowModel::loadTransformer() {
  if (diffusion_) return;
  const int threads = params_.threads > 0 ? params_.threads : physicalCores();
  diffusion_ = loadComponent(params_.diffusionModel, ComponentRole::DiffusionModel, parseWeightType(params_.weightType), threads,
                             backend_->handle());
  buildTransformer();
  // Weights straight from the file: whatever a LoRA left behind is gone.
  staleWeights_.clear();
}

void FlowModel::releaseTransformer() {
  flux_.reset();
  mmdit_.reset();
  zImageTransformer_.reset();
  diffusion_.reset();
}

void FlowModel::loadTextEncoders() {
  if (textEncodersLoaded()) return;
  if (params_.lowMemory) releaseTransformer();
  const ggml_type weightType = parseWeightType(params_.weightType);
  const int threads = params_.threads > 0 ? params_.threads : physicalCores();
  if (zImage_) {
    llmFile_ = loadComponent(params_.llm, ComponentRole::Llm, weightType, threads, backend_->handle());
    llm_ = std::make_unique<LlmEncoder>(llmConfig_, *llmFile_->weights, *backend_);
    return;
  }
  if (!params_.clipL.empty() && clipConfig_.width > 0) {
    clipFile_ = loadComponent(params_.clipL, ComponentRole::ClipL, weightType, threads, backend_->handle());
    clip_ = std::make_unique<ClipTextEncoder>(clipConfig_, *clipFile_->weights, *backend_);
  }
  if (sd3_) {
    clipGFile_ = loadComponent(params_.clipG, ComponentRole::ClipG, weightType, threads, backend_->handle());
    clipG_ = std::make_unique<ClipTextEncoder>(clipGConfig_, *clipGFile_->weights, *backend_);
  }
  t5File_ = loadComponent(params_.t5xxl, ComponentRole::T5, weightType, threads, backend_->handle());
  t5_ = std::make_unique<T5Encoder>(t5Config_, *t5File_->weights, *backend_);
}

void FlowModel::releaseTextEncoders() {
  clip_.reset();
  clipG_.reset();
  t5_.reset();
  llm_.reset();
  clipFile_.reset();
  clipGFile_.reset();
  t5File_.reset();
  llmFile_.reset();
}

void FlowModel::doneWithTextEncoders() {
  if (!params_.keepTextEncoders) {
    releaseTextEncoders();
    return;
  }
  // Kept loaded: only their compute buffers go.
  if (clip_) clip_->releaseBuffers();
  if (clipG_) clipG_->releaseBuffers();
  if (t5_) t5_->releaseBuffers();
  if (llm_) llm_->releaseBuffers();
}

FlowText FlowModel::encodeCached(const Conditioning& clipTokens, const Conditioning& clipGTokens, const Conditioning& t5Tokens,
                                 const Conditioning& llmTokens) {
  constexpr size_t kCachedPrompts = 8;
  std::string key;
  for (const Conditioning* c : {&clipTokens, &clipGTokens, &t5Tokens, &llmTokens}) {
    key.append(reinterpret_cast<const char*>(c->tokens.data()), c->tokens.size() * sizeof(int32_t));
    key.append(reinterpret_cast<const char*>(c->weights.data()), c->weights.size() * sizeof(float));
    key += '|' + std::to_string(c->tokens.size()) + '|';
  }
  for (auto it = promptCache_.begin(); it != promptCache_.end(); ++it) {
    if (it->first == key) {
      promptCache_.splice(promptCache_.begin(), promptCache_, it);
      return it->second;
    }
  }
  loadTextEncoders();
  FlowText text = zImage_ ? encodeZImagePrompt(llmTokens) : encodePrompt(clipTokens, clipGTokens, t5Tokens);
  promptCache_.emplace_front(std::move(key), text);
  if (promptCache_.size() > kCachedPrompts) promptCache_.pop_back();
  return text;
}

void FlowModel::checkRequest(const Request& r) const {
  auto fail = [](const std::string& what) { throw Error(ErrorCode::InvalidArgument, what); };
  // The transformer takes 2x2 patches of latent cells: sizes are multiples of 16 pixels.
  const int step = 2 * info_.vaeScale;
  if (r.width < step || r.height < step || r.width % step != 0 || r.height % step != 0 || r.width > 4096 || r.height > 4096) {
    fail("width and height must be multiples of " + std::to_string(step) + " between " + std::to_string(step) + " and 4096 for " +
         info_.family + ", got " + std::to_string(r.width) + "x" + std::to_string(r.height));
  }
  if (r.steps < 1 || r.steps > 1000) fail("steps must be between 1 and 1000, got " + std::to_string(r.steps));
  if (r.count < 1 || r.count > 64) fail("count must be between 1 and 64, got " + std::to_string(r.count));
  if (!std::isfinite(r.cfgScale) || r.cfgScale < 0) fail("cfgScale must be a finite number >= 0");
  if (!std::isfinite(r.guidance) || r.guidance < 0 || r.guidance > 100) fail("guidance must be between 0 and 100");
  if (!std::isfinite(r.flowShift) || r.flowShift < 0 || r.flowShift > 100) fail("flowShift must be between 0 (the family's) and 100");
  if (!r.controlNets.empty()) fail("controlNets apply to SD 1.x, SD 2.x and SDXL models, not to " + info_.family);
  if (r.mode == "inpaint") fail("mode inpaint is not supported for " + info_.family + " models yet (txt2img and img2img)");
  if (r.mode != "txt2img" && r.mode != "img2img") fail("mode must be txt2img or img2img, got '" + r.mode + "'");
  const size_t pixels = static_cast<size_t>(r.width) * r.height;
  if (r.mode == "img2img" && r.image.size() != pixels * 3) {
    fail("image must hold width*height*3 = " + std::to_string(pixels * 3) + " RGB bytes, got " + std::to_string(r.image.size()));
  }
  if (!std::isfinite(r.strength) || r.strength < 0 || r.strength > 1) fail("strength must be between 0 and 1");
  if (zImage_ && !r.loras.empty()) fail("LoRAs are not supported for " + info_.family + " models yet");
  if (!r.referenceImages.empty() && (sd3_ || zImage_)) fail("referenceImages are for FLUX.1 Kontext models; " + info_.family + " takes none");
  if (r.referenceImages.size() > 4) fail("at most 4 referenceImages, got " + std::to_string(r.referenceImages.size()));
  for (const ReferenceImage& ref : r.referenceImages) {
    if (ref.width < step || ref.height < step || ref.width % step != 0 || ref.height % step != 0 || ref.width > 2048 || ref.height > 2048 ||
        ref.rgb.size() != static_cast<size_t>(ref.width) * ref.height * 3) {
      fail("each reference image must be a multiple of " + std::to_string(step) + " pixels a side, at most 2048, with width*height*3 RGB bytes");
    }
  }
  checkFlowSampling(r.sampler, r.scheduler);
  checkCacheOptions(r.cache, true);
  if (!std::isfinite(r.slgScale) || r.slgScale < 0 || r.slgScale > 100) fail("slgScale must be between 0 (off) and 100");
  if (!std::isfinite(r.slgStart) || !std::isfinite(r.slgEnd) || r.slgStart < 0 || r.slgEnd > 1 || r.slgStart > r.slgEnd) {
    fail("slgStart and slgEnd must be fractions of the schedule with 0 <= slgStart <= slgEnd <= 1");
  }
  const int blocks = zImage_ ? 0 : sd3_ ? mmditConfig_.depth : fluxConfig_.doubleBlocks + fluxConfig_.singleBlocks;
  if (zImage_ && r.slgScale != 0) fail("skip-layer guidance (slgScale) is not supported for " + info_.family + " models");
  for (int32_t layer : r.slgScale != 0 ? r.skipLayers : std::vector<int32_t>()) {
    if (layer < 0 || layer >= blocks) {
      fail("skipLayers: " + std::to_string(layer) + " is not a block of this " + info_.family + " model (0 to " + std::to_string(blocks - 1) + ")");
    }
  }
  if (r.hires) fail("hires is not supported for " + info_.family + " models yet");
  if (r.refiner) fail("a refiner takes over from SDXL models only");
  if (r.vaeDecoder != "vae" && r.vaeDecoder != "taesd") fail("vaeDecoder must be vae or taesd, got '" + r.vaeDecoder + "'");
  if (r.vaeDecoder == "taesd" && !taesd_) fail("vaeDecoder is taesd but the model was loaded without a TAESD (taef1 or taesd3)");
  if (r.previewEvery < 0) fail("previewEvery must be >= 0");
  if (r.tiling) fail("tiling is not supported for " + info_.family + " models yet");
  if (r.subseedStrength != 0 || r.seedResizeWidth != 0 || r.seedResizeHeight != 0) {
    fail("variation seeds and seed resizing are not supported for " + info_.family + " models yet");
  }
}

std::vector<float> FlowModel::encodeT5(const Conditioning& t5Tokens, size_t chunk) {
  if (t5Tokens.weights.size() != t5Tokens.tokens.size()) {
    throw Error(ErrorCode::InvalidArgument, "the T5 conditioning must have one weight per token");
  }
  std::vector<int32_t> ids = t5Tokens.tokens;
  std::vector<float> weights = t5Tokens.weights;
  ids.push_back(kT5End);
  weights.push_back(1.0f);
  const size_t total = (ids.size() + chunk - 1) / chunk * chunk;
  ids.resize(total, kT5Pad);
  weights.resize(total, 1.0f);
  const int64_t width = t5_->config().width;
  std::vector<float> states;
  for (size_t from = 0; from < total; from += chunk) {
    const auto begin = static_cast<std::ptrdiff_t>(from), end = static_cast<std::ptrdiff_t>(from + chunk);
    std::vector<float> run = t5_->encode(std::vector<int32_t>(ids.begin() + begin, ids.begin() + end));
    weighStates(run, std::vector<float>(weights.begin() + begin, weights.begin() + end), width);
    states.insert(states.end(), run.begin(), run.end());
  }
  return states;
}

FlowText FlowModel::encodePrompt(const Conditioning& clipTokens, const Conditioning& clipGTokens, const Conditioning& t5Tokens) {
  if (sd3_) return encodeSd3Prompt(clipTokens, clipGTokens.tokens.empty() ? clipTokens : clipGTokens, t5Tokens);
  return fluxConfig_.chroma ? encodeChromaPrompt(t5Tokens) : encodeFluxPrompt(clipTokens, t5Tokens);
}

FlowText FlowModel::encodeFluxPrompt(const Conditioning& clipTokens, const Conditioning& t5Tokens) {
  FlowText text;
  text.pooled = clip_->encode(clipTokens.tokens, 0, true).pooled;
  text.context = encodeT5(t5Tokens, kFluxT5Chunk);
  text.tokens = static_cast<int64_t>(text.context.size()) / t5_->config().width;
  return text;
}


FlowText FlowModel::encodeChromaPrompt(const Conditioning& t5Tokens) {
  FlowText text;
  text.context = encodeT5(t5Tokens, kChromaT5Chunk);
  text.tokens = static_cast<int64_t>(text.context.size()) / t5_->config().width;
  // Keys: the ids and the end token, and one padding token (Chroma's training attended to one).
  const size_t attended = t5Tokens.tokens.size() + 2;
  text.mask.assign(static_cast<size_t>(text.tokens), -INFINITY);
  std::fill(text.mask.begin(), text.mask.begin() + static_cast<std::ptrdiff_t>(std::min(attended, text.mask.size())), 0.0f);
  return text;
}

FlowText FlowModel::encodeSd3Prompt(const Conditioning& clipTokens, const Conditioning& clipGTokens, const Conditioning& t5Tokens) {
  // Per run of 77: the CLIP-L ‖ CLIP-G states (zero-padded to T5's width) for 77 tokens, then T5's
  // states for 77; the pooled vector is both encoders' of the first run.
  ClipOutput l = clip_->encode(clipTokens.tokens, 0, true);
  ClipOutput g = clipG_->encode(clipGTokens.tokens, 0, true);
  applyEmphasis(l.hidden, clipTokens.weights, clip_->config().width);
  applyEmphasis(g.hidden, clipGTokens.weights, clipG_->config().width);
  const std::vector<float> t5 = encodeT5(t5Tokens, kSd3Chunk);
  const int64_t W = t5_->config().width, wl = clip_->config().width, wg = clipG_->config().width, T = kSd3Chunk;
  const int64_t clipRuns = static_cast<int64_t>(std::min(clipTokens.tokens.size(), clipGTokens.tokens.size())) / T, t5Runs = static_cast<int64_t>(t5.size()) / (W * T);
  const int64_t runs = std::max(clipRuns, t5Runs);
  FlowText text;
  text.context.assign(static_cast<size_t>(runs * 2 * T * W), 0.0f);
  for (int64_t r = 0; r < runs; r++) {
    float* run = text.context.data() + r * 2 * T * W;
    for (int64_t t = 0; r < clipRuns && t < T; t++) {
      std::copy_n(l.hidden.data() + (r * T + t) * wl, wl, run + t * W);
      std::copy_n(g.hidden.data() + (r * T + t) * wg, wg, run + t * W + wl);
    }
    if (r < t5Runs) std::copy_n(t5.data() + r * T * W, T * W, run + T * W);
  }
  text.tokens = runs * 2 * T;
  text.pooled = std::move(l.pooled);
  text.pooled.insert(text.pooled.end(), g.pooled.begin(), g.pooled.end());
  return text;
}

std::vector<float> FlowModel::denoise(const std::vector<float>& x, float sigma, int64_t w, int64_t h, const FlowText& cond,
                                      const FlowText* uncond, const Request& r, const std::vector<FluxReference>& references,
                                      bool skipLayerGuidance, StepCache* cache, int step) {
  // The transformer predicts the velocity v = noise - x0, so x0 = x - sigma * v. Its input is x
  // itself, what the step cache compares from step to step.
  auto velocity = [&](int slot, const FlowText& text, const std::vector<int32_t>* skipBlocks) {
    std::vector<float> out;
    if (cache && cache->reuse(slot, x, sigma, step, out)) return out;
    if (zImageTransformer_) {
      out = zImageTransformer_->forward(x, w, h, sigma, text.context, text.tokens);
    } else if (mmdit_) {
      out = mmdit_->forward(x, w, h, sigma, MmditInputs{&text.context, text.tokens, &text.pooled, skipBlocks});
    } else {
      out = flux_->forward(x, w, h, sigma, FluxInputs{&text.context, text.tokens, &text.pooled, r.guidance, &references,
                                                      text.mask.empty() ? nullptr : &text.mask, skipBlocks});
    }
    if (cache) cache->remember(slot, x, out, step);
    return out;
  };
  std::vector<float> v = velocity(0, cond, nullptr);
  const std::vector<float> conditioned = skipLayerGuidance ? v : std::vector<float>();
  if (uncond) {
    const std::vector<float> vu = velocity(1, *uncond, nullptr);
    for (size_t i = 0; i < v.size(); i++) v[i] = vu[i] + r.cfgScale * (v[i] - vu[i]);
  }
  // A step whose passes the cache foresaw skips the guidance pass too. As in the reference, the
  // guidance pass runs as the prompt's (slot 0): the cache keeps its difference.
  if (skipLayerGuidance && !(cache && cache->stepSkipped())) {
    const std::vector<float> vs = velocity(0, cond, &r.skipLayers);
    for (size_t i = 0; i < v.size(); i++) v[i] += r.slgScale * (conditioned[i] - vs[i]);
  }
  for (size_t i = 0; i < v.size(); i++) v[i] = x[i] - sigma * v[i];
  return v;
}

std::vector<uint8_t> FlowModel::decodeToRgb(const std::vector<float>& latent, int64_t w, int64_t h, bool tiled) {
  const VaeConfig& c = vae_->config();
  std::vector<float> scaled(latent.size());
  for (size_t i = 0; i < latent.size(); i++) scaled[i] = latent[i] / c.latentScale + c.latentShift;
  std::vector<float> planes = tiled ? decodeInTiles(*vae_, scaled, w, h) : vae_->decode(scaled, w, h);
  const int64_t plane = w * h * info_.vaeScale * info_.vaeScale;
  std::vector<uint8_t> rgb(static_cast<size_t>(plane * 3));
  for (int64_t p = 0; p < plane; p++) {
    for (int c3 = 0; c3 < 3; c3++) rgb[p * 3 + c3] = signedUnitToByte(planes[c3 * plane + p]);
  }
  return rgb;
}

LatentPreview FlowModel::previewOf(const std::vector<float>& latent, int64_t w, int64_t h) {
  if (!taesd_) return previewOfLatent(latent, w, h, sd3_ ? LatentColours::Sd3 : LatentColours::Flux);
  LatentPreview preview;
  preview.width = static_cast<int>(w) * info_.vaeScale;
  preview.height = static_cast<int>(h) * info_.vaeScale;
  preview.rgb = taesd_->decodeToRgb(latent, w, h, false);
  return preview;
}

std::vector<float> FlowModel::encodeToLatent(const std::vector<uint8_t>& rgb, int width, int height, bool tiled, Rng* rng) {
  return encodeLatent(*vae_, rgbToPlanes(rgb, static_cast<int64_t>(width) * height), width, height, tiled, rng);
}

std::vector<Image> FlowModel::generate(const Request& r, const Callbacks& callbacks) {
  try {
    return generateImages(r, callbacks);
  } catch (const std::invalid_argument& e) {
    throw Error(ErrorCode::InvalidArgument, e.what());
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::OutOfMemory, "out of memory");
  }
}

std::vector<Image> FlowModel::generateImages(const Request& r, const Callbacks& callbacks) {
  checkRequest(r);
  const std::function<bool()> aborted = callbacks.aborted ? callbacks.aborted : [] { return false; };
  const auto started = std::chrono::steady_clock::now();
  AbortScope abortScope(*backend_, aborted);
  if (aborted()) throw Error(ErrorCode::Aborted, "generation aborted");
  if (!staleWeights_.empty()) throw Error(ErrorCode::ModelIo, staleWeights_);
  if (keepsInput(r)) {
    // Strength 0 changes nothing: every image is the input as it was.
    std::vector<Image> copies;
    for (int i = 0; i < r.count; i++) copies.push_back({r.width, r.height, r.image, imageSeed(r.seed, i), 0});
    return copies;
  }

  const FlowText cond = encodeCached(r.prompt, r.clipGPrompt, r.t5Prompt, r.llmPrompt);
  // cfg 1 cancels the negative pass, so FLUX.1's default (cfg 1) runs the transformer once per step.
  FlowText uncond;
  const bool guided = r.cfgScale != 1.0f;
  if (guided) uncond = encodeCached(r.negative, r.clipGNegative, r.t5Negative, r.llmNegative);
  doneWithTextEncoders();
  // With lowMemory the transformer was freed for the text encoders; it comes back now they are gone.
  loadTransformer();
  // LoRAs change the transformer for this call only (its text encoders take none yet).
  const int threads = params_.threads > 0 ? params_.threads : physicalCores();
  const LoraMerge loras(info_.family, diffusion_->file, *diffusion_->weights, r.loras, threads, staleWeights_);

  const int64_t w = r.width / info_.vaeScale, h = r.height / info_.vaeScale;
  const int64_t channels = vae_->config().latentChannels;
  FlowSchedule schedule = schedule_;
  if (r.flowShift > 0) schedule.shift = r.flowShift;
  const bool fromImage = r.mode == "img2img";
  const std::vector<float> sigmas = startSigmas(makeFlowSigmas(schedule, r.scheduler, r.steps, w * h), r.steps, r.strength, fromImage);
  // As for the UNet families: one generator seeded with the request's seed samples the input's posterior.
  std::vector<float> initLatent;
  if (fromImage) {
    std::unique_ptr<Rng> rng = makeRng(r.rng);
    rng->seed(r.seed);
    initLatent = encodeToLatent(r.image, r.width, r.height, r.vaeTiling, rng.get());
  }
  std::vector<FluxReference> references;
  for (const ReferenceImage& ref : r.referenceImages) {
    references.push_back({encodeToLatent(ref.rgb, ref.width, ref.height, r.vaeTiling, nullptr), ref.width / info_.vaeScale,
                          ref.height / info_.vaeScale});
  }
  const NoiseSchedule unusedVpSchedule;
  std::vector<Image> images;
  for (int i = 0; i < r.count; i++) {
    NoiseSeeds seeds;
    seeds.seed = imageSeed(r.seed, i);
    std::unique_ptr<Rng> rng = makeRng(r.rng);
    rng->seed(seeds.seed);
    std::vector<float> x = initialNoise(*rng, r.rng, seeds, channels, w, h);
    // Flow matching mixes rather than adds: x = (1 - sigma) x0 + sigma noise.
    for (size_t j = 0; j < x.size(); j++) x[j] = (fromImage ? (1.0f - sigmas[0]) * initLatent[j] : 0.0f) + sigmas[0] * x[j];
    SamplerHooks hooks;
    hooks.aborted = aborted;
    const bool previews = callbacks.onProgress && r.previewEvery > 0;
    std::vector<float> latestDenoised;
    hooks.onStep = [&](int step, int steps) {
      if (!callbacks.onProgress) return;
      Progress p;
      p.step = p.passStep = step;
      p.steps = p.passSteps = steps;
      p.image = i;
      p.images = r.count;
      if (previews && isPreviewStep(step, steps, r.previewEvery)) p.preview = previewOf(latestDenoised, w, h);
      p.elapsedMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
      callbacks.onProgress(p);
    };
    // Skip-layer guidance runs on the steps strictly between slgStart and slgEnd of the schedule
    // (its sigmas counted), and not on the first of a step's two model calls, as in the reference.
    const float scheduleSize = static_cast<float>(sigmas.size());
    const int slgFirst = static_cast<int>(r.slgStart * scheduleSize), slgLast = static_cast<int>(r.slgEnd * scheduleSize);
    StepCache cache = StepCache::forFlow(r.cache, schedule);
    const Denoiser model = [&](const std::vector<float>& latent, float sigma, int step) {
      const bool slg = r.slgScale != 0 && !r.skipLayers.empty() && step > slgFirst && step < slgLast;
      std::vector<float> denoised = denoise(latent, sigma, w, h, cond, guided ? &uncond : nullptr, r, references, slg, &cache, step);
      if (previews) latestDenoised = denoised;
      return denoised;
    };
    x = sample(r.sampler, model, std::move(x), sigmas, *rng, unusedVpSchedule, hooks, true);
    if (flux_) flux_->releaseBuffers();
    if (mmdit_) mmdit_->releaseBuffers();
    if (zImageTransformer_) zImageTransformer_->releaseBuffers();
    Image image;
    image.width = r.width;
    image.height = r.height;
    image.seed = seeds.seed;
    if (r.vaeDecoder == "taesd") {
      image.rgb = taesd_->decodeToRgb(x, w, h, false);
    } else {
      image.rgb = decodeToRgb(x, w, h, r.vaeTiling);
      vae_->releaseBuffers();
    }
    if (taesd_) taesd_->releaseBuffers();
    images.push_back(std::move(image));
  }
  return images;
}

}  // namespace sdnode

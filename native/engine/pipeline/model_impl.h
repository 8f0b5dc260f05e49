// A loaded checkpoint: weights (loaded once) and the components that build graphs over them.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "backend.h"
#include "checkpoint.h"
#include "clip.h"
#include "controlnet.h"
#include "hires.h"
#include "image_start.h"
#include "rng.h"
#include "schedule.h"
#include "taesd.h"
#include "sdnode.h"
#include "step_cache.h"
#include "unet.h"
#include "vae.h"
#include "weights.h"

namespace sdnode {

struct ControlRun;

// The text encoders' output for one pass: the prompt's, and the negative prompt's unless cfg is 1.
// Pooled vectors are SDXL's (empty otherwise); the size embeddings join them per pass.
struct TextConditions {
  std::vector<float> cond;
  int64_t condTokens = 0;
  std::vector<float> condPooled;
  std::vector<float> uncond;  // empty at cfg 1
  int64_t uncondTokens = 0;
  std::vector<float> uncondPooled;
  // The ControlNet units steering the prompt's UNet pass and the negative prompt's; null: none.
  const std::vector<ControlRun>* condControls = nullptr;
  const std::vector<ControlRun>* uncondControls = nullptr;
};

// One prompt's conditioning for the UNet's cross-attention, and its pooled vector (SDXL).
struct EncodedPrompt {
  std::vector<float> hidden;  // [tokens, contextDim]
  int64_t tokens = 0;
  std::vector<float> pooled;
};

// What every step of one generation call reports to and checks.
struct RunContext {
  const Request& request;
  const Callbacks& callbacks;
  std::function<bool()> aborted;
  std::chrono::steady_clock::time_point started;
};

// Where one image's progress reports stand: its passes share one step count.
struct ImageProgress {
  int image = 0;
  int totalSteps = 0;   // of every pass
  int pass = 0;         // 0: first pass, 1: hires
  int stepsBefore = 0;  // steps of the passes before this one
};

class DiffusionModel;

// A ControlNet unit of one call, ready to steer: its network and its control image's guided hint.
struct ControlRun {
  ControlNet* net = nullptr;
  std::vector<float> hint;
  const ControlUnit* unit = nullptr;
};

// Throws InvalidArgument naming the unit's field: path, image size, strength, guidance window, mode.
void checkControlUnits(const Request& request);
// The same for units of `name` whose images are width x height (hiresImage: hires's size; none without).
void checkControlUnits(const std::vector<ControlUnit>& units, int width, int height, const HiresFix* hires, const std::string& name);


// The refiner hand-off of one pass: from step switchStep (0-based) on, `model` denoises.
struct RefinerPass {
  DiffusionModel& model;
  TextConditions text;
  int switchStep = 0;
};

class DiffusionModel : public Model {
 public:
  explicit DiffusionModel(const LoadParams& params);
  const ModelInfo& info() const override { return info_; }
  std::vector<Image> generate(const Request& request, const Callbacks& callbacks) override;
  EncodedText encodeText(const TextRequest& text) override;
  LatentBatch encodeImage(const std::vector<uint8_t>& rgb, int width, int height, bool tiled, bool sampled, uint64_t seed,
                          const std::string& rng) override;
  LatentBatch sampleLatent(const SampleRequest& request, const LatentBatch& latent, const Callbacks& callbacks) override;
  std::vector<Image> decodeLatent(const LatentBatch& latent, bool tiled, const Callbacks& callbacks) override;

 private:
  Checkpoint file_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Weights> weights_;
  std::unique_ptr<ClipTextEncoder> clip_;
  std::unique_ptr<ClipTextEncoder> clip2_;  // SDXL's second encoder (OpenCLIP ViT-bigG)
  std::unique_ptr<Unet> unet_;
  std::unique_ptr<Vae> vae_;
  std::unique_ptr<Taesd> taesd_;  // when LoadParams::taesd names one
  std::vector<std::unique_ptr<ControlNet>> controlNets_;  // those of the last call with ControlNet units
  NoiseSchedule schedule_;
  ModelInfo info_;
  bool vPrediction_ = false;
  int threads_ = 1;  // for merging LoRAs
  std::string staleWeights_;  // why the weights are not the checkpoint's any more (lora.h); empty: they are
  bool refiner_ = false;  // SDXL refiner: one encoder (bigG), aesthetic-score conditioning

  void checkRequest(const Request& request) const;
  // The denoiser of k-diffusion's CompVis wrappers with classifier-free guidance.
  // added: the UNet's added conditioning for the prompt and the negative prompt (SDXL; else empty).
  // With a step cache, the UNet's passes at the sampler's model call `step` go through it, the
  // prompt's in slot `slot`, the negative prompt's in slot + 1.
  std::vector<float> denoise(const std::vector<float>& x, float sigma, int64_t width, int64_t height, const TextConditions& text,
                             const std::pair<std::vector<float>, std::vector<float>>& added, float cfgScale,
                             const std::vector<float>& concat, double stepFraction = 0, StepCache* cache = nullptr, int step = 0,
                             int slot = 0);
  // The request's ControlNet units with their networks (loaded, or kept from the last call that used
  // them; the others are freed) and guided hints.
  std::vector<ControlRun> prepareControls(const std::vector<ControlUnit>& units, int width, int height);
  // The units of `first` that steer the hires fix's second pass too, with their hires images' hints.
  std::vector<ControlRun> hiresControls(const std::vector<ControlRun>& first, const Request& request);
  // The residuals the active units of `units` add to one UNet pass (the prompt's, or the negative
  // prompt's when `uncondPass`) at `stepFraction` of the sampling, summed and scaled; empty when no
  // unit is active. latent: the UNet's input without any inpainting channels.
  UnetControl controlResiduals(const std::vector<ControlRun>* units, double stepFraction, bool uncondPass, const std::vector<float>& latent,
                               int64_t width, int64_t height, float t, const std::vector<float>& context, int64_t contextTokens,
                               const std::vector<float>& added);
  EncodedPrompt encodePrompt(const Conditioning& prompt, int clipSkip);
  // The UNet's added conditioning (prompt, negative prompt) for a pass at w x h latent cells.
  std::pair<std::vector<float>, std::vector<float>> addedConditioning(const TextConditions& text, const Request& request,
                                                                      int64_t w, int64_t h) const;
  TextConditions encodeText(const Conditioning& prompt, const Conditioning& negative, const Request& request);
  // Runs the sampler down `sigmas` from x (already noised to sigmas[0]) and returns the clean latent.
  // Several `texts` (combined conditionings): the mean of their predictions.
  std::vector<float> samplePass(const RunContext& run, std::vector<float> x, const std::vector<float>& sigmas,
                                const std::vector<const TextConditions*>& texts, const ImageStart& start, int64_t width, int64_t height, Rng& rng,
                                const ImageProgress& progress, const RefinerPass* refiner = nullptr);
  // The request's refiner as this model's partner: checked, with its text encoded.
  std::optional<RefinerPass> prepareRefiner(const Request& request, int passSteps);
  // The hires fix's ESRGAN step: image planes [3, height, width] in [-1, 1] through the model until
  // they reach the plan's size (width and height become the result's).
  std::vector<float> upscaleWithModel(const std::vector<float>& image, int64_t& width, int64_t& height, const HiresPlan& plan);
  // The hires fix's starting latent: the first pass's latent resized as the plan says and cropped.
  std::vector<float> upscaleForHires(const std::vector<float>& latent, int64_t width, int64_t height, const HiresPlan& plan,
                                     bool vaeTiling, uint64_t seed);
  // The preview of a latent in the sampler's scale: TAESD's decode when one is loaded, else the linear map.
  LatentPreview previewOf(const std::vector<float>& latent, int64_t width, int64_t height, bool circular);
  std::vector<uint8_t> decodeToRgb(const std::vector<float>& latent, int64_t width, int64_t height, bool tiled);
  // A sample of the VAE posterior of an image (planes [3, H, W] in [-1, 1]), scaled for the UNet;
  // draws its noise from `rng`.
  std::vector<float> encodeToLatent(const std::vector<float>& planes, int width, int height, bool tiled, Rng& rng);
  ImageStart prepareImageStart(const Request& request);
  bool isInpaintModel() const;
};

}  // namespace sdnode

// A flow-matching transformer model loaded from components: FLUX.1 schnell and dev (CLIP-L's pooled
// vector and T5's states condition the transformer) and SD3 / SD3.5 (CLIP-L's and CLIP-G's
// penultimate states beside T5's, their pooled vectors) and Z-Image (a Qwen3 language model's states
// alone). The transformer predicts the velocity from noise to image; the 16-channel VAE decodes.
#pragma once

#include <list>
#include <memory>
#include <string>

#include "backend.h"
#include "clip.h"
#include "components.h"
#include "flow_schedule.h"
#include "flux.h"
#include "llm.h"
#include "mmdit.h"
#include "rng.h"
#include "preview.h"
#include "sdnode.h"
#include "step_cache.h"
#include "t5.h"
#include "taesd.h"
#include "vae.h"
#include "z_image.h"

namespace sdnode {

// One prompt through the text encoders.
struct FlowText {
  std::vector<float> context;  // the transformer's text tokens, [tokens, width]
  int64_t tokens = 0;
  std::vector<float> pooled;   // CLIP-L's pooled vector (FLUX.1), CLIP-L's ‖ CLIP-G's (SD3); none (Chroma)
  std::vector<float> mask;     // Chroma: added to each text token's attention scores as a key
};

// Throws InvalidArgument unless the sampler and scheduler run flow models.
void checkFlowSampling(const std::string& sampler, const std::string& scheduler);

// A1111's emphasis over a text encoder's states (T5, Qwen3), as for CLIP: each token's state
// times its weight, then the whole run rescaled to its former mean. states: [tokens, width].
void weighStates(std::vector<float>& states, const std::vector<float>& weights, int64_t width);

// FLUX.1's VAE latent normalisation (Z-Image shares the VAE and it).
constexpr float kFluxLatentScale = 0.3611f;
constexpr float kFluxLatentShift = 0.1159f;

class FlowModel : public Model {
 public:
  explicit FlowModel(const LoadParams& params);
  const ModelInfo& info() const override { return info_; }
  std::vector<Image> generate(const Request& request, const Callbacks& callbacks) override;
  // The stages (flow_stages.cpp).
  EncodedText encodeText(const TextRequest& text) override;
  LatentBatch encodeImage(const std::vector<uint8_t>& rgb, int width, int height, bool tiled, bool sampled, uint64_t seed,
                          const std::string& rng) override;
  LatentBatch sampleLatent(const SampleRequest& request, const LatentBatch& latent, const Callbacks& callbacks) override;
  std::vector<Image> decodeLatent(const LatentBatch& latent, bool tiled, const Callbacks& callbacks) override;

 private:
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Component> diffusion_;
  std::unique_ptr<Component> clipFile_;
  std::unique_ptr<Component> clipGFile_;
  std::unique_ptr<Component> t5File_;
  std::unique_ptr<Component> vaeFile_;
  std::unique_ptr<Component> llmFile_;
  // The transformer: FLUX.1's, SD3's or Z-Image's, after its config; with lowMemory it is freed while the text
  // encoders run (diffusion_ null then).
  bool sd3_ = false;
  bool zImage_ = false;
  FluxConfig fluxConfig_;
  MmditConfig mmditConfig_;
  ZImageConfig zImageConfig_;
  std::unique_ptr<FluxTransformer> flux_;   // FLUX.1
  std::unique_ptr<MmditTransformer> mmdit_;  // SD3, SD3.5
  std::unique_ptr<ZImageTransformer> zImageTransformer_;
  std::unique_ptr<ClipTextEncoder> clip_;
  std::unique_ptr<ClipTextEncoder> clipG_;   // SD3's
  std::unique_ptr<T5Encoder> t5_;
  std::unique_ptr<LlmEncoder> llm_;  // Z-Image's Qwen3
  std::unique_ptr<Vae> vae_;
  std::unique_ptr<Taesd> taesd_;  // TAEF1 / TAESD3, when LoadParams::taesd names one
  FlowSchedule schedule_;
  // What reloading the text encoders needs (they are freed between prompts unless kept).
  LoadParams params_;
  ClipConfig clipConfig_;
  ClipConfig clipGConfig_;
  T5Config t5Config_;
  LlmConfig llmConfig_;
  // Why the weights are not the files' any more (a LoRA could not be taken out, lora.h); empty: they are.
  std::string staleWeights_;
  // The last prompts' encodings, most recent first.
  std::list<std::pair<std::string, FlowText>> promptCache_;
  ModelInfo info_;

  void checkRequest(const Request& request) const;
  // Adds a loaded component's file, bytes and types to info_.
  void noteComponent(const char* role, const Component& part);
  // Z-Image's part of the constructor: its Qwen3 encoder and VAE, after diffusion_ is loaded.
  void loadZImage(const LoadParams& params, ggml_type weightType, int threads);
  // The TAESD of LoadParams::taesd, checked against the VAE (`kind` names the model, `which` the TAESD to get).
  void loadTaesd(const LoadParams& params, int threads, const std::string& kind, const char* which);
  // info_ once everything is loaded.
  void noteModel(int64_t latentChannels, int64_t contextDim, int vaeScale);
  // The transformer over diffusion_'s weights, checked.
  void buildTransformer();
  void loadTransformer();  // when freed: loads diffusion_ again and builds the transformer
  void releaseTransformer();
  void loadTextEncoders();  // with lowMemory, frees the transformer first
  void releaseTextEncoders();
  // After a call's prompts are encoded: the text encoders freed, or (keepTextEncoders) their buffers.
  void doneWithTextEncoders();
  // encodePrompt through the cache of recent prompts, loading the text encoders on a miss.
  // llmTokens: Z-Image's Qwen3 ids (the other families' are empty).
  FlowText encodeCached(const Conditioning& clipTokens, const Conditioning& clipGTokens, const Conditioning& t5Tokens,
                        const Conditioning& llmTokens);
  std::vector<Image> generateImages(const Request& request, const Callbacks& callbacks);
  // clipGTokens: SD3's CLIP-G rows when they differ from clipTokens; empty: the same rows.
  FlowText encodePrompt(const Conditioning& clipTokens, const Conditioning& clipGTokens, const Conditioning& t5Tokens);
  FlowText encodeFluxPrompt(const Conditioning& clipTokens, const Conditioning& t5Tokens);
  FlowText encodeChromaPrompt(const Conditioning& t5Tokens);
  FlowText encodeSd3Prompt(const Conditioning& clipTokens, const Conditioning& clipGTokens, const Conditioning& t5Tokens);
  FlowText encodeZImagePrompt(const Conditioning& llmTokens);
  // Whether a text encoder is loaded (they come and go with lowMemory and keepTextEncoders).
  bool textEncodersLoaded() const { return t5_ != nullptr || llm_ != nullptr; }
  // T5's states for ids and weights: the end token, padding to whole runs of `chunk`, each run encoded alone.
  std::vector<float> encodeT5(const Conditioning& t5Tokens, size_t chunk);
  // The denoised prediction at sigma; with `skipLayerGuidance`, moved by the request's slgScale
  // away from the prediction without its skipLayers. With a step cache, the transformer's passes
  // at the sampler's model call `step` go through it (slots 0: prompt, 1: negative).
  std::vector<float> denoise(const std::vector<float>& x, float sigma, int64_t w, int64_t h, const FlowText& cond,
                             const FlowText* uncond, const Request& r, const std::vector<FluxReference>& references,
                             bool skipLayerGuidance, StepCache* cache = nullptr, int step = 0);
  std::vector<uint8_t> decodeToRgb(const std::vector<float>& latent, int64_t w, int64_t h, bool tiled);
  // A look at a running image's prediction: TAESD's decode when one is loaded, else the colour map.
  LatentPreview previewOf(const std::vector<float>& latent, int64_t w, int64_t h);
  // An RGB image's latent in the transformer's normalisation: a sample of the VAE posterior drawn
  // from `rng` (image-to-image, as the reference engine does), or its mean when rng is null (references).
  std::vector<float> encodeToLatent(const std::vector<uint8_t>& rgb, int width, int height, bool tiled, Rng* rng);
};

}  // namespace sdnode

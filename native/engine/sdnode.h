// sdnode engine: the one public header. Plain C++17; no ggml or Node types cross it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sdnode {

// Every failure the engine reports is an Error with a stable code the addon hands to JS.
enum class ErrorCode {
  ModelIo,           // ERR_MODEL_IO: the file cannot be opened or read
  ModelFormat,       // ERR_MODEL_FORMAT: not a valid checkpoint (header, offsets, dtypes, shapes)
  ModelUnsupported,  // ERR_MODEL_UNSUPPORTED: valid file, but not an architecture we run
  InvalidArgument,   // ERR_INVALID_ARGUMENT: a request field outside what the engine accepts
  Backend,           // ERR_BACKEND: the requested backend is not available or failed
  OutOfMemory,       // ERR_OUT_OF_MEMORY
  Aborted,           // ERR_ABORTED: the caller asked to stop
  Internal,          // ERR_INTERNAL
};

const char* errorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

struct DeviceInfo {
  std::string backend;  // "cpu", "metal", "cuda"
  std::string name;
  std::string description;
  uint64_t memoryTotal = 0;
  uint64_t memoryFree = 0;
};

struct SystemInfo {
  std::string engineVersion;
  std::string ggmlVersion;
  std::vector<std::string> backends;
  std::vector<DeviceInfo> devices;
  std::vector<std::string> cpuFeatures;
  int physicalCores = 1;
};

SystemInfo systemInfo();

struct LoadParams {
  std::string path;
  std::string backend = "auto";     // auto | cpu | metal | cuda
  int threads = 0;                  // 0: physical cores
  std::string prediction = "auto";  // auto | eps | v
  // Resident type of the weight matrices: auto (as stored) | f32 | f16 | q8_0 | q6_k | q5_k | q5_1 |
  // q5_0 | q4_k | q4_1 | q4_0 | q3_k | q2_k (case-insensitive). Quantized types apply to float
  // matrices whose rows are whole blocks; convolution kernels, vectors and embeddings keep theirs.
  std::string weightType = "auto";
  // A TAESD decoder file (taesd.h) to load with the model: previews then show its decode, and
  // Request::vaeDecoder "taesd" can use it for the final image. Empty: none.
  std::string taesd;
  // A model given as components (FLUX.1, SD3 / SD3.5, Z-Image): the diffusion transformer, and the text encoders and
  // VAE it needs, each from its own file. Non-empty diffusionModel selects this; `path` is unused.
  std::string diffusionModel;
  std::string clipL;
  std::string clipG;
  std::string t5xxl;
  std::string llm;  // a language model used as text encoder (Z-Image's Qwen3)
  std::string vae;
  // Flow models: keep the text encoders resident between calls. Off (the default), they are loaded
  // for a prompt not encoded recently (the last 8 are kept), used, and freed again, so T5-XXL's
  // 9.5 GB (f16) are resident only while a new prompt is encoded.
  bool keepTextEncoders = false;
  // Flow models: never hold the transformer and the text encoders at once. The transformer is freed
  // while a new prompt is encoded and loaded again after, so peak memory is the larger of the two
  // rather than their sum, at the cost of reading the transformer's file again for each new prompt.
  // Not with keepTextEncoders.
  bool lowMemory = false;
};

struct ModelInfo {
  std::string family;      // "sd1" | "sd2" | "sdxl" | "sdxl-refiner" | "flux-schnell" | "flux-dev" | "chroma" | "sd3" | "sd3.5" | "z-image"
  std::string prediction;  // "eps" | "v" | "flow"
  int unetInChannels = 4;
  int contextDim = 768;
  int padToken = 49407;
  int vaeScale = 8;
  uint64_t weightBytes = 0;  // resident, after any weightType conversion
  std::string backend;
  std::string format;      // "safetensors" | "gguf"
  uint64_t fileBytes = 0;  // size of the checkpoint file
  // The loaded weights by the type the file stores them in (ggml's names: "f16", "q8_0", "q4_K"):
  // how many tensors of each.
  std::map<std::string, int> storedTypes;
  // Tensors under the model's prefixes that no component uses (a sign of a variant we do not know).
  std::vector<std::string> unusedTensors;
  bool taesd = false;  // whether a TAESD decoder was loaded with the model
  // The text encoders a prompt goes through, in the order they take it: "clipL", "clipG", "t5xxl", "llm".
  std::vector<std::string> textEncoders;
  // For models loaded from components: each component's file ("diffusionModel", "clipL", "t5xxl", "vae").
  std::map<std::string, std::string> componentFiles;
};

// Token ids in rows of 77 (BOS … EOS pad) and one weight per token.
struct Conditioning {
  std::vector<int32_t> tokens;
  std::vector<float> weights;
  // Textual-inversion vectors: token id vocab + k stands for row k, [rows, width] with the width of
  // the model's first text encoder (`embeddings`) and of its second (`embeddings2`, SDXL's bigG).
  std::vector<float> embeddings;
  std::vector<float> embeddings2;
};

// AUTOMATIC1111's hires fix: after the sampler, the latent is upscaled (latent modes) or decoded,
// resized and encoded again (lanczos), then an image-to-image pass runs at the larger size.
struct HiresFix {
  // The first pass's result is resized to upscaleWidth x upscaleHeight, then centre-cropped to
  // width x height (pixels, multiples of the VAE scale; equal when the aspect ratio is kept).
  int width = 0;
  int height = 0;
  int upscaleWidth = 0;
  int upscaleHeight = 0;
  // latent-bilinear | latent-bilinear-antialiased | latent-bicubic | latent-bicubic-antialiased |
  // latent-nearest | latent-nearest-exact (torch.nn.functional.interpolate on the latent) | lanczos
  // (PIL's Lanczos on the decoded image) | esrgan (the ESRGAN-family model at upscalerPath on the
  // decoded image, then Lanczos to the size).
  std::string upscaler = "latent-bilinear";
  std::string upscalerPath;
  int steps = 0;  // steps the second pass runs; 0: the request's steps
  float denoisingStrength = 0.7f;
  // The second pass's text; empty tokens: the request's prompt / negative prompt.
  Conditioning prompt;
  Conditioning negative;
};

// A LoRA file merged into the weights for one call: W += multiplier · alpha/rank · up·down, with
// AUTOMATIC1111's separate multipliers for the UNet and the text encoder.
struct LoraFile {
  std::string path;  // .safetensors or .gguf: kohya, diffusers / PEFT names, LoCon, LoHa, LoKr
  float unetMultiplier = 1.0f;
  float textMultiplier = 1.0f;
};

class Model;

// An image a model reads beside the prompt (FLUX.1 Kontext's reference images).
struct ReferenceImage {
  int width = 0;   // pixels, a multiple of 16
  int height = 0;
  std::vector<uint8_t> rgb;  // width*height*3
};

// AUTOMATIC1111's refiner hand-off: the first pass's steps from round(steps * switchAt) on are
// denoised by another model (an SDXL refiner) on the same latent, sigmas and sampler state, with
// that model's own text conditioning.
struct RefinerHandoff {
  // An SDXL-family model with the same latent channels, not the one generating. The caller keeps it
  // loaded and unused by other calls for the duration of the call.
  Model* model = nullptr;
  float switchAt = 0.8f;  // above 0, at most 1 (1: the refiner runs no step)
  // The prompt and negative prompt as the refiner's tokenizer settings build them (its pad token).
  Conditioning prompt;
  Conditioning negative;
};

// Step caching's settings, as stable-diffusion.cpp's --cache-mode and --cache-option name them.
struct CacheOptions {
  // "" (none), "easycache" (flow transformers) or "ucache" (UNets).
  std::string mode;
  // Negative: the mode's default (easycache 0.2, ucache 1.0).
  float threshold = -1.0f;
  // The fractions of the schedule between which steps may be skipped.
  float start = 0.15f;
  float end = 0.95f;
  // ucache: how much of the summed error carries over to the next step (0..1).
  float decay = 1.0f;
  // ucache: measure the error relative to the output's size (else in the output's own units).
  bool relative = true;
  // ucache: a pass that runs clears the summed error.
  bool reset = true;
};

// One ControlNet unit of a call (AUTOMATIC1111's ControlNet units): a network, its control image and
// how strongly and when it steers the UNet.
struct ControlUnit {
  std::string path;  // the ControlNet's file (.safetensors or .gguf; original layout control_model.*, or diffusers')
  // The control image as the network reads it, already preprocessed and at the request's size:
  // width*height*3 RGB bytes.
  std::vector<uint8_t> image;
  // With Request::hires: the control image at the hires fix's size (HiresFix::width x height), so the
  // unit steers the second pass too, as A1111's ControlNet does by default; empty: the first pass only.
  std::vector<uint8_t> hiresImage;
  // The residuals' scale (A1111's weight). Units add up; 0 gives the image made without the unit.
  float strength = 1.0f;
  // The part of the sampling it steers: steps whose index / steps lies in [guidanceStart, guidanceEnd].
  float guidanceStart = 0.0f;
  float guidanceEnd = 1.0f;
  // A1111's control modes: balanced (both passes of classifier-free guidance get the residuals as
  // they are) | prompt ("My prompt is more important": residual i of n scaled by 0.825^(n-1-i), so
  // the shallow layers steer less) | control ("ControlNet is more important": scaled so, and only
  // the prompt's pass gets them, which guidance then amplifies).
  std::string mode = "balanced";
};

struct Request {
  std::string mode = "txt2img";  // txt2img | img2img | inpaint
  int width = 512;
  int height = 512;
  int steps = 20;
  float cfgScale = 7.0f;
  std::string sampler = "euler_a";
  std::string scheduler = "discrete";
  uint64_t seed = 42;
  // AUTOMATIC1111's variation seed: the initial noise is the slerp of the seed's noise and the
  // subseed's by subseedStrength (0: the seed's alone, 1: the subseed's). Image i uses subseed + i.
  uint64_t subseed = 0;
  float subseedStrength = 0.0f;
  // AUTOMATIC1111's "resize seed from": the noise is drawn at this size (pixels; 0 x 0: off) and
  // centred in (or cropped to) the image's latent, so a seed keeps its composition at a new size.
  int seedResizeWidth = 0;
  int seedResizeHeight = 0;
  std::string rng = "gpu";
  int clipSkip = 0;  // 0: family default
  int count = 1;
  Conditioning prompt;
  Conditioning negative;
  std::vector<uint8_t> image;  // RGB, width*height*3 (img2img, inpaint)
  std::vector<uint8_t> mask;   // width*height, 255 = repaint (inpaint)
  float strength = 0.75f;
  // What the masked region's latent starts from before it is noised to the strength's first step
  // (AUTOMATIC1111's "Masked content"): original (the input image's latent) | noise (the image's
  // seed's noise, as a fresh generator draws it first) | zeros. Inpaint only; the unmasked region
  // always keeps the input's latent.
  std::string maskedStart = "original";
  // Run the VAE (decode, and encode for img2img / inpaint) in overlapping tiles of 512 pixels:
  // memory bounded by one tile at any size, pixels a little different from a whole-image pass
  // (images up to one tile: identical).
  bool vaeTiling = false;
  // Report a preview of the current estimate with every n-th step's progress, and the last step's;
  // 0: none. At most 1000.
  int previewEvery = 0;
  // Seamless tiling: every padded convolution of the UNet and the VAE wraps around the image's
  // edges, so the image tiles without seams. Not with vaeTiling.
  bool tiling = false;
  // What decodes the final latent: vae (the checkpoint's) | taesd (the TAESD loaded with the model:
  // much faster, a draft's quality). Any first-pass decode of a hires fix stays the VAE's.
  std::string vaeDecoder = "vae";
  std::optional<HiresFix> hires;  // txt2img only
  // Applied for this call only: the weights are byte-identical to the loaded ones afterwards.
  std::vector<LoraFile> loras;
  // ControlNet units (SD 1.x, SD 2.x, SDXL), steering the first pass's UNet and, for units with a
  // hiresImage, the hires fix's second pass (never the refiner). A model keeps the networks of its
  // last call loaded.
  std::vector<ControlUnit> controlNets;
  // SDXL's micro-conditioning, in pixels: the size the UNet is told the training image had, the
  // top-left corner of its crop, and the size asked for. 0 x 0 sizes: the size being generated.
  // Other families ignore them.
  int originalWidth = 0;
  int originalHeight = 0;
  int cropTop = 0;
  int cropLeft = 0;
  int targetWidth = 0;
  int targetHeight = 0;
  // The SDXL refiner's aesthetic score conditioning for the prompt and the negative prompt.
  float aestheticScore = 6.0f;
  float negativeAestheticScore = 2.5f;
  std::optional<RefinerHandoff> refiner;  // not with hires
  // The T5 encoder's prompt and negative prompt (flow models): ids without the end token or
  // padding, one weight per id; the engine ends, pads and chunks them as the family does.
  Conditioning t5Prompt;
  Conditioning t5Negative;
  // SD3's CLIP-G rows of 77 when they differ from `prompt` / `negative` (ids given per encoder);
  // empty: CLIP-G reads the same rows as CLIP-L.
  Conditioning clipGPrompt;
  Conditioning clipGNegative;
  // Z-Image's Qwen3 prompt and negative prompt: the ids the language model reads, chat template
  // included (the engine adds nothing), one weight per id.
  Conditioning llmPrompt;
  Conditioning llmNegative;
  // FLUX.1 dev's distilled guidance (the guidance_in embedding); other models ignore it.
  float guidance = 3.5f;
  // The flow-matching shift of the "discrete" schedule and its kin; 0: the family's default.
  float flowShift = 0.0f;
  // FLUX.1 Kontext: images whose latents the transformer reads as extra tokens (at most 4).
  std::vector<ReferenceImage> referenceImages;
  // Skip-layer guidance (flow transformers; SD3.5 medium's model card uses it): on the steps
  // between slgStart and slgEnd (fractions of the schedule), the prediction moves by slgScale times
  // (prediction - the prediction with the blocks in skipLayers left out). 0 turns it off.
  float slgScale = 0.0f;
  std::vector<int32_t> skipLayers = {7, 8, 9};
  float slgStart = 0.01f;
  float slgEnd = 0.2f;
  // Step caching (sampling/step_cache.h): passes whose output can be foreseen are not run.
  CacheOptions cache;
};

// A cheap look at a running image: with a TAESD loaded, its decode at the image's size; otherwise one
// RGB pixel per latent cell (width/8 x height/8), from a fixed linear map of the latent.
struct LatentPreview {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // width*height*3
};

struct Progress {
  // 1-based step just finished of all the image's steps (with a hires fix, the first pass's then
  // the second pass's), so step / steps only grows while an image is made.
  int step = 0;
  int steps = 0;
  int pass = 0;       // 0: the first pass; 1: the hires fix's second pass
  int passStep = 0;   // 1-based step within the pass
  int passSteps = 0;
  int image = 0;  // 0-based
  int images = 0;
  double elapsedMs = 0;
  std::optional<LatentPreview> preview;  // on the steps Request::previewEvery asks for
};

struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
  uint64_t seed = 0;
  uint64_t subseed = 0;
};

struct Callbacks {
  std::function<void(const Progress&)> onProgress;
  std::function<bool()> aborted;  // polled between steps and inside long graph computations
};

// The stages a generation is made of, for callers that compose them (ComfyUI's nodes): text to
// conditioning, pixels to latent, latent to latent through the sampler, latent to pixels.

// One prompt's ids for each text encoder the model has, as Request gives them.
struct TextRequest {
  Conditioning prompt;  // the CLIP encoders' rows of 77, as Request::prompt
  Conditioning clipG;   // SD3's CLIP-G rows when they differ from `prompt`; empty: the same rows
  Conditioning t5;      // flow models' T5 ids, as Request::t5Prompt
  Conditioning llm;     // Z-Image's Qwen3 ids, as Request::llmPrompt
  int clipSkip = 0;     // 0: the family's default
  // Merged into the text encoders for this call (their UNet multipliers are not used here).
  std::vector<LoraFile> loras;
};

// One prompt through the model's text encoders.
struct EncodedText {
  std::vector<float> hidden;  // [tokens, width]: the cross-attention context (UNet) or text tokens (flow models)
  int64_t tokens = 0;
  std::vector<float> pooled;  // SDXL's, FLUX.1's and SD3's pooled vector; empty for SD 1.x / 2.x and Chroma
  std::vector<float> mask;    // Chroma: added to each text token's attention scores; empty otherwise
  // ComfyUI's ControlNet on a conditioning (UNet models): units steering every UNet pass this text
  // conditions in sampleLatent, their images at the sampled latent's size in pixels. Empty: none.
  std::vector<ControlUnit> controls;
};

// Latents in the diffusion model's scale (the VAE's latent, shifted and scaled), `batch` of them.
struct LatentBatch {
  int width = 0;   // latent cells
  int height = 0;
  int channels = 4;
  int batch = 1;
  std::vector<float> data;  // [batch, channels, height, width]
  // Where the sampler may change the latent, per cell (0 keeps the input's latent, 1 repaints);
  // empty: everywhere. ComfyUI's noise_mask.
  std::vector<float> noiseMask;  // [height, width]
};

struct SampleRequest {
  std::string sampler = "euler_a";
  std::string scheduler = "discrete";
  int steps = 20;
  float cfgScale = 7.0f;
  uint64_t seed = 0;
  std::string rng = "gpu";
  // ComfyUI's denoise: below 1, the schedule is made for steps / denoise steps and its last `steps`
  // are run. 0 < denoise <= 1.
  float denoise = 1.0f;
  // ComfyUI's start_at_step / end_at_step: the steps of the schedule that run (endStep >= steps: to
  // the end). Stopping early leaves the remaining noise in the latent unless forceFullDenoise.
  int startStep = 0;
  int endStep = 10000;
  bool forceFullDenoise = true;
  bool addNoise = true;  // false: the latent already holds its noise (a previous pass's leftover)
  int clipSkip = 0;
  int previewEvery = 0;  // as Request::previewEvery
  float guidance = 3.5f;   // FLUX.1 dev's distilled guidance, as Request::guidance
  float flowShift = 0.0f;  // flow models: as Request::flowShift
  // Merged into the UNet for this call (their text multipliers are not used here).
  std::vector<LoraFile> loras;
  // ComfyUI's conditioning lists: with several, the prediction is the mean of the guided
  // predictions over every (positive, negative) pair, as ComfyUI combines conditionings.
  std::vector<EncodedText> positive;
  std::vector<EncodedText> negative;  // unused at cfgScale 1
};

class Model {
 public:
  static std::unique_ptr<Model> load(const LoadParams& params);
  virtual ~Model() = default;
  virtual const ModelInfo& info() const = 0;
  // Not re-entrant: one generation at a time per model (the addon queues calls).
  virtual std::vector<Image> generate(const Request& request, const Callbacks& callbacks) = 0;
  // The stages. Not re-entrant either.
  virtual EncodedText encodeText(const TextRequest& text);
  // RGB bytes width*height*3 (pixels, multiples of the VAE scale) to one latent: the posterior's
  // mean, or a sample of it drawn from a generator of kind `rng` seeded with `seed` when sampled.
  virtual LatentBatch encodeImage(const std::vector<uint8_t>& rgb, int width, int height, bool tiled, bool sampled,
                                  uint64_t seed, const std::string& rng);
  // Runs the sampler on every latent of the batch; the initial noise of the whole batch is one draw
  // of the seeded generator ([batch, channels, height, width], as ComfyUI draws it), which then
  // goes on to give the ancestral samplers' noise. Flow models mix latent and noise as ComfyUI does
  // (sigma·noise + (1 − sigma)·latent) and hand a latent with leftover noise on divided by 1 − sigma.
  virtual LatentBatch sampleLatent(const SampleRequest& request, const LatentBatch& latent, const Callbacks& callbacks);
  // Each latent of the batch to RGB bytes (width, height: pixels).
  virtual std::vector<Image> decodeLatent(const LatentBatch& latent, bool tiled, const Callbacks& callbacks);
};

struct ConvertParams {
  std::string input;   // a checkpoint Model::load reads
  std::string output;  // the GGUF file to write; replaced only once it is complete
  // The type of the weights in the file, as LoadParams::weightType: the file then holds exactly
  // what a model loaded from `input` with that weightType keeps resident.
  std::string weightType = "auto";
  int threads = 0;  // 0: physical cores (quantizing)
};

struct ConvertProgress {
  int tensor = 0;  // tensors written so far
  int tensors = 0;
};

struct ConvertCallbacks {
  std::function<void(const ConvertProgress&)> onProgress;
  std::function<bool()> aborted;  // polled between tensors; the output is then left untouched
};

struct ConvertResult {
  uint64_t bytes = 0;  // size of the written file
  std::map<std::string, int> types;  // tensors written by ggml type name
  int tensors = 0;
  // Tensors of `input` that are not weights of the model (EMA copies, position ids, …): not written.
  std::vector<std::string> skipped;
};

// Writes a GGUF file with stable-diffusion.cpp's tensor names and layout. Throws sdnode::Error:
// ModelIo (reading or writing), ModelFormat / ModelUnsupported (input), InvalidArgument
// (weightType, or output being the input), Aborted.
ConvertResult convertToGguf(const ConvertParams& params, const ConvertCallbacks& callbacks);

// The safety checker Stable Diffusion releases ship (CompVis/stable-diffusion-safety-checker, in
// Hugging Face's transformers layout): a CLIP vision tower with its projection, and concept
// embeddings with per-concept thresholds. Sizes are read from the file.
struct SafetyCheckerParams {
  std::string path;
  std::string backend = "auto";  // auto | cpu | metal | cuda
  int threads = 0;               // 0: physical cores
};

struct SafetyCheckerInfo {
  int imageSize = 224;  // side of the square input: patch size x patches per side
  int concepts = 17;
  int specialConcepts = 3;
  uint64_t weightBytes = 0;
  std::string backend;
};

struct SafetyVerdict {
  // A concept score above zero (rounded to 3 decimals, as the reference pipeline rounds) flags the image.
  bool nsfw = false;
  // A special-care score above zero: every concept threshold is lowered by 0.01.
  bool specialCare = false;
  // Cosine similarity of the image embedding to each concept, less its threshold, plus the
  // special-care adjustment; unrounded.
  std::vector<float> conceptScores;
  std::vector<float> specialScores;
};

class SafetyChecker {
 public:
  static std::unique_ptr<SafetyChecker> load(const SafetyCheckerParams& params);
  virtual ~SafetyChecker() = default;
  virtual const SafetyCheckerInfo& info() const = 0;
  // `pixels`: `count` images, each as planes [3, imageSize, imageSize] normalised as CLIP's image
  // processor does (the caller resizes, crops and normalises). Not re-entrant.
  virtual std::vector<SafetyVerdict> check(const std::vector<float>& pixels, int count) = 0;
};

// ESRGAN-family upscalers: RRDBNet (ESRGAN, Real-ESRGAN x4plus / x4plus_anime_6B / x2plus, in
// BasicSR's names or the old ESRGAN ones) and the compact SRVGGNet (realesr-general-x4v3). Sizes,
// block counts and the scale are read from the tensors.
struct UpscalerParams {
  std::string path;
  std::string backend = "auto";  // auto | cpu | metal | cuda
  int threads = 0;               // 0: physical cores
};

struct UpscalerInfo {
  std::string architecture;  // "rrdbnet" | "srvggnet"
  int scale = 4;             // output pixels per input pixel, per side
  int blocks = 0;            // RRDB blocks, or SRVGGNet body convolutions
  int features = 0;          // channels of the trunk
  uint64_t weightBytes = 0;
  std::string backend;
};

struct UpscaleOptions {
  // Side of the square input tiles in pixels, and pixels shared by neighbouring tiles (blended with
  // smootherstep weights); an image no larger than one tile runs whole.
  int tile = 128;
  int overlap = 16;
  std::function<void(int tile, int tiles)> onTile;  // after each tile
  std::function<bool()> aborted;                     // polled between tiles and graph nodes
};

class Upscaler {
 public:
  static std::unique_ptr<Upscaler> load(const UpscalerParams& params);
  virtual ~Upscaler() = default;
  virtual const UpscalerInfo& info() const = 0;
  // rgb: width x height pixels, 3 bytes each, rows top first -> the same at info().scale times the
  // size, the network's output clamped to [0, 1] and rounded. Not re-entrant.
  virtual std::vector<uint8_t> upscale(const std::vector<uint8_t>& rgb, int width, int height, const UpscaleOptions& options) = 0;
};

const std::vector<std::string>& samplerNames();
const std::vector<std::string>& schedulerNames();

}  // namespace sdnode

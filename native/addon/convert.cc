#include "convert.h"

#include <cmath>

namespace sdnode_addon {

namespace {

[[noreturn]] void badField(Napi::Env env, const std::string& field, const std::string& expected) {
  throw Napi::TypeError::New(env, "internal: request field '" + field + "' must be " + expected);
}

std::string stringField(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsString()) badField(o.Env(), name, "a string");
  return v.As<Napi::String>().Utf8Value();
}

double numberField(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) badField(o.Env(), name, "a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) badField(o.Env(), name, "a finite number");
  return d;
}

bool boolField(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsBoolean()) badField(o.Env(), name, "a boolean");
  return v.As<Napi::Boolean>().Value();
}

int intField(const Napi::Object& o, const char* name) {
  double d = numberField(o, name);
  if (d != std::floor(d) || d < -2147483648.0 || d > 2147483647.0) badField(o.Env(), name, "a 32-bit integer");
  return static_cast<int>(d);
}

template <typename T, napi_typedarray_type Kind>
std::vector<T> typedArrayField(const Napi::Object& o, const char* name, bool optional) {
  Napi::Value v = o.Get(name);
  if (optional && (v.IsUndefined() || v.IsNull())) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != Kind) badField(o.Env(), name, "a typed array of the right kind");
  Napi::TypedArrayOf<T> array = v.As<Napi::TypedArrayOf<T>>();
  return std::vector<T>(array.Data(), array.Data() + array.ElementLength());
}

sdnode::Conditioning conditioningField(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsObject()) badField(o.Env(), name, "an object with tokens and weights");
  return conditioningFromJs(v.As<Napi::Object>());
}

uint64_t seedField(const Napi::Object& o, const char* name) {
  const double seed = numberField(o, name);
  if (seed < 0 || seed > 9007199254740991.0 || seed != std::floor(seed)) badField(o.Env(), name, "an integer 0 … 2^53-1");
  return static_cast<uint64_t>(seed);
}

sdnode::HiresFix hiresFromJs(const Napi::Object& o) {
  sdnode::HiresFix h;
  h.width = intField(o, "width");
  h.height = intField(o, "height");
  h.upscaleWidth = intField(o, "upscaleWidth");
  h.upscaleHeight = intField(o, "upscaleHeight");
  h.upscaler = stringField(o, "upscaler");
  if (!o.Get("upscalerPath").IsUndefined()) h.upscalerPath = stringField(o, "upscalerPath");
  h.steps = intField(o, "steps");
  h.denoisingStrength = static_cast<float>(numberField(o, "denoisingStrength"));
  // Absent: the second pass takes the request's prompts.
  if (!o.Get("prompt").IsUndefined()) h.prompt = conditioningField(o, "prompt");
  if (!o.Get("negative").IsUndefined()) h.negative = conditioningField(o, "negative");
  return h;
}

// [{ path, image, strength, guidanceStart, guidanceEnd, mode }]
std::vector<sdnode::ControlUnit> controlUnitsFromJs(const Napi::Value& v) {
  if (!v.IsArray()) badField(v.Env(), "controlNets", "an array");
  Napi::Array array = v.As<Napi::Array>();
  std::vector<sdnode::ControlUnit> units;
  for (uint32_t i = 0; i < array.Length(); i++) {
    Napi::Value entry = array.Get(i);
    if (!entry.IsObject()) badField(v.Env(), "controlNets", "an array of { path, image, strength, guidanceStart, guidanceEnd, mode }");
    Napi::Object o = entry.As<Napi::Object>();
    sdnode::ControlUnit unit;
    unit.path = stringField(o, "path");
    unit.image = typedArrayField<uint8_t, napi_uint8_array>(o, "image", false);
    unit.hiresImage = typedArrayField<uint8_t, napi_uint8_array>(o, "hiresImage", true);
    unit.strength = static_cast<float>(numberField(o, "strength"));
    unit.guidanceStart = static_cast<float>(numberField(o, "guidanceStart"));
    unit.guidanceEnd = static_cast<float>(numberField(o, "guidanceEnd"));
    unit.mode = stringField(o, "mode");
    units.push_back(std::move(unit));
  }
  return units;
}

// A copy JS owns: the engine's vector is gone once the call returns.
Napi::Uint8Array bytesToJs(Napi::Env env, const std::vector<uint8_t>& bytes) {
  Napi::Uint8Array array = Napi::Uint8Array::New(env, bytes.size());
  std::copy(bytes.begin(), bytes.end(), array.Data());
  return array;
}

}  // namespace

sdnode::Request requestFromJs(const Napi::Object& o) {
  sdnode::Request r;
  r.mode = stringField(o, "mode");
  r.width = intField(o, "width");
  r.height = intField(o, "height");
  r.steps = intField(o, "steps");
  r.cfgScale = static_cast<float>(numberField(o, "cfgScale"));
  r.sampler = stringField(o, "sampler");
  r.scheduler = stringField(o, "scheduler");
  r.seed = seedField(o, "seed");
  r.rng = stringField(o, "rng");
  r.clipSkip = intField(o, "clipSkip");
  r.count = intField(o, "count");
  r.strength = static_cast<float>(numberField(o, "strength"));
  r.prompt = conditioningField(o, "prompt");
  r.negative = conditioningField(o, "negative");
  r.image = typedArrayField<uint8_t, napi_uint8_array>(o, "image", true);
  r.mask = typedArrayField<uint8_t, napi_uint8_array>(o, "mask", true);
  // Optional: callers from before vaeTiling existed decode whole.
  if (!o.Get("vaeTiling").IsUndefined()) r.vaeTiling = boolField(o, "vaeTiling");
  // Optional: callers from before previews existed get none.
  if (!o.Get("previewEvery").IsUndefined()) r.previewEvery = intField(o, "previewEvery");
  // Optional, as vaeTiling: absent means no variation seed, no seed resize, no tiling, the original
  // latent under the mask, no hires fix.
  if (!o.Get("subseed").IsUndefined()) r.subseed = seedField(o, "subseed");
  if (!o.Get("subseedStrength").IsUndefined()) r.subseedStrength = static_cast<float>(numberField(o, "subseedStrength"));
  if (!o.Get("seedResizeWidth").IsUndefined()) r.seedResizeWidth = intField(o, "seedResizeWidth");
  if (!o.Get("seedResizeHeight").IsUndefined()) r.seedResizeHeight = intField(o, "seedResizeHeight");
  if (!o.Get("tiling").IsUndefined()) r.tiling = boolField(o, "tiling");
  if (!o.Get("maskedStart").IsUndefined()) r.maskedStart = stringField(o, "maskedStart");
  // Optional: SDXL's size conditioning; absent means the generated size and no crop.
  const std::pair<const char*, int*> sizeConditioning[] = {
      {"originalWidth", &r.originalWidth}, {"originalHeight", &r.originalHeight}, {"cropTop", &r.cropTop},
      {"cropLeft", &r.cropLeft},           {"targetWidth", &r.targetWidth},       {"targetHeight", &r.targetHeight}};
  for (const auto& [name, field] : sizeConditioning) {
    if (!o.Get(name).IsUndefined()) *field = intField(o, name);
  }
  if (!o.Get("aestheticScore").IsUndefined()) r.aestheticScore = static_cast<float>(numberField(o, "aestheticScore"));
  if (!o.Get("negativeAestheticScore").IsUndefined()) {
    r.negativeAestheticScore = static_cast<float>(numberField(o, "negativeAestheticScore"));
  }
  if (!o.Get("vaeDecoder").IsUndefined()) r.vaeDecoder = stringField(o, "vaeDecoder");
  const Napi::Value hires = o.Get("hires");
  if (!hires.IsUndefined()) {
    if (!hires.IsObject()) badField(o.Env(), "hires", "an object");
    r.hires = hiresFromJs(hires.As<Napi::Object>());
  }
  // Optional, as hires: absent means no LoRA, no ControlNet.
  if (!o.Get("loras").IsUndefined()) r.loras = lorasFromJs(o.Get("loras"));
  if (!o.Get("controlNets").IsUndefined()) r.controlNets = controlUnitsFromJs(o.Get("controlNets"));
  // Optional, as hires. Its `model` is a Model object the caller (ModelWrap) resolves to its handle.
  const Napi::Value refiner = o.Get("refiner");
  if (!refiner.IsUndefined()) {
    if (!refiner.IsObject()) badField(o.Env(), "refiner", "an object");
    const Napi::Object handoff = refiner.As<Napi::Object>();
    sdnode::RefinerHandoff h;
    h.switchAt = static_cast<float>(numberField(handoff, "switchAt"));
    h.prompt = conditioningField(handoff, "prompt");
    h.negative = conditioningField(handoff, "negative");
    r.refiner = std::move(h);
  }
  // Optional: the T5 encoder's ids (flow models), FLUX.1 dev's guidance, the flow shift.
  if (!o.Get("t5Prompt").IsUndefined()) r.t5Prompt = conditioningField(o, "t5Prompt");
  if (!o.Get("t5Negative").IsUndefined()) r.t5Negative = conditioningField(o, "t5Negative");
  if (!o.Get("clipGPrompt").IsUndefined()) r.clipGPrompt = conditioningField(o, "clipGPrompt");
  if (!o.Get("clipGNegative").IsUndefined()) r.clipGNegative = conditioningField(o, "clipGNegative");
  if (!o.Get("llmPrompt").IsUndefined()) r.llmPrompt = conditioningField(o, "llmPrompt");
  if (!o.Get("llmNegative").IsUndefined()) r.llmNegative = conditioningField(o, "llmNegative");
  // Optional: FLUX.1 Kontext's reference images, [{ width, height, data }].
  const Napi::Value references = o.Get("referenceImages");
  if (!references.IsUndefined()) {
    if (!references.IsArray()) badField(o.Env(), "referenceImages", "an array");
    const Napi::Array array = references.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); i++) {
      const Napi::Value entry = array.Get(i);
      if (!entry.IsObject()) badField(o.Env(), "referenceImages", "an array of { width, height, data }");
      const Napi::Object ref = entry.As<Napi::Object>();
      r.referenceImages.push_back({intField(ref, "width"), intField(ref, "height"), typedArrayField<uint8_t, napi_uint8_array>(ref, "data", false)});
    }
  }
  if (!o.Get("guidance").IsUndefined()) r.guidance = static_cast<float>(numberField(o, "guidance"));
  if (!o.Get("flowShift").IsUndefined()) r.flowShift = static_cast<float>(numberField(o, "flowShift"));
  // Optional: skip-layer guidance.
  if (!o.Get("slgScale").IsUndefined()) r.slgScale = static_cast<float>(numberField(o, "slgScale"));
  if (!o.Get("skipLayers").IsUndefined()) r.skipLayers = typedArrayField<int32_t, napi_int32_array>(o, "skipLayers", false);
  if (!o.Get("slgStart").IsUndefined()) r.slgStart = static_cast<float>(numberField(o, "slgStart"));
  if (!o.Get("slgEnd").IsUndefined()) r.slgEnd = static_cast<float>(numberField(o, "slgEnd"));
  // Optional: step caching, { mode, threshold, start, end, decay, relative, reset }.
  const Napi::Value cache = o.Get("cache");
  if (!cache.IsUndefined()) {
    if (!cache.IsObject()) badField(o.Env(), "cache", "an object");
    const Napi::Object c = cache.As<Napi::Object>();
    r.cache.mode = stringField(c, "mode");
    r.cache.threshold = static_cast<float>(numberField(c, "threshold"));
    r.cache.start = static_cast<float>(numberField(c, "start"));
    r.cache.end = static_cast<float>(numberField(c, "end"));
    r.cache.decay = static_cast<float>(numberField(c, "decay"));
    r.cache.relative = boolField(c, "relative");
    r.cache.reset = boolField(c, "reset");
  }
  return r;
}

sdnode::LoadParams loadParamsFromJs(const std::string& path, const Napi::Object& options) {
  sdnode::LoadParams p;
  p.path = path;
  p.backend = stringField(options, "backend");
  p.threads = intField(options, "threads");
  p.prediction = stringField(options, "prediction");
  // Optional: callers from before weightType existed load as stored.
  if (!options.Get("weightType").IsUndefined()) p.weightType = stringField(options, "weightType");
  if (!options.Get("taesd").IsUndefined()) p.taesd = stringField(options, "taesd");
  // Optional: a model given as components.
  const std::pair<const char*, std::string*> components[] = {
      {"diffusionModel", &p.diffusionModel}, {"clipL", &p.clipL}, {"clipG", &p.clipG}, {"t5xxl", &p.t5xxl}, {"llm", &p.llm}, {"vae", &p.vae}};
  for (const auto& [name, field] : components) {
    if (!options.Get(name).IsUndefined()) *field = stringField(options, name);
  }
  if (!options.Get("keepTextEncoders").IsUndefined()) p.keepTextEncoders = boolField(options, "keepTextEncoders");
  if (!options.Get("lowMemory").IsUndefined()) p.lowMemory = boolField(options, "lowMemory");
  return p;
}

sdnode::ConvertParams convertParamsFromJs(const std::string& input, const std::string& output, const Napi::Object& options) {
  sdnode::ConvertParams p;
  p.input = input;
  p.output = output;
  p.weightType = stringField(options, "weightType");
  p.threads = intField(options, "threads");
  return p;
}

sdnode::SafetyCheckerParams safetyCheckerParamsFromJs(const std::string& path, const Napi::Object& options) {
  sdnode::SafetyCheckerParams p;
  p.path = path;
  p.backend = stringField(options, "backend");
  p.threads = intField(options, "threads");
  return p;
}

sdnode::UpscalerParams upscalerParamsFromJs(const std::string& path, const Napi::Object& options) {
  sdnode::UpscalerParams p;
  p.path = path;
  p.backend = stringField(options, "backend");
  p.threads = intField(options, "threads");
  return p;
}

sdnode::UpscaleOptions upscaleOptionsFromJs(const Napi::Object& options) {
  sdnode::UpscaleOptions o;
  o.tile = intField(options, "tile");
  o.overlap = intField(options, "overlap");
  return o;
}

Napi::Object systemInfoToJs(Napi::Env env, const sdnode::SystemInfo& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("engineVersion", info.engineVersion);
  o.Set("ggmlVersion", info.ggmlVersion);
  Napi::Array backends = Napi::Array::New(env, info.backends.size());
  for (size_t i = 0; i < info.backends.size(); i++) backends.Set(static_cast<uint32_t>(i), info.backends[i]);
  o.Set("backends", backends);
  Napi::Array devices = Napi::Array::New(env, info.devices.size());
  for (size_t i = 0; i < info.devices.size(); i++) {
    const sdnode::DeviceInfo& d = info.devices[i];
    Napi::Object dev = Napi::Object::New(env);
    dev.Set("backend", d.backend);
    dev.Set("name", d.name);
    dev.Set("description", d.description);
    dev.Set("memoryTotal", static_cast<double>(d.memoryTotal));
    dev.Set("memoryFree", static_cast<double>(d.memoryFree));
    devices.Set(static_cast<uint32_t>(i), dev);
  }
  o.Set("devices", devices);
  Napi::Array features = Napi::Array::New(env, info.cpuFeatures.size());
  for (size_t i = 0; i < info.cpuFeatures.size(); i++) features.Set(static_cast<uint32_t>(i), info.cpuFeatures[i]);
  o.Set("cpuFeatures", features);
  o.Set("physicalCores", info.physicalCores);
  return o;
}

Napi::Object modelInfoToJs(Napi::Env env, const sdnode::ModelInfo& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("family", info.family);
  o.Set("prediction", info.prediction);
  o.Set("unetInChannels", info.unetInChannels);
  o.Set("contextDim", info.contextDim);
  o.Set("padToken", info.padToken);
  o.Set("vaeScale", info.vaeScale);
  o.Set("weightBytes", static_cast<double>(info.weightBytes));
  o.Set("backend", info.backend);
  o.Set("format", info.format);
  o.Set("fileBytes", static_cast<double>(info.fileBytes));
  o.Set("storedTypes", countsToJs(env, info.storedTypes));
  o.Set("unusedTensors", stringsToJs(env, info.unusedTensors));
  o.Set("taesd", info.taesd);
  o.Set("textEncoders", stringsToJs(env, info.textEncoders));
  Napi::Object files = Napi::Object::New(env);
  for (const auto& [name, path] : info.componentFiles) files.Set(name, path);
  o.Set("componentFiles", files);
  return o;
}

Napi::Object countsToJs(Napi::Env env, const std::map<std::string, int>& counts) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [name, count] : counts) o.Set(name, count);
  return o;
}

Napi::Array stringsToJs(Napi::Env env, const std::vector<std::string>& strings) {
  Napi::Array array = Napi::Array::New(env, strings.size());
  for (size_t i = 0; i < strings.size(); i++) array.Set(static_cast<uint32_t>(i), strings[i]);
  return array;
}

sdnode::Conditioning conditioningFromJs(const Napi::Object& o) {
  sdnode::Conditioning out;
  out.tokens = typedArrayField<int32_t, napi_int32_array>(o, "tokens", false);
  out.weights = typedArrayField<float, napi_float32_array>(o, "weights", false);
  out.embeddings = typedArrayField<float, napi_float32_array>(o, "embeddings", true);
  out.embeddings2 = typedArrayField<float, napi_float32_array>(o, "embeddings2", true);
  return out;
}

std::vector<sdnode::LoraFile> lorasFromJs(const Napi::Value& v) {
  if (!v.IsArray()) badField(v.Env(), "loras", "an array");
  Napi::Array array = v.As<Napi::Array>();
  std::vector<sdnode::LoraFile> loras;
  for (uint32_t i = 0; i < array.Length(); i++) {
    Napi::Value entry = array.Get(i);
    if (!entry.IsObject()) badField(v.Env(), "loras", "an array of { path, unetMultiplier, textMultiplier }");
    Napi::Object o = entry.As<Napi::Object>();
    loras.push_back({stringField(o, "path"), static_cast<float>(numberField(o, "unetMultiplier")),
                     static_cast<float>(numberField(o, "textMultiplier"))});
  }
  return loras;
}

sdnode::EncodedText encodedTextFromJs(const Napi::Object& o) {
  sdnode::EncodedText t;
  // Optional: ComfyUI's ControlNet units on the conditioning.
  if (!o.Get("controls").IsUndefined()) t.controls = controlUnitsFromJs(o.Get("controls"));
  t.hidden = typedArrayField<float, napi_float32_array>(o, "hidden", false);
  t.tokens = intField(o, "tokens");
  t.pooled = typedArrayField<float, napi_float32_array>(o, "pooled", true);
  t.mask = typedArrayField<float, napi_float32_array>(o, "mask", true);
  return t;
}

sdnode::TextRequest textRequestFromJs(const Napi::Object& o) {
  sdnode::TextRequest r;
  r.prompt = conditioningField(o, "prompt");
  if (!o.Get("clipG").IsUndefined()) r.clipG = conditioningField(o, "clipG");
  if (!o.Get("t5").IsUndefined()) r.t5 = conditioningField(o, "t5");
  if (!o.Get("llm").IsUndefined()) r.llm = conditioningField(o, "llm");
  r.clipSkip = intField(o, "clipSkip");
  if (!o.Get("loras").IsUndefined()) r.loras = lorasFromJs(o.Get("loras"));
  return r;
}

sdnode::LatentBatch latentFromJs(const Napi::Object& o) {
  sdnode::LatentBatch l;
  l.width = intField(o, "width");
  l.height = intField(o, "height");
  l.channels = intField(o, "channels");
  l.batch = intField(o, "batch");
  l.data = typedArrayField<float, napi_float32_array>(o, "data", false);
  l.noiseMask = typedArrayField<float, napi_float32_array>(o, "noiseMask", true);
  return l;
}

namespace {

// An array of encoded texts (absent: none).
std::vector<sdnode::EncodedText> encodedTextsFromJs(const Napi::Object& o, const char* name) {
  const Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return {};
  if (!v.IsArray()) badField(o.Env(), name, "an array of encoded texts");
  const Napi::Array array = v.As<Napi::Array>();
  std::vector<sdnode::EncodedText> texts;
  for (uint32_t i = 0; i < array.Length(); i++) {
    const Napi::Value entry = array.Get(i);
    if (!entry.IsObject()) badField(o.Env(), name, "an array of encoded texts");
    texts.push_back(encodedTextFromJs(entry.As<Napi::Object>()));
  }
  return texts;
}

}  // namespace

sdnode::SampleRequest sampleRequestFromJs(const Napi::Object& o) {
  sdnode::SampleRequest r;
  r.sampler = stringField(o, "sampler");
  r.scheduler = stringField(o, "scheduler");
  r.steps = intField(o, "steps");
  r.cfgScale = static_cast<float>(numberField(o, "cfgScale"));
  r.seed = seedField(o, "seed");
  r.rng = stringField(o, "rng");
  r.denoise = static_cast<float>(numberField(o, "denoise"));
  r.startStep = intField(o, "startStep");
  r.endStep = intField(o, "endStep");
  r.forceFullDenoise = boolField(o, "forceFullDenoise");
  r.addNoise = boolField(o, "addNoise");
  r.previewEvery = intField(o, "previewEvery");
  if (!o.Get("guidance").IsUndefined()) r.guidance = static_cast<float>(numberField(o, "guidance"));
  if (!o.Get("flowShift").IsUndefined()) r.flowShift = static_cast<float>(numberField(o, "flowShift"));
  if (!o.Get("loras").IsUndefined()) r.loras = lorasFromJs(o.Get("loras"));
  r.positive = encodedTextsFromJs(o, "positive");
  r.negative = encodedTextsFromJs(o, "negative");
  return r;
}

namespace {

Napi::Float32Array floatsToJs(Napi::Env env, const std::vector<float>& values) {
  Napi::Float32Array array = Napi::Float32Array::New(env, values.size());
  std::copy(values.begin(), values.end(), array.Data());
  return array;
}

}  // namespace

Napi::Object encodedTextToJs(Napi::Env env, const sdnode::EncodedText& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("hidden", floatsToJs(env, t.hidden));
  o.Set("tokens", static_cast<double>(t.tokens));
  o.Set("pooled", floatsToJs(env, t.pooled));
  if (!t.mask.empty()) o.Set("mask", floatsToJs(env, t.mask));
  return o;
}

Napi::Object latentToJs(Napi::Env env, const sdnode::LatentBatch& l) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("width", l.width);
  o.Set("height", l.height);
  o.Set("channels", l.channels);
  o.Set("batch", l.batch);
  o.Set("data", floatsToJs(env, l.data));
  if (!l.noiseMask.empty()) o.Set("noiseMask", floatsToJs(env, l.noiseMask));
  return o;
}

Napi::Object progressToJs(Napi::Env env, const sdnode::Progress& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("step", p.step);
  o.Set("steps", p.steps);
  o.Set("pass", p.pass);
  o.Set("passStep", p.passStep);
  o.Set("passSteps", p.passSteps);
  o.Set("image", p.image);
  o.Set("images", p.images);
  o.Set("elapsedMs", p.elapsedMs);
  if (p.preview) {
    Napi::Object preview = Napi::Object::New(env);
    preview.Set("width", p.preview->width);
    preview.Set("height", p.preview->height);
    preview.Set("data", bytesToJs(env, p.preview->rgb));
    o.Set("preview", preview);
  }
  return o;
}

Napi::Object convertProgressToJs(Napi::Env env, const sdnode::ConvertProgress& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("tensor", p.tensor);
  o.Set("tensors", p.tensors);
  return o;
}

Napi::Object convertResultToJs(Napi::Env env, const sdnode::ConvertResult& result) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("bytes", static_cast<double>(result.bytes));
  o.Set("tensors", result.tensors);
  o.Set("types", countsToJs(env, result.types));
  o.Set("skipped", stringsToJs(env, result.skipped));
  return o;
}

Napi::Array imagesToJs(Napi::Env env, const std::vector<sdnode::Image>& images) {
  Napi::Array out = Napi::Array::New(env, images.size());
  for (size_t i = 0; i < images.size(); i++) {
    const sdnode::Image& image = images[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("width", image.width);
    o.Set("height", image.height);
    o.Set("seed", static_cast<double>(image.seed));
    o.Set("subseed", static_cast<double>(image.subseed));
    o.Set("data", bytesToJs(env, image.rgb));
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

Napi::Object safetyCheckerInfoToJs(Napi::Env env, const sdnode::SafetyCheckerInfo& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("imageSize", info.imageSize);
  o.Set("concepts", info.concepts);
  o.Set("specialConcepts", info.specialConcepts);
  o.Set("weightBytes", static_cast<double>(info.weightBytes));
  o.Set("backend", info.backend);
  return o;
}

Napi::Object upscalerInfoToJs(Napi::Env env, const sdnode::UpscalerInfo& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("architecture", info.architecture);
  o.Set("scale", info.scale);
  o.Set("blocks", info.blocks);
  o.Set("features", info.features);
  o.Set("weightBytes", static_cast<double>(info.weightBytes));
  o.Set("backend", info.backend);
  return o;
}

Napi::Array verdictsToJs(Napi::Env env, const std::vector<sdnode::SafetyVerdict>& verdicts) {
  auto floats = [&](const std::vector<float>& values) {
    Napi::Float32Array array = Napi::Float32Array::New(env, values.size());
    std::copy(values.begin(), values.end(), array.Data());
    return array;
  };
  Napi::Array out = Napi::Array::New(env, verdicts.size());
  for (size_t i = 0; i < verdicts.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("nsfw", verdicts[i].nsfw);
    o.Set("specialCare", verdicts[i].specialCare);
    o.Set("conceptScores", floats(verdicts[i].conceptScores));
    o.Set("specialScores", floats(verdicts[i].specialScores));
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

Napi::Error errorToJs(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

}  // namespace sdnode_addon

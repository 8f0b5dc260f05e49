// LoRA files (kohya, diffusers / PEFT names, LoCon convolutions) read and checked whole before a
// single weight changes, then merged tensor by tensor with the original bytes kept for restoring.
#include "lora.h"

#include <algorithm>
#include <cstring>
#include <system_error>
#include <thread>

#include "file_io.h"
#include "ggml-cpu.h"
#include "gguf_file.h"
#include "safetensors.h"
#include "weight_types.h"

namespace sdnode {

namespace {

enum class Role { Down, Up, Alpha };

// Tensor name endings of the LoRA formats we apply; longer ones first, as ".down.weight" (diffusers'
// old attention processors) ends the others too.
const std::pair<const char*, Role> kSuffixes[] = {
    {".lora_linear_layer.down.weight", Role::Down}, {".lora_linear_layer.up.weight", Role::Up},
    {".lora_down.weight", Role::Down},              {".lora_up.weight", Role::Up},
    {".lora.down.weight", Role::Down},              {".lora.up.weight", Role::Up},
    {".lora_A.weight", Role::Down},                 {".lora_B.weight", Role::Up},
    {".down.weight", Role::Down},                   {".up.weight", Role::Up},
    {".alpha", Role::Alpha},
};

// Name parts of adapter kinds other than LoRA / LoCon, which change weights by other formulas.
const std::pair<const char*, const char*> kOtherKinds[] = {
    {"hada_", "LoHa"},  {"lokr_", "LoKr"},     {".lora_mid.", "LoCon with Tucker decomposition (lora_mid)"},
    {"dora_scale", "DoRA"}, {".oft_", "OFT"}, {".diff", "full weight differences"},
};

struct Matrix {
  std::vector<int64_t> shape;  // outermost first
  std::vector<float> values;
};

struct Module {
  std::string name;  // as the file spells it, for messages
  const CheckpointTensor* down = nullptr;
  const CheckpointTensor* up = nullptr;
  const CheckpointTensor* alpha = nullptr;
};

// One module ready to merge: delta = scale · up[rows × rank] · down[rank × cols].
struct Update {
  LoraTarget target;
  int64_t rank = 0;
  int64_t cols = 0;
  float scale = 0;
  std::vector<float> up;
  std::vector<float> down;
};

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool endsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Checkpoint openLoraFile(const std::string& path) {
  char magic[4] = {};
  {
    InputFile probe(path);
    if (probe.size() >= 4) probe.readAt(0, magic, 4);
  }
  return std::memcmp(magic, "GGUF", 4) == 0 ? readGguf(path) : readSafetensors(path);
}

std::vector<float> readValues(InputFile& input, const std::string& path, const CheckpointTensor& t) {
  if (t.type == GGML_TYPE_COUNT || (t.type != GGML_TYPE_F32 && !ggml_get_type_traits(t.type)->to_float)) {
    throw Error(ErrorCode::ModelFormat, "LoRA " + path + ": tensor '" + t.name + "' has dtype " + t.typeName +
                                            "; LoRA tensors must be float (F32, F16, BF16) or quantized");
  }
  std::vector<uint8_t> raw(t.bytes);
  input.readAt(t.offset, raw.data(), t.bytes);
  std::vector<float> values(static_cast<size_t>(t.elements()));
  if (t.type == GGML_TYPE_F32) {
    std::memcpy(values.data(), raw.data(), values.size() * sizeof(float));
  } else {
    ggml_get_type_traits(t.type)->to_float(raw.data(), values.data(), t.elements());
  }
  return values;
}

// Groups the file's tensors by module; anything we would not apply faithfully is an error.
std::map<std::string, Module> modulesOf(const Checkpoint& file) {
  std::map<std::string, Module> modules;
  for (const auto& [name, t] : file.tensors) {
    for (const auto& [part, kind] : kOtherKinds) {
      if (name.find(part) != std::string::npos) {
        throw Error(ErrorCode::ModelUnsupported, "LoRA " + file.path + ": tensor '" + name + "' belongs to a " + kind +
                                                     " adapter; sdnode applies LoRA and LoCon only");
      }
    }
    // Textual-inversion embeddings bundled with a LoRA are a prompt feature, not a weight update.
    if (name.rfind("bundle_emb.", 0) == 0) continue;
    bool known = false;
    for (const auto& [suffix, role] : kSuffixes) {
      if (!endsWith(name, suffix)) continue;
      const std::string moduleName = name.substr(0, name.size() - std::strlen(suffix));
      Module& m = modules[moduleName];
      m.name = moduleName;
      (role == Role::Down ? m.down : role == Role::Up ? m.up : m.alpha) = &t;
      known = true;
      break;
    }
    if (!known) {
      throw Error(ErrorCode::ModelFormat, "LoRA " + file.path + ": tensor '" + name +
                                              "' is not part of a LoRA module (expected names ending in .lora_down.weight, "
                                              ".lora_up.weight, .alpha, .lora_A.weight or .lora_B.weight)");
    }
  }
  return modules;
}

std::vector<Update> readUpdates(const std::string& family, const std::map<std::string, LoraTarget>& targets,
                                const Checkpoint& model, Weights& weights, const LoraFile& lora) {
  const Checkpoint file = openLoraFile(lora.path);
  const std::map<std::string, Module> modules = modulesOf(file);
  if (modules.empty()) throw Error(ErrorCode::ModelFormat, "LoRA " + lora.path + ": the file holds no LoRA modules");
  std::vector<std::string> unmatched;
  std::vector<Update> updates;
  InputFile input(lora.path);
  for (const auto& [moduleName, m] : modules) {
    if (!m.down || !m.up) {
      throw Error(ErrorCode::ModelFormat, "LoRA " + lora.path + ": module '" + moduleName + "' lacks its " +
                                              (m.down ? "up" : "down") + " matrix");
    }
    const std::string kohya = moduleName.rfind("lora_", 0) == 0 ? moduleName : kohyaModuleName(family, moduleName);
    auto found = targets.find(kohya);
    if (found == targets.end()) {
      unmatched.push_back(moduleName);
      continue;
    }
    const LoraTarget& target = found->second;
    const float multiplier = target.unet ? lora.unetMultiplier : lora.textMultiplier;
    if (multiplier == 0.0f) continue;
    const std::vector<int64_t>& down = m.down->shape;
    const std::vector<int64_t>& up = m.up->shape;
    const std::vector<int64_t>& weight = model.tensors.at(target.tensor).shape;
    const int64_t rank = down.empty() ? 0 : down[0];
    const int64_t rows = target.rows ? target.rows : weight[0];
    const bool upIsMatrix = up.size() >= 2 && up[1] == rank && elements(up) == up[0] * rank;
    if (rank <= 0 || !upIsMatrix || up[0] != rows || elements(down) / rank != elements(weight) / weight[0]) {
      throw Error(ErrorCode::ModelUnsupported,
                  "LoRA " + lora.path + ": module '" + moduleName + "' (down " + shapeText(down) + ", up " + shapeText(up) +
                      ") does not fit weight '" + target.tensor + "' " + shapeText(weight) +
                      (target.rows ? " (rows " + std::to_string(target.firstRow) + "+" + std::to_string(rows) + ")" : "") +
                      " of this " + family + " model; the LoRA is probably for another model family");
    }
    if (!weights.find(target.tensor)) {
      throw Error(ErrorCode::ModelUnsupported, "LoRA " + lora.path + ": weight '" + target.tensor + "' is not loaded");
    }
    Update u;
    u.target = target;
    u.rank = rank;
    u.cols = elements(down) / rank;
    float alpha = static_cast<float>(rank);
    if (m.alpha) {
      const std::vector<float> a = readValues(input, lora.path, *m.alpha);
      if (a.size() != 1) throw Error(ErrorCode::ModelFormat, "LoRA " + lora.path + ": '" + m.alpha->name + "' must hold one number");
      alpha = a[0];
    }
    u.scale = multiplier * alpha / static_cast<float>(rank);
    u.up = readValues(input, lora.path, *m.up);
    u.down = readValues(input, lora.path, *m.down);
    updates.push_back(std::move(u));
  }
  if (!unmatched.empty()) {
    const bool none = unmatched.size() == modules.size();
    throw Error(ErrorCode::ModelUnsupported,
                "LoRA " + lora.path + ": " + (none ? "none" : std::to_string(unmatched.size())) + " of its " +
                    std::to_string(modules.size()) + " modules match" + (none ? "" : " no") + " weights of this " + family +
                    " model (e.g. '" + unmatched.front() + "'); the LoRA is probably for another model family");
  }
  return updates;
}

// Runs fn(first, count) over `items` split across up to `threads` threads, `minimum` items or more each.
template <typename Fn>
void parallelFor(int64_t items, int64_t minimum, int threads, Fn fn) {
  const int64_t slices = std::max<int64_t>(1, std::min<int64_t>(threads, items / minimum));
  const int64_t perSlice = (items + slices - 1) / slices;
  std::vector<std::thread> workers;
  int64_t first = perSlice;
  try {
    for (; first < items; first += perSlice) workers.emplace_back(fn, first, std::min(perSlice, items - first));
  } catch (const std::system_error&) {
    for (; first < items; first += perSlice) fn(first, std::min(perSlice, items - first));
  }
  fn(0, std::min(perSlice, items));
  for (std::thread& worker : workers) worker.join();
}

void addUpdate(std::vector<float>& w, const Update& u, int threads) {
  const int64_t rows = u.target.rows ? u.target.rows : static_cast<int64_t>(w.size()) / u.cols;
  parallelFor(rows, 64, threads, [&](int64_t first, int64_t count) {
    for (int64_t o = first; o < first + count; o++) {
      float* row = w.data() + (u.target.firstRow + o) * u.cols;
      for (int64_t k = 0; k < u.rank; k++) {
        const float a = u.scale * u.up[o * u.rank + k];
        const float* d = u.down.data() + k * u.cols;
        for (int64_t j = 0; j < u.cols; j++) row[j] += a * d[j];
      }
    }
  });
}

// f16 goes through the CPU backend's vectorised conversions (ggml's generic row converters are
// scalar, and f16 is what nearly every checkpoint keeps); both round to nearest even.
constexpr int64_t kMinConvertPerThread = 1 << 16;

void residentToFloat(const ggml_tensor* tensor, const uint8_t* bytes, std::vector<float>& w, int threads) {
  const int64_t n = ggml_nelements(tensor);
  w.resize(static_cast<size_t>(n));
  if (tensor->type == GGML_TYPE_F32) {
    std::memcpy(w.data(), bytes, n * sizeof(float));
  } else if (tensor->type == GGML_TYPE_F16) {
    const auto* halves = reinterpret_cast<const ggml_fp16_t*>(bytes);
    parallelFor(n, kMinConvertPerThread, threads, [&](int64_t first, int64_t count) {
      ggml_cpu_fp16_to_fp32(halves + first, w.data() + first, count);
    });
  } else {
    ggml_get_type_traits(tensor->type)->to_float(bytes, w.data(), n);
  }
}

// Back into the resident type as the loader converts (weight_types.cpp): rounding or quantizing.
void floatToResident(const std::vector<float>& w, const CheckpointTensor& stored, ggml_tensor* tensor, std::vector<uint8_t>& out,
                     int threads, std::vector<float>& scratch) {
  out.resize(ggml_nbytes(tensor));
  const int64_t n = ggml_nelements(tensor);
  if (tensor->type == GGML_TYPE_F16) {
    auto* halves = reinterpret_cast<ggml_fp16_t*>(out.data());
    parallelFor(n, kMinConvertPerThread, threads, [&](int64_t first, int64_t count) {
      ggml_cpu_fp32_to_fp16(w.data() + first, halves + first, count);
    });
    return;
  }
  CheckpointTensor staged;
  staged.name = stored.name;
  staged.type = GGML_TYPE_F32;
  staged.shape = stored.shape;
  convertWeight(staged, w.data(), tensor->type, out.data(), threads, scratch);
}

// The bytes Weights::load makes of `t` for the resident `tensor`: the stored bytes as they are, or
// converted by the same function (weight_types.cpp), which is deterministic.
void residentFromFile(InputFile& input, const CheckpointTensor& t, const ggml_tensor* tensor, std::vector<uint8_t>& out,
                      std::vector<uint8_t>& raw, std::vector<float>& scratch, int threads) {
  out.resize(ggml_nbytes(tensor));
  if (tensor->type == t.type && t.bytes == out.size()) {
    input.readAt(t.offset, out.data(), t.bytes);
    return;
  }
  raw.resize(t.bytes);
  input.readAt(t.offset, raw.data(), t.bytes);
  convertWeight(t, raw.data(), tensor->type, out.data(), threads, scratch);
}

// 64-bit FNV-1a over 8-byte words (and the tail byte by byte): tells a changed file from the bytes
// loaded, not meant against tampering.
uint64_t digestOf(const std::vector<uint8_t>& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes.data() + i, 8);
    h = (h ^ word) * 0x100000001b3ull;
  }
  for (; i < bytes.size(); i++) h = (h ^ bytes[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace

LoraMerge::LoraMerge(const std::string& family, const Checkpoint& model, Weights& weights, const std::vector<LoraFile>& loras,
                     int threads, std::string& stale)
    : model_(model), threads_(threads), stale_(stale) {
  if (loras.empty()) return;
  const std::map<std::string, LoraTarget> targets = loraTargets(family, model);
  std::map<std::string, std::vector<Update>> byTensor;
  for (const LoraFile& lora : loras) {
    if (lora.unetMultiplier == 0.0f && lora.textMultiplier == 0.0f) continue;
    for (Update& u : readUpdates(family, targets, model, weights, lora)) byTensor[u.target.tensor].push_back(std::move(u));
  }
  try {
    InputFile input(model.path);
    std::vector<float> w;
    std::vector<float> scratch;
    std::vector<uint8_t> original, fromFile, raw, merged;
    for (const auto& [name, updates] : byTensor) {
      ggml_tensor* tensor = weights.find(name);
      const CheckpointTensor& stored = model.tensors.at(name);
      original.resize(ggml_nbytes(tensor));
      ggml_backend_tensor_get(tensor, original.data(), 0, original.size());
      residentFromFile(input, stored, tensor, fromFile, raw, scratch, threads);
      residentToFloat(tensor, original.data(), w, threads);
      touched_.push_back({tensor, &stored, digestOf(original), fromFile == original ? std::vector<uint8_t>() : original});
      for (const Update& u : updates) addUpdate(w, u, threads);
      floatToResident(w, model.tensors.at(name), tensor, merged, threads, scratch);
      ggml_backend_tensor_set(tensor, merged.data(), 0, merged.size());
    }
  } catch (...) {
    restore();
    throw;
  }
}

LoraMerge::~LoraMerge() { restore(); }

void LoraMerge::restore() noexcept {
  if (touched_.empty()) return;
  try {
    InputFile input(model_.path);
    std::vector<uint8_t> bytes, raw;
    std::vector<float> scratch;
    for (Touched& t : touched_) {
      if (!t.copy.empty()) {
        ggml_backend_tensor_set(t.tensor, t.copy.data(), 0, t.copy.size());
        continue;
      }
      residentFromFile(input, *t.stored, t.tensor, bytes, raw, scratch, threads_);
      if (digestOf(bytes) != t.digest) throw Error(ErrorCode::ModelIo, "tensor '" + t.stored->name + "' differs from the loaded one");
      ggml_backend_tensor_set(t.tensor, bytes.data(), 0, bytes.size());
    }
  } catch (const std::exception& e) {
    stale_ = model_.path + ": the weights a LoRA changed could not be restored from the checkpoint (" + e.what() +
             "; was the file changed or removed?); load the model again";
  }
  touched_.clear();
}

}  // namespace sdnode

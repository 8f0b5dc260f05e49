// LoRA files (kohya, diffusers / PEFT names, LoCon convolutions, LyCORIS LoHa and LoKr, DoRA's
// magnitudes on any of them) read and checked whole before a single weight changes, then merged tensor by tensor with the original bytes kept for restoring.
#include "lora.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <system_error>
#include <thread>

#include "file_io.h"
#include "ggml-cpu.h"
#include "gguf_file.h"
#include "lora_factor.h"
#include "safetensors.h"
#include "weight_types.h"

namespace sdnode {

namespace {

// Tensor name endings of the adapter formats we apply, by the part each names; longer ones first, as
// ".down.weight" (diffusers' old attention processors) ends the others too.
const std::pair<const char*, const char*> kSuffixes[] = {
    {".lora_linear_layer.down.weight", "down"}, {".lora_linear_layer.up.weight", "up"},
    {".lora_down.weight", "down"},              {".lora_up.weight", "up"},
    {".lora.down.weight", "down"},              {".lora.up.weight", "up"},
    {".lora_A.weight", "down"},                 {".lora_B.weight", "up"},
    {".down.weight", "down"},                   {".up.weight", "up"},
    {".hada_w1_a", "hada_w1_a"}, {".hada_w1_b", "hada_w1_b"}, {".hada_w2_a", "hada_w2_a"}, {".hada_w2_b", "hada_w2_b"},
    {".hada_t1", "hada_t1"},     {".hada_t2", "hada_t2"},
    {".lokr_w1_a", "lokr_w1_a"}, {".lokr_w1_b", "lokr_w1_b"}, {".lokr_w2_a", "lokr_w2_a"}, {".lokr_w2_b", "lokr_w2_b"},
    {".lokr_w1", "lokr_w1"},     {".lokr_w2", "lokr_w2"},     {".lokr_t2", "lokr_t2"},
    {".alpha", "alpha"},       {".dora_scale", "dora_scale"},
    {".lora_magnitude_vector.weight", "dora_scale"}, {".lora_magnitude_vector", "dora_scale"},  // PEFT's DoRA
};

// Name parts of adapter kinds we do not apply, which change weights by other formulas.
const std::pair<const char*, const char*> kOtherKinds[] = {
    {".lora_mid.", "LoCon with Tucker decomposition (lora_mid)"},
    {".oft_", "OFT"}, {".diff", "full weight differences"},
};

struct Module {
  std::string name;  // as the file spells it, for messages
  std::map<std::string, const CheckpointTensor*> parts;  // by kSuffixes' part name
  const CheckpointTensor* part(const char* which) const {
    auto found = parts.find(which);
    return found == parts.end() ? nullptr : found->second;
  }
};

enum class Kind { LoRA, LoHa, LoKr };

// One module ready to merge, delta [rows × cols] times `scale`:
//   LoRA  first (up · down)
//   LoHa  first ⊙ second (each a product), elementwise
//   LoKr  kron(first, second): row p · second.rows + r, column q · second.cols + c holds
//         first[p, q] · second[r, c]
struct Update {
  LoraTarget target;
  Kind kind = Kind::LoRA;
  int64_t cols = 0;
  float scale = 0;
  Factor first, second;
  // DoRA: the magnitudes (dora_scale) the updated weight is renormalised to, one per output row
  // (`perRow`) or per input channel, and the LoRA's multiplier, which then blends the original
  // weight with the renormalised one instead of scaling the difference (`scale` is alpha / rank).
  std::vector<float> magnitude;
  bool perRow = true;
  float strength = 1.0f;
  int64_t kernel = 1;
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
                                                     " adapter; sdnode applies LoRA, LoCon, LoHa and LoKr");
      }
    }
    // Textual-inversion embeddings bundled with a LoRA are a prompt feature, not a weight update.
    if (name.rfind("bundle_emb.", 0) == 0) continue;
    bool known = false;
    for (const auto& [suffix, part] : kSuffixes) {
      if (!endsWith(name, suffix)) continue;
      const std::string moduleName = name.substr(0, name.size() - std::strlen(suffix));
      Module& m = modules[moduleName];
      m.name = moduleName;
      m.parts[part] = &t;
      known = true;
      break;
    }
    if (!known) {
      throw Error(ErrorCode::ModelFormat, "LoRA " + file.path + ": tensor '" + name +
                                              "' is not part of a LoRA module (expected names ending in .lora_down.weight, "
                                              ".lora_up.weight, .alpha, .lora_A.weight, .lora_B.weight, .hada_*, .lokr_* or .dora_scale)");
    }
  }
  return modules;
}

// Reads one module's factors and checks them against the weight they change; throws with `misfit`
// (the shapes, for the message) where they do not fit.
class ModuleReader {
 public:
  ModuleReader(InputFile& input, const std::string& path, const Module& m, int64_t kernel)
      : input_(input), path_(path), m_(m), kernel_(kernel) {}

  // a · b with a [rows × rank], b [rank × cols], or LyCORIS's Tucker form where `core` is present.
  Factor product(const char* aName, const char* bName, const char* coreName, int64_t rows, int64_t cols) {
    const CheckpointTensor* a = need(aName);
    const CheckpointTensor* b = need(bName);
    const CheckpointTensor* core = coreName ? m_.part(coreName) : nullptr;
    Factor f;
    f.rows = rows;
    f.cols = cols;
    f.rank = a->shape.size() >= 2 ? (core ? a->shape[0] : a->shape[1]) : 0;
    if (core) {
      f.kernel = kernel_;
      const bool fits = f.rank > 0 && kernel_ > 0 && a->shape.size() == 2 && a->shape[1] == rows && b->shape.size() == 2 &&
                        b->shape[0] == f.rank && b->shape[1] * kernel_ == cols && elements(core->shape) == f.rank * f.rank * kernel_;
      if (!fits) misfit();
      f.core = readValues(input_, path_, *core);
    } else {
      if (f.rank <= 0 || elements(a->shape) != rows * f.rank || b->shape.empty() || b->shape[0] != f.rank ||
          elements(b->shape) != f.rank * cols) {
        misfit();
      }
    }
    f.a = readValues(input_, path_, *a);
    f.b = readValues(input_, path_, *b);
    return f;
  }

  // A LoKr factor: whole (`fullName`) or split into a · b.
  Factor lokrFactor(const char* fullName, const char* aName, const char* bName, const char* coreName, int64_t rows, int64_t cols) {
    if (const CheckpointTensor* full = m_.part(fullName)) {
      if (elements(full->shape) != rows * cols || full->shape.empty() || full->shape[0] != rows) misfit();
      Factor f;
      f.rows = rows;
      f.cols = cols;
      f.full = readValues(input_, path_, *full);
      return f;
    }
    return product(aName, bName, coreName, rows, cols);
  }

  const CheckpointTensor* need(const char* which) {
    const CheckpointTensor* t = m_.part(which);
    if (!t) throw Error(ErrorCode::ModelFormat, "LoRA " + path_ + ": module '" + m_.name + "' lacks its " + which + " tensor");
    return t;
  }

  [[noreturn]] void misfit() {
    std::string shapes;
    for (const auto& [part, t] : m_.parts) {
      if (std::string(part) != "alpha") shapes += (shapes.empty() ? "" : ", ") + std::string(part) + " " + shapeText(t->shape);
    }
    throw Error(ErrorCode::ModelUnsupported, "LoRA " + path_ + ": module '" + m_.name + "' (" + shapes + ") does not fit " + target_ +
                                                 "; the LoRA is probably for another model family");
  }

  std::string target_;

 private:
  InputFile& input_;
  const std::string& path_;
  const Module& m_;
  int64_t kernel_;
};

Kind kindOf(const Module& m) {
  bool loha = false, lokr = false;
  for (const auto& [part, t] : m.parts) {
    loha = loha || part.rfind("hada_", 0) == 0;
    lokr = lokr || part.rfind("lokr_", 0) == 0;
  }
  return loha ? Kind::LoHa : lokr ? Kind::LoKr : Kind::LoRA;
}

// kron(w1, w2) fills [rows × cols] with w1 [o1 × i1] and w2 [rows / o1 × cols / i1]: the sizes of w1
// come from the file (lokr_w1, or lokr_w1_a's rows and lokr_w1_b's columns).
std::pair<int64_t, int64_t> lokrFirstShape(ModuleReader& reader, const Module& m) {
  if (const CheckpointTensor* w1 = m.part("lokr_w1")) {
    if (w1->shape.size() < 2) reader.misfit();
    return {w1->shape[0], elements(w1->shape) / w1->shape[0]};
  }
  const CheckpointTensor* a = reader.need("lokr_w1_a");
  const CheckpointTensor* b = reader.need("lokr_w1_b");
  if (a->shape.size() != 2 || b->shape.size() < 2) reader.misfit();
  return {a->shape[0], elements(b->shape) / b->shape[0]};
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
    const Kind kind = kindOf(m);
    if (kind == Kind::LoRA && (!m.part("down") || !m.part("up"))) {
      throw Error(ErrorCode::ModelFormat, "LoRA " + lora.path + ": module '" + moduleName + "' lacks its " +
                                              (m.part("down") ? "up" : "down") + " matrix");
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
    const std::vector<int64_t>& weight = model.tensors.at(target.tensor).shape;
    const int64_t rows = target.rows ? target.rows : weight[0];
    const int64_t cols = elements(weight) / weight[0];
    const int64_t kernel = weight.size() == 4 ? weight[2] * weight[3] : 1;
    ModuleReader reader(input, lora.path, m, kernel);
    reader.target_ = "weight '" + target.tensor + "' " + shapeText(weight) +
                     (target.rows ? " (rows " + std::to_string(target.firstRow) + "+" + std::to_string(rows) + ")" : "") +
                     " of this " + family + " model";
    if (!weights.find(target.tensor)) {
      throw Error(ErrorCode::ModelUnsupported, "LoRA " + lora.path + ": weight '" + target.tensor + "' is not loaded");
    }
    Update u;
    u.target = target;
    u.kind = kind;
    u.cols = cols;
    // The rank alpha divides by; 0 where alpha does not apply (LoKr with both factors whole).
    int64_t rank = 0;
    if (kind == Kind::LoRA) {
      // up [rows, rank(, 1, 1)] · down [rank, cols]: the up matrix is read as a's [rows × rank].
      const std::vector<int64_t>& down = m.part("down")->shape;
      const std::vector<int64_t>& up = m.part("up")->shape;
      rank = down.empty() ? 0 : down[0];
      if (rank <= 0 || up.size() < 2 || up[0] != rows || up[1] != rank || elements(up) != rows * rank ||
          elements(down) != rank * cols) {
        reader.misfit();
      }
      u.first.rows = rows;
      u.first.cols = cols;
      u.first.rank = rank;
      u.first.a = readValues(input, lora.path, *m.part("up"));
      u.first.b = readValues(input, lora.path, *m.part("down"));
    } else if (kind == Kind::LoHa) {
      u.first = reader.product("hada_w1_a", "hada_w1_b", "hada_t1", rows, cols);
      u.second = reader.product("hada_w2_a", "hada_w2_b", "hada_t2", rows, cols);
      rank = u.first.rank;
    } else {
      const auto [o1, i1] = lokrFirstShape(reader, m);
      if (o1 <= 0 || i1 <= 0 || rows % o1 != 0 || cols % i1 != 0) reader.misfit();
      u.first = reader.lokrFactor("lokr_w1", "lokr_w1_a", "lokr_w1_b", nullptr, o1, i1);
      u.second = reader.lokrFactor("lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2", rows / o1, cols / i1);
      // LyCORIS: alpha / rank where a factor is split (the rank of w1's split, else w2's), else 1.
      rank = u.first.rank > 0 ? u.first.rank : u.second.rank;
    }
    float scale = 1.0f;
    if (rank > 0) {
      float alpha = static_cast<float>(rank);
      if (const CheckpointTensor* a = m.part("alpha")) {
        const std::vector<float> values = readValues(input, lora.path, *a);
        if (values.size() != 1) throw Error(ErrorCode::ModelFormat, "LoRA " + lora.path + ": '" + a->name + "' must hold one number");
        alpha = values[0];
      }
      scale = alpha / static_cast<float>(rank);
    }
    u.scale = multiplier * scale;
    if (const CheckpointTensor* dora = m.part("dora_scale")) {
      // [out, 1(, 1, 1)]: a magnitude per output row; [1, in(, 1, 1)]: per input channel.
      const int64_t count = elements(dora->shape);
      const int64_t inputs = cols / kernel;
      u.perRow = !dora->shape.empty() && dora->shape[0] == rows && count == rows;
      if (!u.perRow && !(dora->shape.size() >= 2 && dora->shape[0] == 1 && count == inputs)) reader.misfit();
      if (!u.perRow && target.rows) {
        throw Error(ErrorCode::ModelUnsupported, "LoRA " + lora.path + ": '" + dora->name + "' renormalises input channels of " +
                                                     target.tensor + ", which holds several layers' weights; per-output DoRA only there");
      }
      u.magnitude = readValues(input, lora.path, *dora);
      u.scale = scale;
      u.strength = multiplier;
      u.kernel = kernel;
    }
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

void addDifference(std::vector<float>& w, Update& u, int threads) {
  u.first.expandTucker();
  u.second.expandTucker();
  const int64_t rows = u.target.rows ? u.target.rows : static_cast<int64_t>(w.size()) / u.cols;
  parallelFor(rows, 64, threads, [&](int64_t first, int64_t count) {
    std::vector<float> one(static_cast<size_t>(u.cols)), two(static_cast<size_t>(u.cols));
    for (int64_t o = first; o < first + count; o++) {
      float* row = w.data() + (u.target.firstRow + o) * u.cols;
      if (u.kind == Kind::LoRA) {
        // Σ_k up[o, k] · down[k, :], without a row buffer: LoRA is the common case.
        for (int64_t k = 0; k < u.first.rank; k++) {
          const float a = u.scale * u.first.a[o * u.first.rank + k];
          const float* d = u.first.b.data() + k * u.cols;
          for (int64_t j = 0; j < u.cols; j++) row[j] += a * d[j];
        }
      } else if (u.kind == Kind::LoHa) {
        u.first.row(o, one.data());
        u.second.row(o, two.data());
        for (int64_t j = 0; j < u.cols; j++) row[j] += u.scale * (one[j] * two[j]);
      } else {
        const int64_t o2 = u.second.rows, c2 = u.second.cols;
        u.first.row(o / o2, one.data());
        u.second.row(o % o2, two.data());
        for (int64_t j1 = 0; j1 < u.first.cols; j1++) {
          const float x = u.scale * one[j1];
          float* out = row + j1 * c2;
          for (int64_t j2 = 0; j2 < c2; j2++) out[j2] += x * two[j2];
        }
      }
    }
  });
}

// DoRA (weight-decomposed LoRA), as LyCORIS and ComfyUI merge it: W' = W + strength · (m · V / ‖V‖
// − W) with V = W + ΔW, the norm taken over each output row or each input channel (its kernel
// positions and all rows), as the magnitudes m are laid out.
void addDecomposed(std::vector<float>& w, Update& u, int threads) {
  std::vector<float> v(w);
  addDifference(v, u, threads);
  const int64_t rows = u.target.rows ? u.target.rows : static_cast<int64_t>(w.size()) / u.cols;
  const int64_t offset = u.target.firstRow * u.cols;
  constexpr double kEpsilon = 1.1920929e-7;  // f32's, added to each norm as LyCORIS does
  std::vector<double> norms(u.perRow ? static_cast<size_t>(rows) : u.magnitude.size(), 0.0);
  for (int64_t o = 0; o < rows; o++) {
    const float* row = v.data() + offset + o * u.cols;
    for (int64_t j = 0; j < u.cols; j++) norms[u.perRow ? o : j / u.kernel] += static_cast<double>(row[j]) * row[j];
  }
  for (double& n : norms) n = std::sqrt(n) + kEpsilon;
  parallelFor(rows, 64, threads, [&](int64_t first, int64_t count) {
    for (int64_t o = first; o < first + count; o++) {
      float* out = w.data() + offset + o * u.cols;
      const float* updated = v.data() + offset + o * u.cols;
      for (int64_t j = 0; j < u.cols; j++) {
        const size_t which = static_cast<size_t>(u.perRow ? o : j / u.kernel);
        const float renormalised = static_cast<float>(updated[j] * (u.magnitude[which] / norms[which]));
        out[j] += u.strength * (renormalised - out[j]);
      }
    }
  });
}

void addUpdate(std::vector<float>& w, Update& u, int threads) {
  if (u.magnitude.empty()) {
    addDifference(w, u, threads);
  } else {
    addDecomposed(w, u, threads);
  }
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
    for (auto& [name, updates] : byTensor) {
      ggml_tensor* tensor = weights.find(name);
      const CheckpointTensor& stored = model.tensors.at(name);
      original.resize(ggml_nbytes(tensor));
      ggml_backend_tensor_get(tensor, original.data(), 0, original.size());
      residentFromFile(input, stored, tensor, fromFile, raw, scratch, threads);
      residentToFloat(tensor, original.data(), w, threads);
      touched_.push_back({tensor, &stored, digestOf(original), fromFile == original ? std::vector<uint8_t>() : original});
      for (Update& u : updates) addUpdate(w, u, threads);
      updates = {};  // a Tucker factor's expanded difference is as large as the weight
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

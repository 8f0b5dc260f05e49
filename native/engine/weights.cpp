#include "weights.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <system_error>
#include <thread>

#include "file_io.h"
#include "sdnode.h"

namespace sdnode {

namespace {

struct WeightTypeName {
  const char* name;
  ggml_type type;
};

constexpr WeightTypeName kWeightTypes[] = {
    {"f32", GGML_TYPE_F32},   {"f16", GGML_TYPE_F16},   {"q8_0", GGML_TYPE_Q8_0}, {"q6_k", GGML_TYPE_Q6_K},
    {"q5_k", GGML_TYPE_Q5_K}, {"q5_1", GGML_TYPE_Q5_1}, {"q5_0", GGML_TYPE_Q5_0}, {"q4_k", GGML_TYPE_Q4_K},
    {"q4_1", GGML_TYPE_Q4_1}, {"q4_0", GGML_TYPE_Q4_0}, {"q3_k", GGML_TYPE_Q3_K}, {"q2_k", GGML_TYPE_Q2_K},
};

bool hasPrefix(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes) {
    if (name.compare(0, p.size(), p) == 0) return true;
  }
  return false;
}

bool contains(const std::string& name, const char* part) { return name.find(part) != std::string::npos; }

// Where a weight goes decides the types it may have there:
// - vectors (biases, norm parameters) and position embeddings meet activations in ggml's add and
//   mul, which want f32 on both sides;
// - convolution kernels (3 or 4 dims) feed ggml's conv_2d, whose kernels are f16 or f32 only;
// - matrices feed mul_mat (linear layers) or get_rows (token embeddings), which take every type.
// Matrices stay as stored (f16, or quantized), unless `requested` names another type: f32 and f16
// apply to every matrix and kernel; a quantized type to float matrices whose rows are whole
// blocks, except embeddings and the time embedding, kept precise as stable-diffusion.cpp's
// converter keeps them. bf16 becomes f32, as the reference engine keeps it.
ggml_type residentType(const CheckpointTensor& t, ggml_type requested) {
  const bool quantized = ggml_is_quantized(t.type);
  const bool embedding = contains(t.name, "embedding");
  if (t.shape.size() <= 1 || contains(t.name, "position_embedding") || contains(t.name, "positional_embedding")) {
    return GGML_TYPE_F32;
  }
  if (requested == GGML_TYPE_F32 || requested == GGML_TYPE_F16) return requested;
  if (t.shape.size() >= 3) return t.type == GGML_TYPE_F16 || quantized ? GGML_TYPE_F16 : GGML_TYPE_F32;
  // get_rows of quantized rows is a CPU-only feature for some types; f16 works everywhere.
  if (quantized && embedding) return GGML_TYPE_F16;
  const bool quantizable = requested != GGML_TYPE_COUNT && !quantized && !embedding && !contains(t.name, "time_embed.") &&
                           t.shape.back() % ggml_blck_size(requested) == 0;
  if (quantizable) return requested;
  return t.type == GGML_TYPE_F16 || quantized ? t.type : GGML_TYPE_F32;
}

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::vector<int64_t> withoutLeadingOnes(std::vector<int64_t> shape) {
  while (!shape.empty() && shape.front() == 1) shape.erase(shape.begin());
  return shape;
}

void convertToF32(const CheckpointTensor& t, const void* raw, float* out) {
  const int64_t n = t.elements();
  if (t.type == GGML_TYPE_F32) {
    std::memcpy(out, raw, n * sizeof(float));
  } else {
    ggml_get_type_traits(t.type)->to_float(raw, out, n);
  }
}

// ggml_quantize_chunk over `threads` slices of whole rows; small tensors stay on this thread.
void quantizeRows(ggml_type type, const float* src, void* dst, int64_t rows, int64_t rowLength, int threads) {
  constexpr int64_t kMinValuesPerThread = 1 << 20;
  const int64_t useful = std::max<int64_t>(1, rows * rowLength / kMinValuesPerThread);
  const int64_t slices = std::min<int64_t>({static_cast<int64_t>(std::max(threads, 1)), useful, rows});
  const int64_t perSlice = (rows + slices - 1) / slices;
  auto quantize = [=](int64_t first) {
    const int64_t count = std::min(perSlice, rows - first);
    ggml_quantize_chunk(type, src, dst, first * rowLength, count, rowLength, nullptr);
  };
  std::vector<std::thread> workers;
  int64_t first = perSlice;
  try {
    for (; first < rows; first += perSlice) workers.emplace_back(quantize, first);
  } catch (const std::system_error&) {
    // No more threads to be had: this thread does the rest.
    for (; first < rows; first += perSlice) quantize(first);
  }
  quantize(0);
  for (std::thread& worker : workers) worker.join();
}

}  // namespace

ggml_type parseWeightType(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "auto") return GGML_TYPE_COUNT;
  std::string allowed = "auto";
  for (const WeightTypeName& entry : kWeightTypes) {
    if (lower == entry.name) return entry.type;
    allowed += std::string(", ") + entry.name;
  }
  throw Error(ErrorCode::InvalidArgument, "weightType must be one of " + allowed + ", got '" + name + "'");
}

Weights::Weights(const Checkpoint& file, const std::vector<std::string>& prefixes, ggml_type requested, int threads,
                 ggml_backend_t backend)
    : file_(file) {
  auto loads = [&](const CheckpointTensor& t) {
    return hasPrefix(t.name, prefixes) && isWeightType(t.type) && t.elements() > 0;
  };
  size_t count = 0;
  for (const auto& [name, t] : file.tensors) count += loads(t) ? 1 : 0;
  ggml_init_params params = {ggml_tensor_overhead() * (count + 1), nullptr, true};
  ctx_ = ggml_init(params);
  if (!ctx_) throw Error(ErrorCode::OutOfMemory, "cannot allocate the weight index");
  for (const auto& [name, t] : file.tensors) {
    if (!loads(t)) continue;
    int64_t ne[4] = {1, 1, 1, 1};
    const int dims = static_cast<int>(t.shape.size());
    for (int i = 0; i < dims; i++) ne[i] = t.shape[dims - 1 - i];
    ggml_tensor* tensor = ggml_new_tensor(ctx_, residentType(t, requested), std::max(dims, 1), ne);
    // ggml names hold 63 characters; keep the tail, which is the informative part.
    ggml_set_name(tensor, name.size() < GGML_MAX_NAME ? name.c_str() : name.substr(name.size() - GGML_MAX_NAME + 1).c_str());
    lookup_[name] = tensor;
  }
  try {
    load(backend, threads);
  } catch (...) {
    if (buffer_) ggml_backend_buffer_free(buffer_);
    ggml_free(ctx_);
    throw;
  }
}

Weights::~Weights() {
  if (buffer_) ggml_backend_buffer_free(buffer_);
  if (ctx_) ggml_free(ctx_);
}

void Weights::load(ggml_backend_t backend, int threads) {
  buffer_ = ggml_backend_alloc_ctx_tensors(ctx_, backend);
  if (!buffer_) throw Error(ErrorCode::OutOfMemory, file_.path + ": cannot allocate memory for the weights");
  ggml_backend_buffer_set_usage(buffer_, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
  bytes_ = ggml_backend_buffer_get_size(buffer_);
  const bool host = ggml_backend_buffer_is_host(buffer_);
  InputFile input(file_.path);
  std::vector<uint8_t> raw;
  std::vector<float> f32;
  std::vector<uint8_t> converted;
  for (const auto& [name, tensor] : lookup_) {
    const CheckpointTensor& t = file_.tensors.at(name);
    const size_t residentBytes = ggml_nbytes(tensor);
    if (tensor->type == t.type) {
      if (residentBytes != t.bytes) throw Error(ErrorCode::Internal, file_.path + ": size of tensor '" + name + "' disagrees with its type");
      if (host) {
        input.readAt(t.offset, tensor->data, t.bytes);
      } else {
        raw.resize(t.bytes);
        input.readAt(t.offset, raw.data(), t.bytes);
        ggml_backend_tensor_set(tensor, raw.data(), 0, t.bytes);
      }
      continue;
    }
    raw.resize(t.bytes);
    input.readAt(t.offset, raw.data(), t.bytes);
    // Everything else goes through f32: written in place when the resident type is f32, else
    // converted from a staging copy.
    const int64_t n = t.elements();
    float* values = static_cast<float*>(tensor->data);
    if (!host || tensor->type != GGML_TYPE_F32) {
      f32.resize(n);
      values = f32.data();
    }
    convertToF32(t, raw.data(), values);
    if (tensor->type == GGML_TYPE_F32) {
      if (!host) ggml_backend_tensor_set(tensor, values, 0, residentBytes);
      continue;
    }
    void* out = tensor->data;
    if (!host) {
      converted.resize(residentBytes);
      out = converted.data();
    }
    if (tensor->type == GGML_TYPE_F16) {
      ggml_fp32_to_fp16_row(values, static_cast<ggml_fp16_t*>(out), n);
    } else {
      quantizeRows(tensor->type, values, out, n / tensor->ne[0], tensor->ne[0], threads);
    }
    if (!host) ggml_backend_tensor_set(tensor, out, 0, residentBytes);
  }
}

bool Weights::has(const std::string& name) const { return file_.tensors.count(name) > 0; }

const std::vector<int64_t>& Weights::shape(const std::string& name) const {
  auto it = file_.tensors.find(name);
  if (it == file_.tensors.end()) throw Error(ErrorCode::ModelFormat, file_.path + ": missing tensor '" + name + "'");
  return it->second.shape;
}

ggml_tensor* Weights::get(const std::string& name, std::initializer_list<int64_t> expected) {
  auto it = file_.tensors.find(name);
  if (it == file_.tensors.end()) throw Error(ErrorCode::ModelFormat, file_.path + ": missing tensor '" + name + "'");
  const CheckpointTensor& t = it->second;
  std::vector<int64_t> want(expected);
  if (withoutLeadingOnes(t.shape) != withoutLeadingOnes(want)) {
    throw Error(ErrorCode::ModelFormat,
                file_.path + ": tensor '" + name + "' has shape " + shapeText(t.shape) + ", expected " + shapeText(want));
  }
  auto loaded = lookup_.find(name);
  if (loaded == lookup_.end()) {
    throw Error(ErrorCode::ModelFormat, file_.path + ": tensor '" + name + "' has dtype " + t.typeName +
                                            "; weights must be one of " + weightTypeNames());
  }
  used_.insert(name);
  return loaded->second;
}

std::vector<std::string> Weights::unused() const {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : lookup_) {
    if (!used_.count(name)) names.push_back(name);
  }
  return names;
}

}  // namespace sdnode

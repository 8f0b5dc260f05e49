#include "weights.h"

#include <cstring>

#include "file_io.h"
#include "ggml-cpu.h"
#include "sdnode.h"

namespace sdnode {

namespace {

bool hasPrefix(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes) {
    if (name.compare(0, p.size(), p) == 0) return true;
  }
  return false;
}

// Matrices stay in their stored half precision (what the matmul kernels want); vectors such as
// biases and norm parameters, and bf16 tensors, become f32, as the reference engine keeps them.
// Position embeddings are added to activations, and ggml's CPU add wants both sides in f32.
ggml_type residentType(const StoredTensor& t) {
  const bool added = t.name.find("position_embedding") != std::string::npos || t.name.find("positional_embedding") != std::string::npos;
  if (t.type == StoredType::F16 && t.shape.size() >= 2 && !added) return GGML_TYPE_F16;
  return GGML_TYPE_F32;
}

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void convertToF32(const StoredTensor& t, const std::vector<uint8_t>& raw, float* out) {
  const int64_t n = t.elements();
  if (t.type == StoredType::F32) {
    std::memcpy(out, raw.data(), n * sizeof(float));
  } else if (t.type == StoredType::F16) {
    ggml_fp16_to_fp32_row(reinterpret_cast<const ggml_fp16_t*>(raw.data()), out, n);
  } else {
    ggml_bf16_to_fp32_row(reinterpret_cast<const ggml_bf16_t*>(raw.data()), out, n);
  }
}

}  // namespace

Weights::Weights(const SafetensorsFile& file, const std::vector<std::string>& prefixes, ggml_backend_t backend) : file_(file) {
  size_t count = 0;
  for (const auto& [name, t] : file.tensors) {
    if (hasPrefix(name, prefixes) && isFloatWeightType(t.type)) count++;
  }
  ggml_init_params params = {ggml_tensor_overhead() * (count + 1), nullptr, true};
  ctx_ = ggml_init(params);
  if (!ctx_) throw Error(ErrorCode::OutOfMemory, "cannot allocate the weight index");
  for (const auto& [name, t] : file.tensors) {
    if (!hasPrefix(name, prefixes) || !isFloatWeightType(t.type)) continue;
    int64_t ne[4] = {1, 1, 1, 1};
    const int dims = static_cast<int>(t.shape.size());
    for (int i = 0; i < dims; i++) ne[i] = t.shape[dims - 1 - i];
    ggml_tensor* tensor = ggml_new_tensor(ctx_, residentType(t), std::max(dims, 1), ne);
    // ggml names hold 63 characters; keep the tail, which is the informative part.
    ggml_set_name(tensor, name.size() < GGML_MAX_NAME ? name.c_str() : name.substr(name.size() - GGML_MAX_NAME + 1).c_str());
    lookup_[name] = tensor;
  }
  try {
    load(backend);
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

void Weights::load(ggml_backend_t backend) {
  buffer_ = ggml_backend_alloc_ctx_tensors(ctx_, backend);
  if (!buffer_) throw Error(ErrorCode::OutOfMemory, file_.path + ": cannot allocate memory for the weights");
  ggml_backend_buffer_set_usage(buffer_, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
  bytes_ = ggml_backend_buffer_get_size(buffer_);
  const bool host = ggml_backend_buffer_is_host(buffer_);
  InputFile input(file_.path);
  std::vector<uint8_t> raw;
  std::vector<float> f32;
  for (const auto& [name, tensor] : lookup_) {
    const StoredTensor& t = file_.tensors.at(name);
    const bool direct = (tensor->type == GGML_TYPE_F32 && t.type == StoredType::F32) ||
                        (tensor->type == GGML_TYPE_F16 && t.type == StoredType::F16);
    if (direct && host) {
      input.readAt(t.offset, tensor->data, t.bytes);
    } else {
      raw.resize(t.bytes);
      input.readAt(t.offset, raw.data(), t.bytes);
      if (direct) {
        ggml_backend_tensor_set(tensor, raw.data(), 0, t.bytes);
      } else {
        f32.resize(t.elements());
        convertToF32(t, raw, f32.data());
        ggml_backend_tensor_set(tensor, f32.data(), 0, f32.size() * sizeof(float));
      }
    }
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
  const StoredTensor& t = it->second;
  std::vector<int64_t> want(expected);
  if (t.shape != want) {
    throw Error(ErrorCode::ModelFormat,
                file_.path + ": tensor '" + name + "' has shape " + shapeText(t.shape) + ", expected " + shapeText(want));
  }
  if (!isFloatWeightType(t.type)) {
    throw Error(ErrorCode::ModelFormat, file_.path + ": tensor '" + name + "' has dtype " + storedTypeName(t.type) +
                                            "; weights must be F32, F16 or BF16");
  }
  used_.insert(name);
  return lookup_.at(name);
}

std::vector<std::string> Weights::unused() const {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : lookup_) {
    if (!used_.count(name)) names.push_back(name);
  }
  return names;
}

}  // namespace sdnode

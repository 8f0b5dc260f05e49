#include "weights.h"

#include <algorithm>
#include <cctype>

#include "family.h"
#include "file_io.h"
#include "sdnode.h"
#include "weight_types.h"

namespace sdnode {

namespace {

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::vector<int64_t> withoutLeadingOnes(std::vector<int64_t> shape) {
  while (!shape.empty() && shape.front() == 1) shape.erase(shape.begin());
  return shape;
}

}  // namespace

Weights::Weights(const Checkpoint& file, ggml_type requested, int threads, ggml_backend_t backend, WeightFilter wanted)
    : file_(file) {
  size_t count = 0;
  for (const auto& [name, t] : file.tensors) count += wanted(t) ? 1 : 0;
  ggml_init_params params = {ggml_tensor_overhead() * (count + 1), nullptr, true};
  ctx_ = ggml_init(params);
  if (!ctx_) throw Error(ErrorCode::OutOfMemory, "cannot allocate the weight index");
  for (const auto& [name, t] : file.tensors) {
    if (!wanted(t)) continue;
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
    void* out = tensor->data;
    if (!host) {
      converted.resize(residentBytes);
      out = converted.data();
    }
    convertWeight(t, raw.data(), tensor->type, out, threads, f32);
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

ggml_tensor* Weights::find(const std::string& name) const {
  auto loaded = lookup_.find(name);
  return loaded == lookup_.end() ? nullptr : loaded->second;
}

std::vector<std::string> Weights::unused() const {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : lookup_) {
    if (!used_.count(name)) names.push_back(name);
  }
  return names;
}

std::map<std::string, int> Weights::storedTypes() const {
  std::map<std::string, int> counts;
  for (const auto& [name, tensor] : lookup_) {
    const CheckpointTensor& t = file_.tensors.at(name);
    if (t.type < GGML_TYPE_COUNT) {
      counts[ggml_type_name(t.type)]++;
      continue;
    }
    // Types ggml lacks (8-bit floats) go by the file's name for them, lower-cased ("f8_e4m3").
    std::string type = t.typeName;
    for (char& ch : type) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    counts[type]++;
  }
  return counts;
}

}  // namespace sdnode

#include "backend.h"

#include <algorithm>
#include <cstring>

#include "ggml-cpu.h"
#include "sdnode.h"

namespace sdnode {

namespace {

std::string backendKind(ggml_backend_dev_t dev) {
  std::string reg = ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev));
  std::transform(reg.begin(), reg.end(), reg.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (reg.find("cuda") != std::string::npos) return "cuda";
  if (reg.find("metal") != std::string::npos || reg.find("mtl") != std::string::npos) return "metal";
  if (reg.find("cpu") != std::string::npos) return "cpu";
  return reg;
}

ggml_backend_dev_t findDevice(const std::string& requested) {
  ggml_backend_dev_t cpu = nullptr;
  ggml_backend_dev_t gpu = nullptr;
  for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    std::string kind = backendKind(dev);
    if (kind == requested) return dev;
    if (kind == "cpu" && !cpu) cpu = dev;
    if ((kind == "cuda" || kind == "metal") && !gpu) gpu = dev;
  }
  if (requested == "auto") return gpu ? gpu : cpu;
  return nullptr;
}

}  // namespace

Backend::Backend(const std::string& requested, int threads) {
  ggml_backend_dev_t dev = findDevice(requested);
  if (!dev) {
    throw Error(ErrorCode::Backend, "backend '" + requested + "' is not available in this build or on this machine");
  }
  backend_ = ggml_backend_dev_init(dev, nullptr);
  if (!backend_) throw Error(ErrorCode::Backend, "backend '" + requested + "' failed to start");
  name_ = backendKind(dev);
  if (ggml_backend_is_cpu(backend_)) {
    ggml_backend_cpu_set_n_threads(backend_, std::max(1, threads));
    ggml_backend_cpu_set_abort_callback(backend_, &Backend::abortTrampoline, this);
  }
}

Backend::~Backend() {
  if (backend_) ggml_backend_free(backend_);
}

void Backend::setAbortCheck(std::function<bool()> check) { abortCheck_ = std::move(check); }

bool Backend::abortTrampoline(void* data) {
  auto* self = static_cast<Backend*>(data);
  return self->abortCheck_ && self->abortCheck_();
}

GraphBuild::GraphBuild(size_t maxNodes) {
  ggml_init_params params = {ggml_tensor_overhead() * maxNodes + ggml_graph_overhead_custom(maxNodes, false), nullptr, true};
  ctx_ = ggml_init(params);
  if (!ctx_) throw Error(ErrorCode::OutOfMemory, "cannot allocate a graph context");
  graph_ = ggml_new_graph_custom(ctx_, maxNodes, false);
}

GraphBuild::~GraphBuild() { ggml_free(ctx_); }

ggml_tensor* GraphBuild::input(ggml_type type, std::vector<int64_t> ne, const void* data) {
  ggml_tensor* t = ggml_new_tensor(ctx_, type, static_cast<int>(ne.size()), ne.data());
  ggml_set_input(t);
  inputs_.emplace_back(t, data);
  return t;
}

void GraphBuild::setInputs() const {
  for (const auto& [tensor, data] : inputs_) ggml_backend_tensor_set(tensor, data, 0, ggml_nbytes(tensor));
}

GraphRunner::GraphRunner(Backend& backend) : backend_(backend) {}

GraphRunner::~GraphRunner() { release(); }

void GraphRunner::release() {
  if (allocator_) ggml_gallocr_free(allocator_);
  allocator_ = nullptr;
}

std::vector<float> GraphRunner::run(const std::function<ggml_tensor*(GraphBuild&)>& build) {
  GraphBuild g;
  ggml_tensor* out = build(g);
  if (out->type != GGML_TYPE_F32) out = ggml_cast(g.ctx(), out, GGML_TYPE_F32);
  ggml_set_output(out);
  ggml_build_forward_expand(g.graph(), out);
  if (!allocator_) allocator_ = ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend_.handle()));
  if (!ggml_gallocr_alloc_graph(allocator_, g.graph())) {
    throw Error(ErrorCode::OutOfMemory, "cannot allocate the compute buffer");
  }
  g.setInputs();
  ggml_status status = ggml_backend_graph_compute(backend_.handle(), g.graph());
  if (status == GGML_STATUS_ABORTED) throw Error(ErrorCode::Aborted, "generation aborted");
  if (status != GGML_STATUS_SUCCESS) throw Error(ErrorCode::Backend, "graph compute failed with status " + std::to_string(status));
  std::vector<float> result(ggml_nelements(out));
  ggml_backend_tensor_get(out, result.data(), 0, ggml_nbytes(out));
  return result;
}

}  // namespace sdnode

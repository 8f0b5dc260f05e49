#include "backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "ggml-cpu.h"
#include "sdnode.h"
#ifdef SDNODE_WITH_METAL
#include "ggml-metal.h"
#endif

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

// SDNODE_SCHEDULER=1 (or on/true/yes): CPU graphs go through the scheduler as GPU graphs do.
bool schedulerForced() {
  const char* value = std::getenv("SDNODE_SCHEDULER");
  if (!value) return false;
  std::string v(value);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return v == "1" || v == "on" || v == "true" || v == "yes";
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
  auto configureCpu = [&](ggml_backend_t cpu) {
    ggml_backend_cpu_set_n_threads(cpu, std::max(1, threads));
    ggml_backend_cpu_set_abort_callback(cpu, &Backend::abortTrampoline, this);
  };
  if (ggml_backend_is_cpu(backend_)) {
    configureCpu(backend_);
    scheduled_ = schedulerForced();
    return;
  }
  // A GPU: ops its backend lacks run on the CPU, so the scheduler needs a CPU backend last.
  cpuFallback_ = ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
  if (!cpuFallback_) {
    ggml_backend_free(backend_);
    backend_ = nullptr;
    throw Error(ErrorCode::Backend, "backend '" + requested + "' needs the CPU backend for its fallback ops, which failed to start");
  }
  configureCpu(cpuFallback_);
  scheduled_ = true;
#ifdef SDNODE_WITH_METAL
  if (ggml_backend_is_metal(backend_)) ggml_backend_metal_set_abort_callback(backend_, &Backend::abortTrampoline, this);
#endif
}

Backend::~Backend() {
  if (cpuFallback_) ggml_backend_free(cpuFallback_);
  if (backend_) ggml_backend_free(backend_);
}

std::vector<ggml_backend_t> Backend::schedulerBackends() const {
  if (cpuFallback_) return {backend_, cpuFallback_};
  return {backend_};
}

void Backend::setAbortCheck(std::function<bool()> check) { abortCheck_ = std::move(check); }

bool Backend::abortTrampoline(void* data) {
  auto* self = static_cast<Backend*>(data);
  return self->abortCheck_ && self->abortCheck_();
}

GraphBuild::GraphBuild(size_t maxNodes, ggml_backend_t backend)
    : backend_(backend), onCpu_(backend != nullptr && ggml_backend_is_cpu(backend)) {
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
  if (scheduler_) ggml_backend_sched_free(scheduler_);
  scheduler_ = nullptr;
  schedulerSize_ = 0;
}

void GraphRunner::allocate(ggml_cgraph* graph) {
  if (!backend_.scheduled()) {
    if (!allocator_) allocator_ = ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend_.handle()));
    if (!ggml_gallocr_alloc_graph(allocator_, graph)) throw Error(ErrorCode::OutOfMemory, "cannot allocate the compute buffer");
    return;
  }
  // The scheduler's tables must hold every node and leaf; a graph holds at most its capacity of each.
  const size_t size = 2 * static_cast<size_t>(ggml_graph_size(graph));
  if (scheduler_ && size > schedulerSize_) release();
  if (!scheduler_) {
    std::vector<ggml_backend_t> backends = backend_.schedulerBackends();
    scheduler_ = ggml_backend_sched_new(backends.data(), nullptr, static_cast<int>(backends.size()), size, false, true);
    if (!scheduler_) throw Error(ErrorCode::OutOfMemory, "cannot create the graph scheduler");
    schedulerSize_ = size;
  }
  ggml_backend_sched_reset(scheduler_);
  if (!ggml_backend_sched_alloc_graph(scheduler_, graph)) throw Error(ErrorCode::OutOfMemory, "cannot allocate the compute buffers");
}

ggml_status GraphRunner::compute(ggml_cgraph* graph) {
  if (scheduler_ && backend_.scheduled()) return ggml_backend_sched_graph_compute(scheduler_, graph);
  return ggml_backend_graph_compute(backend_.handle(), graph);
}

std::vector<float> GraphRunner::run(const std::function<ggml_tensor*(GraphBuild&)>& build) {
  return std::move(runOutputs([&](GraphBuild& g) { return std::vector<ggml_tensor*>{build(g)}; }).front());
}

std::vector<std::vector<float>> GraphRunner::runOutputs(const std::function<std::vector<ggml_tensor*>(GraphBuild&)>& build) {
  GraphBuild g(kMaxGraphNodes, backend_.handle());
  std::vector<ggml_tensor*> outputs = build(g);
  for (ggml_tensor*& out : outputs) {
    if (out->type != GGML_TYPE_F32) out = ggml_cast(g.ctx(), out, GGML_TYPE_F32);
    ggml_set_output(out);
    ggml_build_forward_expand(g.graph(), out);
  }
  allocate(g.graph());
  g.setInputs();
  const ggml_status status = compute(g.graph());
  if (status == GGML_STATUS_ABORTED) throw Error(ErrorCode::Aborted, "generation aborted");
  if (status != GGML_STATUS_SUCCESS) throw Error(ErrorCode::Backend, "graph compute failed with status " + std::to_string(status));
  std::vector<std::vector<float>> results;
  for (ggml_tensor* out : outputs) {
    std::vector<float> result(ggml_nelements(out));
    ggml_backend_tensor_get(out, result.data(), 0, ggml_nbytes(out));
    results.push_back(std::move(result));
  }
  return results;
}

}  // namespace sdnode

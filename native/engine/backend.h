// The compute backend of one model, and the graph runner every component uses: build a graph
// into a scratch context, allocate it from a reusable allocator, copy inputs, compute, read back.
//
// On the CPU a graph is allocated with one ggml_gallocr and computed there. On a GPU (Metal,
// CUDA) graphs go through ggml's scheduler with [gpu, cpu]: every op runs on the GPU where its
// backend supports it and on the CPU otherwise, the scheduler copying tensors across. The
// environment variable SDNODE_SCHEDULER=1 sends CPU graphs through the scheduler too (with [cpu]
// alone), so that path is tested on machines without a GPU.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"

namespace sdnode {

class Backend {
 public:
  Backend(const std::string& requested, int threads);
  ~Backend();
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  // The backend whose buffers hold the weights.
  ggml_backend_t handle() const { return backend_; }
  const std::string& name() const { return name_; }
  // Whether graphs go through ggml's scheduler, and its backends in priority order (CPU last).
  bool scheduled() const { return scheduled_; }
  std::vector<ggml_backend_t> schedulerBackends() const;
  // Polled by the CPU backend (and Metal's) between graph nodes; lets a long compute stop early.
  void setAbortCheck(std::function<bool()> check);

 private:
  ggml_backend_t backend_ = nullptr;
  ggml_backend_t cpuFallback_ = nullptr;  // only when backend_ is a GPU
  bool scheduled_ = false;
  std::string name_;
  std::function<bool()> abortCheck_;
  static bool abortTrampoline(void* data);
};

// Nodes one graph may hold (its leaves may number as many again).
constexpr size_t kMaxGraphNodes = 16384;

// One graph under construction: a no-alloc context plus the host data of its inputs.
class GraphBuild {
 public:
  // `backend`: the one that will compute the graph (none when a graph is only built to check shapes).
  explicit GraphBuild(size_t maxNodes = kMaxGraphNodes, ggml_backend_t backend = nullptr);
  ~GraphBuild();
  GraphBuild(const GraphBuild&) = delete;
  GraphBuild& operator=(const GraphBuild&) = delete;

  ggml_context* ctx() const { return ctx_; }
  ggml_cgraph* graph() const { return graph_; }
  // A graph input whose data (kept alive by the caller) is copied in after allocation.
  ggml_tensor* input(ggml_type type, std::vector<int64_t> ne, const void* data);
  void setInputs() const;
  // Whether the CPU backend computes the graph, so that it may hold ops of ours (ggml custom ops).
  bool onCpu() const { return onCpu_; }
  // Whether the backend computing the graph runs `node` itself (a GPU backend lacks some ops or
  // shapes, which the scheduler would otherwise send to the CPU).
  bool supports(const ggml_tensor* node) const { return backend_ == nullptr || onCpu_ || ggml_backend_supports_op(backend_, node); }
  // Keeps `value` alive as long as the graph: the parameters of a custom op.
  template <class T>
  T* keep(T value) {
    auto kept = std::make_shared<T>(std::move(value));
    kept_.push_back(kept);
    return kept.get();
  }

 private:
  ggml_context* ctx_ = nullptr;
  ggml_cgraph* graph_ = nullptr;
  std::vector<std::pair<ggml_tensor*, const void*>> inputs_;
  ggml_backend_t backend_;
  bool onCpu_;
  std::vector<std::shared_ptr<void>> kept_;
};

// Keeps its compute buffer between runs, so repeated graphs of one shape allocate once.
class GraphRunner {
 public:
  explicit GraphRunner(Backend& backend);
  ~GraphRunner();
  GraphRunner(const GraphRunner&) = delete;
  GraphRunner& operator=(const GraphRunner&) = delete;

  // Builds with `build` (which returns the output tensor), computes, and returns the output as f32.
  std::vector<float> run(const std::function<ggml_tensor*(GraphBuild&)>& build);
  // The same for a graph with several outputs (a ControlNet's residuals), returned in their order.
  std::vector<std::vector<float>> runOutputs(const std::function<std::vector<ggml_tensor*>(GraphBuild&)>& build);
  // Frees the compute buffers (between phases whose graphs differ in size).
  void release();

 private:
  Backend& backend_;
  ggml_gallocr_t allocator_ = nullptr;      // plain path: one backend
  ggml_backend_sched_t scheduler_ = nullptr;  // scheduled path: GPU first, CPU fallback
  size_t schedulerSize_ = 0;                  // nodes + leaves its tables hold
  void allocate(ggml_cgraph* graph);
  ggml_status compute(ggml_cgraph* graph);
};

}  // namespace sdnode

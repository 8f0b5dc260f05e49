// The T5 v1.1 encoder (FLUX.1's and SD3's long text encoder; google/t5-v1_1-xxl in Hugging Face's
// layout: shared.weight, encoder.block.N.layer.{0,1}.*, encoder.final_layer_norm). Sizes are read
// from the file: width from shared.weight, heads from the attention width (64 per head, as every
// T5 v1.1 size has), feed-forward width from wi_0, layers by counting blocks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend.h"
#include "weights.h"

namespace sdnode {

struct T5Config {
  std::string prefix;  // names start with this ("" for a file of its own)
  int64_t vocab = 32128;
  int64_t width = 4096;
  int64_t inner = 4096;  // attention width: heads x 64
  int64_t ff = 10240;
  int heads = 64;
  int layers = 24;
};

T5Config readT5Config(const Weights& w, const std::string& prefix);

class T5Encoder {
 public:
  T5Encoder(const T5Config& config, Weights& weights, Backend& backend);

  const T5Config& config() const { return config_; }
  // tokens: ids, already ended and padded as the family wants (EOS 1, pad 0). Returns the final
  // normed hidden states, [tokens, width] width innermost.
  std::vector<float> encode(const std::vector<int32_t>& tokens);
  void validate();
  void releaseBuffers() { runner_.release(); }

 private:
  T5Config config_;
  Weights& weights_;
  GraphRunner runner_;
  ggml_tensor* build(GraphBuild& g, const int32_t* tokens, int64_t count, const std::vector<int32_t>& buckets);
};

// T5's bidirectional relative-position buckets (32 buckets, max distance 128) of key j for query i,
// as [query][key] flattened: the index into relative_attention_bias.
std::vector<int32_t> t5RelativeBuckets(int64_t length);

}  // namespace sdnode

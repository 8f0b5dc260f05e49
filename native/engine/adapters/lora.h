// LoRA: low-rank updates (W += multiplier · alpha/rank · up·down; LyCORIS LoHa's Hadamard and LoKr's
// Kronecker products too) merged into the loaded weights for one generation call and taken out
// again afterwards, byte for byte.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "sdnode.h"
#include "weights.h"

namespace sdnode {

// Where one LoRA module lands in the checkpoint: a whole weight, or a block of its rows (the
// q, k or v third of OpenCLIP's packed attention projection).
struct LoraTarget {
  std::string tensor;
  int64_t firstRow = 0;
  int64_t rows = 0;  // 0: every row
  bool unet = false;  // UNet (unetMultiplier) or text encoder (textMultiplier)
};

// Module names in kohya's spelling ("lora_unet_down_blocks_0_attentions_0_proj_in",
// "lora_te_text_model_encoder_layers_0_mlp_fc1") and where each lands in `file`, by the family's
// table of component prefixes (lora_names.cpp). The UNet's modules are reachable both by their
// diffusers path and by their LDM one ("lora_unet_input_blocks_1_1_proj_in").
std::map<std::string, LoraTarget> loraTargets(const std::string& family, const Checkpoint& file);

// The kohya spelling of a LoRA module written with diffusers / PEFT names ("unet.down_blocks.0.…",
// "text_encoder.text_model.…", "base_model.model.…"), or "" when the name is none of those.
std::string kohyaModuleName(const std::string& family, const std::string& module);

// Applies `loras` to `weights` on construction; the destructor puts back the original bytes of
// every tensor it changed. Float weights are updated in f32 and stored back in their own type;
// quantized weights are dequantized, updated and quantized again (for the call only).
//
// The original bytes come back from the checkpoint file, made exactly as Weights made them at load
// (the same read and conversion), so no copy of the touched weights is held: a LoRA over every
// attention layer of SD 1.5 touches 671 MB of them. Before a tensor is changed, the file must give
// its resident bytes again; where it does not (the file changed since the model was loaded) that
// tensor is copied instead. Should the file stop giving them during the call, the weights cannot
// be restored: `stale` then says so, and the model must not generate again.
class LoraMerge {
 public:
  LoraMerge(const std::string& family, const Checkpoint& model, Weights& weights, const std::vector<LoraFile>& loras,
            int threads, std::string& stale);
  ~LoraMerge();
  LoraMerge(const LoraMerge&) = delete;
  LoraMerge& operator=(const LoraMerge&) = delete;

 private:
  struct Touched {
    ggml_tensor* tensor;
    const CheckpointTensor* stored;
    uint64_t digest;              // of the original resident bytes
    std::vector<uint8_t> copy;    // empty: restored from the file
  };
  const Checkpoint& model_;
  int threads_;
  std::string& stale_;
  std::vector<Touched> touched_;
  void restore() noexcept;
};

}  // namespace sdnode

// LoRA: low-rank updates (W += multiplier · alpha/rank · up·down) merged into the loaded weights for
// one generation call and taken out again afterwards, byte for byte.
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
class LoraMerge {
 public:
  LoraMerge(const std::string& family, const Checkpoint& model, Weights& weights, const std::vector<LoraFile>& loras,
            int threads);
  ~LoraMerge();
  LoraMerge(const LoraMerge&) = delete;
  LoraMerge& operator=(const LoraMerge&) = delete;

 private:
  struct Original {
    ggml_tensor* tensor;
    std::vector<uint8_t> bytes;
  };
  std::vector<Original> originals_;
  void restore() noexcept;
};

}  // namespace sdnode

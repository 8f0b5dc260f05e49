// A checkpoint file as the loader sees it, whatever its format: the tensors' names, stored types,
// shapes and byte ranges in the file, all checked against the file's length by the reader that
// produced them (safetensors.cpp, gguf.cpp). Weights loads from this list.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ggml.h"

namespace sdnode {

struct CheckpointTensor {
  std::string name;
  // The stored type as the file spells it ("F16" in safetensors, "q4_K" in GGUF), for messages.
  std::string typeName;
  // The ggml type of the stored bytes; GGML_TYPE_COUNT where ggml has none (safetensors U8, BOOL, F8).
  ggml_type type = GGML_TYPE_COUNT;
  std::vector<int64_t> shape;  // outermost first ([out, in, kh, kw])
  uint64_t offset = 0;         // absolute file offset of the first byte
  uint64_t bytes = 0;
  // Scaled 8-bit floats (ComfyUI's `scale_weight` beside each fp8 weight): the stored values times this.
  float scale = 1.0f;
  int64_t elements() const;
};

struct Checkpoint {
  std::string path;
  std::string format;  // "safetensors" | "gguf"
  uint64_t fileSize = 0;
  // Text metadata: the safetensors __metadata__ block, or the GGUF key-value pairs that hold a
  // string, an integer or a boolean (the latter two in decimal / "true", "false").
  std::map<std::string, std::string> metadata;
  std::map<std::string, CheckpointTensor> tensors;
};

// Reads the tensor list of a checkpoint, choosing the reader by the file's first bytes (GGUF
// files start with "GGUF"; anything else is read as safetensors). Names under the prefixes other
// tools use for the same components (stable-diffusion.cpp's "vae.", "diffusion_model.", …) are
// renamed to the single-file LDM ones, and an SD 2.x text encoder under Hugging Face CLIP names
// (as stable-diffusion.cpp writes it) to the OpenCLIP ones. Throws sdnode::Error (ModelIo / ModelFormat).
Checkpoint openCheckpoint(const std::string& path);

// Types a weight can be stored in: f32, f16, bf16 and ggml's q4_0, q4_1, q5_0, q5_1, q8_0, q2_K … q6_K.
bool isWeightType(ggml_type type);
// The names isWeightType accepts, for messages.
std::string weightTypeNames();

}  // namespace sdnode

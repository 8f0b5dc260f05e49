// Which type each weight is kept in, and the conversion of its stored bytes into that type: one
// rule shared by loading (weights.cpp) and by writing a GGUF file (gguf_convert.cpp), so a file
// converted to a type holds exactly the bytes a model loaded with that weightType keeps resident.
#pragma once

#include <string>
#include <vector>

#include "checkpoint.h"
#include "ggml.h"

namespace sdnode {

// The type LoadParams::weightType names ("f16", "q8_0", …; case-insensitive), or GGML_TYPE_COUNT
// for "auto" (as stored). Throws InvalidArgument for any other name.
ggml_type parseWeightType(const std::string& name);

// The type tensor `t` is kept in when `requested` (parseWeightType's answer) is asked for.
// Whether `t` is stored as an 8-bit float (safetensors F8_E4M3, F8_E5M2: fp8 downloads such as
// t5xxl_fp8_e4m3fn); ggml has no such type, so they are widened on load as f16 would be.
bool isFloat8(const CheckpointTensor& t);

ggml_type residentType(const CheckpointTensor& t, ggml_type requested);

// Converts the stored bytes `raw` of `t` into `type`, writing ggml's layout of that type to `out`.
// `scratch` holds the f32 staging copy between calls; `threads` quantize.
void convertWeight(const CheckpointTensor& t, const void* raw, ggml_type type, void* out, int threads,
                   std::vector<float>& scratch);

}  // namespace sdnode

// convertToGguf: a checkpoint's model weights, each in the type a model loaded with the requested
// weightType keeps it in, written as GGUF under the names stable-diffusion.cpp uses (the
// single-file LDM names, which Checkpoint already holds). What is not a model weight is left out.
// A flow model's component file (a FLUX.1 / SD3 diffusion model, a T5 encoder, …) converts too,
// under the names it has, for the flag of its role (--diffusion-model, --t5xxl, …).
#include <filesystem>

#include "components.h"
#include "family.h"
#include "file_io.h"
#include "gguf_writer.h"
#include "sdnode.h"
#include "system_info.h"
#include "weight_types.h"

namespace sdnode {

namespace {

// stable-diffusion.cpp builds ggml with 128-byte tensor names; longer ones it cannot read.
constexpr size_t kMaxNameBytes = 127;

void refuseSameFile(const std::string& input, const std::string& output) {
  std::error_code error;
  if (std::filesystem::equivalent(input, output, error)) {
    throw Error(ErrorCode::InvalidArgument, output + ": the output is the input file; write the GGUF file elsewhere");
  }
}

GgufTensorInfo tensorInfo(const CheckpointTensor& t, ggml_type requested) {
  if (t.name.size() > kMaxNameBytes) {
    throw Error(ErrorCode::ModelUnsupported, "tensor '" + t.name + "' has a name of " + std::to_string(t.name.size()) +
                                                 " bytes; GGUF readers take at most " + std::to_string(kMaxNameBytes));
  }
  // A 0-dimensional tensor (a scalar) is one value in GGUF.
  std::vector<int64_t> shape = t.shape.empty() ? std::vector<int64_t>{1} : t.shape;
  return {t.name, residentType(t, requested), shape};
}

// The checkpoint's own text metadata (the safetensors __metadata__ block: head counts, prediction
// hints) travels along; the alignment is the writer's business.
std::map<std::string, std::string> keptMetadata(const Checkpoint& file) {
  std::map<std::string, std::string> metadata = file.metadata;
  metadata.erase("general.alignment");
  return metadata;
}

}  // namespace

ConvertResult convertToGguf(const ConvertParams& params, const ConvertCallbacks& callbacks) {
  const ggml_type requested = parseWeightType(params.weightType);
  if (params.output.empty()) throw Error(ErrorCode::InvalidArgument, "the output path is empty");
  Checkpoint file = openCheckpoint(params.input);
  std::optional<ComponentRole> component;
  try {
    detectFamily(file);
  } catch (const Error& e) {
    component = componentRoleOf(file);
    if (e.code() != ErrorCode::ModelUnsupported || !component) throw;
    applyFloat8Scales(file, componentFlag(*component));
  }
  refuseSameFile(params.input, params.output);

  ConvertResult result;
  std::vector<const CheckpointTensor*> weights;
  std::vector<GgufTensorInfo> infos;
  for (const auto& [name, t] : file.tensors) {
    if (!(component ? isComponentWeight(t) : isModelWeight(t))) {
      result.skipped.push_back(name);
      continue;
    }
    weights.push_back(&t);
    infos.push_back(tensorInfo(t, requested));
  }
  const int threads = params.threads > 0 ? params.threads : physicalCores();
  GgufWriter writer(params.output, keptMetadata(file), infos);
  InputFile input(file.path);
  std::vector<uint8_t> raw;
  std::vector<uint8_t> converted;
  std::vector<float> scratch;
  ConvertProgress progress;
  progress.tensors = static_cast<int>(weights.size());
  for (size_t i = 0; i < weights.size(); i++) {
    if (callbacks.aborted && callbacks.aborted()) throw Error(ErrorCode::Aborted, "the conversion was aborted");
    const CheckpointTensor& t = *weights[i];
    const GgufTensorInfo& info = infos[i];
    raw.resize(t.bytes);
    input.readAt(t.offset, raw.data(), t.bytes);
    if (info.type == t.type) {
      writer.writeTensor(raw.data(), raw.size());
    } else {
      converted.resize(info.bytes());
      convertWeight(t, raw.data(), info.type, converted.data(), threads, scratch);
      writer.writeTensor(converted.data(), converted.size());
    }
    result.types[ggml_type_name(info.type)]++;
    progress.tensor = static_cast<int>(i + 1);
    if (callbacks.onProgress) callbacks.onProgress(progress);
  }
  result.tensors = progress.tensors;
  result.bytes = writer.commit();
  return result;
}

}  // namespace sdnode

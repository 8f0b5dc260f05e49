#include "weight_types.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <system_error>
#include <thread>

#include "sdnode.h"

namespace sdnode {

namespace {

struct WeightTypeName {
  const char* name;
  ggml_type type;
};

constexpr WeightTypeName kWeightTypes[] = {
    {"f32", GGML_TYPE_F32},   {"f16", GGML_TYPE_F16},   {"q8_0", GGML_TYPE_Q8_0}, {"q6_k", GGML_TYPE_Q6_K},
    {"q5_k", GGML_TYPE_Q5_K}, {"q5_1", GGML_TYPE_Q5_1}, {"q5_0", GGML_TYPE_Q5_0}, {"q4_k", GGML_TYPE_Q4_K},
    {"q4_1", GGML_TYPE_Q4_1}, {"q4_0", GGML_TYPE_Q4_0}, {"q3_k", GGML_TYPE_Q3_K}, {"q2_k", GGML_TYPE_Q2_K},
};

bool contains(const std::string& name, const char* part) { return name.find(part) != std::string::npos; }

// One 8-bit float: e4m3fn (bias 7, no infinities, 0x7f/0xff NaN) or e5m2 (f16's top byte).
float float8ToF32(uint8_t v, bool e4m3) {
  const float sign = (v & 0x80) ? -1.0f : 1.0f;
  if (!e4m3) {
    const uint16_t half = static_cast<uint16_t>(v) << 8;
    return ggml_fp16_to_fp32(static_cast<ggml_fp16_t>(half));
  }
  const int exponent = (v >> 3) & 0xf, mantissa = v & 0x7;
  if (exponent == 0xf && mantissa == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa) / 8.0f, -6);
  return sign * std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent - 7);
}

void convertToF32(const CheckpointTensor& t, const void* raw, float* out) {
  const int64_t n = t.elements();
  if (isFloat8(t)) {
    const bool e4m3 = t.typeName == "F8_E4M3";
    const uint8_t* bytes = static_cast<const uint8_t*>(raw);
    for (int64_t i = 0; i < n; i++) out[i] = float8ToF32(bytes[i], e4m3) * t.scale;
  } else if (t.type == GGML_TYPE_F32) {
    std::memcpy(out, raw, n * sizeof(float));
  } else {
    ggml_get_type_traits(t.type)->to_float(raw, out, n);
  }
}

// ggml_quantize_chunk over `threads` slices of whole rows; small tensors stay on this thread.
void quantizeRows(ggml_type type, const float* src, void* dst, int64_t rows, int64_t rowLength, int threads) {
  constexpr int64_t kMinValuesPerThread = 1 << 20;
  const int64_t useful = std::max<int64_t>(1, rows * rowLength / kMinValuesPerThread);
  const int64_t slices = std::min<int64_t>({static_cast<int64_t>(std::max(threads, 1)), useful, rows});
  const int64_t perSlice = (rows + slices - 1) / slices;
  auto quantize = [=](int64_t first) {
    const int64_t count = std::min(perSlice, rows - first);
    ggml_quantize_chunk(type, src, dst, first * rowLength, count, rowLength, nullptr);
  };
  std::vector<std::thread> workers;
  int64_t first = perSlice;
  try {
    for (; first < rows; first += perSlice) workers.emplace_back(quantize, first);
  } catch (const std::system_error&) {
    // No more threads to be had: this thread does the rest.
    for (; first < rows; first += perSlice) quantize(first);
  }
  quantize(0);
  for (std::thread& worker : workers) worker.join();
}

}  // namespace

ggml_type parseWeightType(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "auto") return GGML_TYPE_COUNT;
  std::string allowed = "auto";
  for (const WeightTypeName& entry : kWeightTypes) {
    if (lower == entry.name) return entry.type;
    allowed += std::string(", ") + entry.name;
  }
  throw Error(ErrorCode::InvalidArgument, "weightType must be one of " + allowed + ", got '" + name + "'");
}

// Where a weight goes decides the types it may have there:
// - vectors (biases, norm parameters) and position embeddings meet activations in ggml's add and
//   mul, which want f32 on both sides;
// - convolution kernels (3 or 4 dims) feed ggml's conv_2d, whose kernels are f16 or f32 only;
// - matrices feed mul_mat (linear layers) or get_rows (token embeddings), which take every type.
// Matrices stay as stored (f16, or quantized), unless `requested` names another type: f32 and f16
// apply to every matrix and kernel; a quantized type to float matrices whose rows are whole
// blocks, except embeddings and the time embedding, kept precise as stable-diffusion.cpp's
// converter keeps them. bf16 becomes f32, as the reference engine keeps it.
bool isFloat8(const CheckpointTensor& t) { return t.typeName == "F8_E4M3" || t.typeName == "F8_E5M2"; }

ggml_type residentType(const CheckpointTensor& t, ggml_type requested) {
  if (isFloat8(t)) {
    CheckpointTensor widened = t;
    widened.type = GGML_TYPE_F16;
    widened.typeName = "F16";
    return residentType(widened, requested);
  }
  const bool quantized = ggml_is_quantized(t.type);
  const bool embedding = contains(t.name, "embedding");
  if (t.shape.size() <= 1 || contains(t.name, "position_embedding") || contains(t.name, "positional_embedding")) {
    return GGML_TYPE_F32;
  }
  if (requested == GGML_TYPE_F32 || requested == GGML_TYPE_F16) return requested;
  if (t.shape.size() >= 3) return t.type == GGML_TYPE_F16 || quantized ? GGML_TYPE_F16 : GGML_TYPE_F32;
  // get_rows of quantized rows is a CPU-only feature for some types; f16 works everywhere.
  if (quantized && embedding) return GGML_TYPE_F16;
  const bool quantizable = requested != GGML_TYPE_COUNT && !quantized && !embedding && !contains(t.name, "time_embed.") &&
                           t.shape.back() % ggml_blck_size(requested) == 0;
  if (quantizable) return requested;
  return t.type == GGML_TYPE_F16 || quantized ? t.type : GGML_TYPE_F32;
}

// Everything goes through f32: written straight to `out` when that is the target, else staged in
// `scratch` and narrowed or quantized from there.
void convertWeight(const CheckpointTensor& t, const void* raw, ggml_type type, void* out, int threads,
                   std::vector<float>& scratch) {
  const int64_t n = t.elements();
  if (type == GGML_TYPE_F32) {
    convertToF32(t, raw, static_cast<float*>(out));
    return;
  }
  scratch.resize(static_cast<size_t>(n));
  convertToF32(t, raw, scratch.data());
  if (type == GGML_TYPE_F16) {
    ggml_fp32_to_fp16_row(scratch.data(), static_cast<ggml_fp16_t*>(out), n);
    return;
  }
  const int64_t rowLength = t.shape.empty() ? 1 : t.shape.back();
  quantizeRows(type, scratch.data(), out, n / rowLength, rowLength, threads);
}

}  // namespace sdnode

#include "conv3x3.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend.h"
#include "ggml-cpu.h"

namespace sdnode {

namespace {

// One band: rows [y0, y0 + rows) of image `batch`.
struct Band {
  int64_t batch;
  int64_t y0;
  int64_t rows;
  bool circular;
};

// ggml's tiled GEMM takes the band's pixels in groups of 16 (otherwise ggml falls back to a plain
// dot product, which AVX512-FP16 builds accumulate in f16): the last group is padded with zeros.
constexpr int64_t kPixelGroup = 16;

template <typename T>
void convertRow(const float* from, T* to, int64_t count);

template <>
void convertRow<float>(const float* from, float* to, int64_t count) {
  std::memcpy(to, from, count * sizeof(float));
}

template <>
void convertRow<ggml_fp16_t>(const float* from, ggml_fp16_t* to, int64_t count) {
  ggml_cpu_fp32_to_fp16(from, to, count);
}

// dst: [9*C, P], one row of 9*C values per pixel of the band (then zero rows up to P), ordered as
// the kernel [3, 3, C, OC] is (kx fastest, then ky, then the channel); src[0]: the image
// [W, H, C, N] f32. Each thread takes every nth row of the band; per channel it converts the three
// source rows once (padded by one element on each side) and copies 3 values from each into every
// pixel's row.
template <typename T>
void gather(ggml_tensor* dst, int ith, int nth, void* data) {
  const Band& band = *static_cast<const Band*>(data);
  const ggml_tensor* x = dst->src[0];
  const int64_t width = x->ne[0], height = x->ne[1], channels = x->ne[2];
  const int64_t line = width + 2;
  if (ith == 0) {
    char* tail = static_cast<char*>(dst->data) + band.rows * width * dst->nb[1];
    std::memset(tail, 0, (dst->ne[1] - band.rows * width) * dst->nb[1]);
  }
  std::vector<T> lines(3 * line);
  for (int64_t r = ith; r < band.rows; r += nth) {
    const int64_t y = band.y0 + r;
    T* out = reinterpret_cast<T*>(static_cast<char*>(dst->data) + r * width * dst->nb[1]);
    for (int64_t c = 0; c < channels; c++) {
      for (int ky = 0; ky < 3; ky++) {
        T* l = lines.data() + ky * line;
        int64_t sy = y + ky - 1;
        if (band.circular) sy = (sy + height) % height;
        if (sy < 0 || sy >= height) {
          std::fill(l, l + line, T{});
          continue;
        }
        const float* from = reinterpret_cast<const float*>(static_cast<const char*>(x->data) + sy * x->nb[1] + c * x->nb[2] +
                                                           band.batch * x->nb[3]);
        convertRow(from, l + 1, width);
        l[0] = band.circular ? l[width] : T{};
        l[width + 1] = band.circular ? l[1] : T{};
      }
      T* o = out + c * 9;
      for (int64_t px = 0; px < width; px++, o += 9 * channels) {
        std::memcpy(o, lines.data() + px, 3 * sizeof(T));
        std::memcpy(o + 3, lines.data() + line + px, 3 * sizeof(T));
        std::memcpy(o + 6, lines.data() + 2 * line + px, 3 * sizeof(T));
      }
    }
  }
}

// dst: a view of the output [W, H, OC, N] f32; src[1]: the band's product [P, OC] f32;
// src[2] (optional): the bias [OC] f32. Copies each output plane's rows of the band into place.
void place(ggml_tensor* dst, int ith, int nth, void* data) {
  const Band& band = *static_cast<const Band*>(data);
  const ggml_tensor* part = dst->src[1];
  const ggml_tensor* bias = dst->src[2];
  const int64_t count = band.rows * dst->ne[0];
  for (int64_t oc = ith; oc < dst->ne[2]; oc += nth) {
    const float* from = reinterpret_cast<const float*>(static_cast<const char*>(part->data) + oc * part->nb[1]);
    float* to = reinterpret_cast<float*>(static_cast<char*>(dst->data) + band.y0 * dst->nb[1] + oc * dst->nb[2] +
                                         band.batch * dst->nb[3]);
    if (bias == nullptr) {
      std::memcpy(to, from, count * sizeof(float));
      continue;
    }
    const float b = static_cast<const float*>(bias->data)[oc];
    for (int64_t i = 0; i < count; i++) to[i] = from[i] + b;
  }
}

// Nothing to compute: the output's rows are placed band by band (as a graph node, unlike a plain new
// tensor, its memory is reused once the convolution's consumers are done with it).
void reserve(ggml_tensor*, int, int, void*) {}

}  // namespace

bool conv3x3CpuFits(const ggml_tensor* x, const ggml_tensor* kernel) {
  return x->type == GGML_TYPE_F32 && x->nb[0] == sizeof(float) && (kernel->type == GGML_TYPE_F16 || kernel->type == GGML_TYPE_F32) &&
         ggml_is_contiguous(kernel) && kernel->ne[0] == 3 && kernel->ne[1] == 3 && kernel->ne[2] == x->ne[2] && x->ne[2] % 16 == 0;
}

// A few tens of MB of neighbourhoods per band keep the GEMM's operand streaming while the memory
// they add stays small next to the activations of a large image.
ggml_tensor* conv3x3Cpu(GraphBuild& g, ggml_tensor* x, ggml_tensor* kernel, ggml_tensor* bias, bool circular, int64_t bandBytes) {
  ggml_context* ctx = g.ctx();
  const int64_t width = x->ne[0], height = x->ne[1], channels = x->ne[2], batch = x->ne[3];
  const int64_t outChannels = kernel->ne[3];
  const ggml_type type = kernel->type;
  ggml_tensor* weights = ggml_reshape_2d(ctx, kernel, 9 * channels, outChannels);
  if (bias != nullptr && bias->type != GGML_TYPE_F32) bias = ggml_cast(ctx, bias, GGML_TYPE_F32);

  const int64_t rowBytes = 9 * channels * width * static_cast<int64_t>(ggml_type_size(type));
  const int64_t maxRows = std::clamp<int64_t>(bandBytes / rowBytes, 1, height);
  const int64_t bands = (height + maxRows - 1) / maxRows;
  const int64_t rowsPerBand = (height + bands - 1) / bands;
  const ggml_custom_op_t gatherOp = type == GGML_TYPE_F16 ? gather<ggml_fp16_t> : gather<float>;

  ggml_tensor* out = ggml_custom_4d(ctx, GGML_TYPE_F32, width, height, outChannels, batch, nullptr, 0, reserve, 1, nullptr);
  for (int64_t n = 0; n < batch; n++) {
    for (int64_t y0 = 0; y0 < height; y0 += rowsPerBand) {
      const int64_t rows = std::min(rowsPerBand, height - y0);
      Band* band = g.keep(Band{n, y0, rows, circular});
      ggml_tensor* source[] = {x};
      const int64_t pixels = (width * rows + kPixelGroup - 1) / kPixelGroup * kPixelGroup;
      ggml_tensor* columns = ggml_custom_4d(ctx, type, 9 * channels, pixels, 1, 1, source, 1, gatherOp, GGML_N_TASKS_MAX, band);
      // [9C, P] x [9C, OC] -> [P, OC]: each output channel's rows come out contiguous.
      ggml_tensor* part = ggml_mul_mat(ctx, columns, weights);
      ggml_tensor* args[] = {part, bias};
      out = ggml_custom_inplace(ctx, out, args, bias != nullptr ? 2 : 1, place, GGML_N_TASKS_MAX, band);
    }
  }
  return out;
}

}  // namespace sdnode

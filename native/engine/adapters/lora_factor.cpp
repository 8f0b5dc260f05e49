#include "lora_factor.h"

#include <algorithm>

namespace sdnode {

void Factor::row(int64_t o, float* out) const {
  if (rank == 0) {
    std::copy_n(full.data() + o * cols, cols, out);
    return;
  }
  std::fill_n(out, cols, 0.0f);
  for (int64_t k = 0; k < rank; k++) {
    const float x = a[o * rank + k];
    const float* r = b.data() + k * cols;
    for (int64_t j = 0; j < cols; j++) out[j] += x * r[j];
  }
}

void Factor::expandTucker() {
  if (kernel == 0) return;
  const int64_t in = cols / kernel;
  // partial[i, c, s] = Σ_j core[i, j, s] · b[j, c]
  std::vector<float> partial(static_cast<size_t>(rank * in * kernel), 0.0f);
  for (int64_t i = 0; i < rank; i++)
    for (int64_t j = 0; j < rank; j++)
      for (int64_t s = 0; s < kernel; s++) {
        const float t = core[(i * rank + j) * kernel + s];
        for (int64_t c = 0; c < in; c++) partial[(i * in + c) * kernel + s] += t * b[j * in + c];
      }
  full.assign(static_cast<size_t>(rows * cols), 0.0f);
  for (int64_t o = 0; o < rows; o++)
    for (int64_t i = 0; i < rank; i++) {
      const float x = a[i * rows + o];
      const float* p = partial.data() + i * cols;
      float* out = full.data() + o * cols;
      for (int64_t j = 0; j < cols; j++) out[j] += x * p[j];
    }
  rank = kernel = 0;
  a = {};
  b = {};
  core = {};
}

}  // namespace sdnode

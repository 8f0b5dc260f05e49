// One factor of a LoRA-family update as a matrix [rows × cols], kept factorised until it is merged.
#pragma once

#include <cstdint>
#include <vector>

namespace sdnode {

// a · b with a [rows × rank] and b [rank × cols]; `full` itself when rank is 0; or LyCORIS's Tucker
// form, Σ_ij core[i, j, s] · a[i, o] · b[j, c] over the kernel positions s (a [rank × rows],
// b [rank × in], cols = in · kernel), as hada_t1 / hada_t2 and lokr_t2 store convolutions.
struct Factor {
  int64_t rows = 0, cols = 0, rank = 0, kernel = 0;  // kernel 0: no Tucker core
  std::vector<float> a, b, full, core;

  // Row o of the matrix into out[cols]; a Tucker factor must be expanded first.
  void row(int64_t o, float* out) const;
  // Replaces the Tucker form by the whole matrix (rank 0). Done just before merging, one module at
  // a time: a convolution's whole difference is as large as its weight.
  void expandTucker();
};

}  // namespace sdnode

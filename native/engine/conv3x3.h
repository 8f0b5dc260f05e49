// The 3x3, stride-1, padding-1 convolution of graphs computed on the CPU: most of the VAE's time
// and a good part of the UNet's.
//
// ggml's direct convolution gathers each pixel's 3x3 neighbourhood from every channel plane one
// element at a time and scatters each output pixel back across the planes (a page per channel);
// on the VAE's full-resolution layers that gathering and scattering cost as much as the matrix
// product itself. Here the image is cut into bands of rows. For each band one op of ours writes the
// neighbourhoods row after row (whole rows of a plane converted at once), ggml's tiled GEMM multiplies
// them with the kernel so that the result comes out plane by plane, and a second op of ours copies
// each plane's band into place (adding the bias). The arithmetic is the direct convolution's: the
// same f16 (or f32) operands, the same products summed in the same order.
#pragma once

#include "ggml.h"

namespace sdnode {

class GraphBuild;

// Whether conv3x3Cpu takes this convolution: f16 or f32 kernel [3, 3, IC, OC], f32 input
// [W, H, IC, N], and IC a multiple of 16 (the GEMM's tiles take 9*IC in whole SIMD vectors).
bool conv3x3CpuFits(const ggml_tensor* x, const ggml_tensor* kernel);

// x: [W, H, IC, N] f32, kernel: [3, 3, IC, OC], bias: [OC] f32 or null -> [W, H, OC, N] f32.
// `circular` pads by wrapping around the edges (seamless tiling) instead of with zeros.
// `bandBytes` bounds the gathered neighbourhoods of one band (smaller in tests, to cut many bands).
constexpr int64_t kConvBandBytes = 32ll << 20;
ggml_tensor* conv3x3Cpu(GraphBuild& g, ggml_tensor* x, ggml_tensor* kernel, ggml_tensor* bias, bool circular,
                        int64_t bandBytes = kConvBandBytes);

}  // namespace sdnode

// SDXL's added conditioning: the pooled text vector followed by the size and crop embeddings (and
// the refiner's aesthetic score).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "sdnode.h"

namespace sdnode {

// Base: pooled ‖ emb(original H) ‖ emb(original W) ‖ emb(crop top) ‖ emb(crop left) ‖ emb(target H) ‖
// emb(target W); refiner (given an aesthetic score): pooled ‖ emb(original H) ‖ emb(original W) ‖
// emb(crop top) ‖ emb(crop left) ‖ emb(score). Each embedding is `embedWidth` wide; width and height
// (pixels) are the generated size, which the request's zero sizes stand for.
std::vector<float> sizeConditioning(const std::vector<float>& pooled, const Request& request, int width, int height,
                                    int64_t embedWidth, std::optional<float> aestheticScore = std::nullopt);

}  // namespace sdnode

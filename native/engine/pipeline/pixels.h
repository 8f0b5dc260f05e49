// The one mapping from the VAE's pixel range to bytes, shared by decoded images and previews.
#pragma once

#include <cstdint>

namespace sdnode {

// [0, 1] to 0–255, clamped. Truncation, as the reference tools convert to 8 bits.
inline uint8_t unitToByte(float v) {
  v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
  return static_cast<uint8_t>(v * 255.0f);
}

// [-1, 1] (the VAE's range) to 0–255, clamped.
inline uint8_t signedUnitToByte(float v) { return unitToByte((v + 1.0f) * 0.5f); }

}  // namespace sdnode

#include "rng.h"

#include <array>
#include <cmath>
#include <stdexcept>

namespace sdnode {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Philox4x32 constants (Salmon et al., "Parallel Random Numbers: As Easy as 1, 2, 3").
constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;

using Philox4 = std::array<uint32_t, 4>;

Philox4 philoxRound(const Philox4& c, uint32_t k0, uint32_t k1) {
  const uint64_t p0 = static_cast<uint64_t>(c[0]) * kPhiloxM0;
  const uint64_t p1 = static_cast<uint64_t>(c[2]) * kPhiloxM1;
  return {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k0, static_cast<uint32_t>(p1),
          static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k1, static_cast<uint32_t>(p0)};
}

Philox4 philox4x32x10(Philox4 counter, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 9; ++round) {
    counter = philoxRound(counter, k0, k1);
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return philoxRound(counter, k0, k1);
}

// curand's Box-Muller: the +half-step keeps u strictly inside (0, 1], so log(u) is finite.
// torch.randn on CUDA keeps only the sine branch for each element.
float curandBoxMullerSin(uint32_t x, uint32_t y) {
  constexpr float kTwoPow32Inv = 2.3283064e-10f;
  constexpr float kTwoPow32Inv2Pi = 2.3283064e-10f * 6.2831855f;
  const float u = static_cast<float>(x) * kTwoPow32Inv + kTwoPow32Inv / 2.0f;
  const float v = static_cast<float>(y) * kTwoPow32Inv2Pi + kTwoPow32Inv2Pi / 2.0f;
  return std::sqrt(-2.0f * std::log(u)) * std::sin(v);
}

// torch's normal_fill_16: Box-Muller over a block of 16 uniforms, pairing j with j + 8.
void boxMuller16(float* data) {
  for (int j = 0; j < 8; ++j) {
    const float u1 = 1.0f - data[j];  // [0, 1) -> (0, 1] so the log is finite
    const float u2 = data[j + 8];
    const float radius = std::sqrt(-2.0f * std::log(u1));
    const float theta = static_cast<float>(2.0 * kPi * static_cast<double>(u2));
    data[j] = radius * std::cos(theta);
    data[j + 8] = radius * std::sin(theta);
  }
}

}  // namespace

void PhiloxRng::seed(uint64_t s) {
  seed_ = s;
  offset_ = 0;
}

std::vector<float> PhiloxRng::randn(size_t n) {
  if (n > UINT32_MAX) {
    throw std::invalid_argument("randn: n = " + std::to_string(n) +
                                " exceeds the 2^32 elements one Philox offset can address");
  }
  const uint32_t k0 = static_cast<uint32_t>(seed_);
  const uint32_t k1 = static_cast<uint32_t>(seed_ >> 32);
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    const Philox4 r = philox4x32x10({offset_, 0u, static_cast<uint32_t>(i), 0u}, k0, k1);
    out[i] = curandBoxMullerSin(r[0], r[1]);
  }
  ++offset_;
  return out;
}

void Mt19937Rng::seed(uint64_t s) {
  // torch's mt19937 is seeded with the low 32 bits by the standard init_genrand recurrence,
  // which is what std::mt19937::seed does too.
  engine_.seed(static_cast<uint32_t>(s));
  cachedNormal_.reset();
}

// torch's uniform_real_distribution<float>: 24 random bits from one 32-bit draw.
float Mt19937Rng::uniformFloat() {
  const uint32_t bits = static_cast<uint32_t>(engine_()) & ((1u << 24) - 1u);
  return static_cast<float>(bits) * (1.0f / static_cast<float>(1u << 24));
}

// torch's uniform_real_distribution<double>: 53 bits of a 64-bit draw (first draw high).
double Mt19937Rng::uniformDouble() {
  const uint64_t hi = static_cast<uint32_t>(engine_());
  const uint64_t lo = static_cast<uint32_t>(engine_());
  const uint64_t bits = ((hi << 32) | lo) & ((uint64_t{1} << 53) - 1u);
  return static_cast<double>(bits) * (1.0 / static_cast<double>(uint64_t{1} << 53));
}

// torch's normal_distribution<double>, used for tensors of fewer than 16 elements.
double Mt19937Rng::normalDouble() {
  if (cachedNormal_) {
    const double value = *cachedNormal_;
    cachedNormal_.reset();
    return value;
  }
  const double u1 = uniformDouble();
  const double u2 = uniformDouble();
  const double radius = std::sqrt(-2.0 * std::log1p(-u2));
  const double theta = 2.0 * kPi * u1;
  cachedNormal_ = radius * std::sin(theta);
  return radius * std::cos(theta);
}

// torch's normal_fill: all uniforms first, then Box-Muller per block of 16; a ragged tail is
// redrawn as a fresh, overlapping block of the last 16 values.
void Mt19937Rng::fillVectorised(float* data, size_t n) {
  for (size_t i = 0; i < n; ++i) data[i] = uniformFloat();
  for (size_t i = 0; i + 16 <= n; i += 16) boxMuller16(data + i);
  if (n % 16 != 0) {
    float* tail = data + n - 16;
    for (size_t i = 0; i < 16; ++i) tail[i] = uniformFloat();
    boxMuller16(tail);
  }
}

std::vector<float> Mt19937Rng::randn(size_t n) {
  std::vector<float> out(n);
  if (n >= 16) {
    fillVectorised(out.data(), n);
  } else {
    for (float& v : out) v = static_cast<float>(normalDouble());
  }
  return out;
}

std::unique_ptr<Rng> makeRng(const std::string& kind) {
  if (kind == "gpu") return std::make_unique<PhiloxRng>();
  if (kind == "cpu") return std::make_unique<Mt19937Rng>();
  throw std::invalid_argument("rng: unknown kind '" + kind + "' (expected one of: gpu, cpu)");
}

}  // namespace sdnode

// Normal random numbers that reproduce torch.randn to float rounding, so a seed gives the
// same image here as in AUTOMATIC1111 and stable-diffusion.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace sdnode {

// One generator per image: the state carries across randn calls (initial noise first, then
// one call per ancestral step), exactly as the reference tools draw from theirs.
class Rng {
 public:
  virtual ~Rng() = default;
  virtual void seed(uint64_t s) = 0;
  virtual std::vector<float> randn(size_t n) = 0;
};

// torch.randn on a CUDA generator: Philox4x32-10 with Box-Muller. Needs no GPU.
class PhiloxRng : public Rng {
 public:
  explicit PhiloxRng(uint64_t s = 0) { seed(s); }
  void seed(uint64_t s) override;
  std::vector<float> randn(size_t n) override;

 private:
  uint64_t seed_ = 0;
  uint32_t offset_ = 0;  // torch advances it once per randn call, not per element
};

// torch.randn with the default CPU generator after torch.manual_seed(seed).
class Mt19937Rng : public Rng {
 public:
  explicit Mt19937Rng(uint64_t s = 0) { seed(s); }
  void seed(uint64_t s) override;
  std::vector<float> randn(size_t n) override;

 private:
  float uniformFloat();
  double uniformDouble();
  double normalDouble();
  void fillVectorised(float* data, size_t n);

  std::mt19937 engine_;
  // torch keeps the second Box-Muller value of its scalar path in the generator itself.
  std::optional<double> cachedNormal_;
};

// "gpu" -> PhiloxRng, "cpu" -> Mt19937Rng; anything else throws std::invalid_argument.
std::unique_ptr<Rng> makeRng(const std::string& kind);

}  // namespace sdnode

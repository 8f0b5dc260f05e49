// Linear multistep samplers: one model call per step (plms: two on the first), the step built
// from the slopes of the last few steps. They differ in where their weights come from:
// - lms: k-diffusion's, the Lagrange polynomial through the last four slopes integrated over
//   the actual sigma step, so uneven schedules (karras, exponential) keep their order;
// - ipndm: the fixed Adams-Bashforth weights of even steps, on the slope in sigma (Zhang and
//   Chen's improved PNDM, as stable-diffusion.cpp runs it), starting with Euler;
// - ipndm_v: the same, but its second step weighs the two slopes by the ratio of the step
//   lengths; its third and later steps keep the even-step weights, as stable-diffusion.cpp runs
//   it (r13 and r17 in bench/parity-samplers.mjs match it there);
// - plms: the latent-diffusion code's pseudo linear multistep: Adams-Bashforth on the predicted
//   noise, started by an improved Euler step, each step taken as a DDIM step.
#include <cmath>
#include <deque>
#include <utility>

#include "sampler_run.h"

namespace sdnode {

namespace {

constexpr int kMaxOrder = 4;

// Adams-Bashforth weights for even steps, newest slope first, as integer numerators over a
// common denominator (the form the reference engine computes them in, so the float rounding
// matches it).
struct AdamsBashforth {
  float numerators[kMaxOrder];
  float denominator;
};

const AdamsBashforth& adamsBashforth(int order) {
  static const AdamsBashforth weights[kMaxOrder] = {
      {{1, 0, 0, 0}, 1},
      {{3, -1, 0, 0}, 2},
      {{23, -16, 5, 0}, 12},
      {{55, -59, 37, -9}, 24},
  };
  return weights[order - 1];
}

// The last kMaxOrder slopes, newest first.
class SlopeHistory {
 public:
  void push(Latent slope) {
    slopes_.push_front(std::move(slope));
    if (slopes_.size() > kMaxOrder) slopes_.pop_back();
  }
  int size() const { return static_cast<int>(slopes_.size()); }
  const Latent& back(int stepsBack) const { return slopes_[stepsBack]; }

  // The even-step Adams-Bashforth combination of the newest `order` slopes.
  Latent adamsBashforthSlope(int order) const {
    const AdamsBashforth& ab = adamsBashforth(order);
    Latent out(slopes_.front().size());
    for (size_t j = 0; j < out.size(); ++j) {
      float sum = 0;
      for (int k = 0; k < order; ++k) sum += ab.numerators[k] * slopes_[k][j];
      out[j] = sum / ab.denominator;
    }
    return out;
  }

 private:
  std::deque<Latent> slopes_;
};

void addScaled(Latent& x, const Latent& d, float scale) {
  for (size_t j = 0; j < x.size(); ++j) x[j] += scale * d[j];
}

// The weight of the slope from `back` steps ago in the step from sigmas[i] to sigmas[i + 1]: the
// integral over that step of the Lagrange basis polynomial that is 1 at sigmas[i - back] and 0
// at the other order - 1 points (k-diffusion's linear_multistep_coeff). The polynomial has degree
// order - 1 <= 3, for which two-point Gauss-Legendre is exact (k-diffusion uses scipy's quad,
// also exact for it up to rounding).
double lmsWeight(const std::vector<float>& sigmas, int i, int order, int back) {
  const double from = sigmas[i], to = sigmas[i + 1];
  const double mid = 0.5 * (from + to), half = 0.5 * (to - from);
  const double offset = half / std::sqrt(3.0);
  auto basis = [&](double tau) {
    double product = 1.0;
    for (int k = 0; k < order; ++k) {
      if (k == back) continue;
      product *= (tau - sigmas[i - k]) / (static_cast<double>(sigmas[i - back]) - sigmas[i - k]);
    }
    return product;
  };
  return half * (basis(mid - offset) + basis(mid + offset));
}

// The loop lms, ipndm and ipndm_v share: one model call per step, its slope joins the history,
// then `step(x, history, i)` moves x from sigmas[i] to sigmas[i + 1].
template <typename Step>
Latent runOnSlopes(SamplerRun& run, Latent x, const std::vector<float>& sigmas, Step step) {
  const int steps = static_cast<int>(sigmas.size()) - 1;
  SlopeHistory history;
  for (int i = 0; i < steps; ++i) {
    history.push(slope(x, run.denoise(x, sigmas[i]), sigmas[i]));
    step(x, history, i);
    run.stepDone(i);
  }
  return x;
}

}  // namespace

Latent sampleLms(SamplerRun& run, Latent x, const std::vector<float>& sigmas) {
  return runOnSlopes(run, std::move(x), sigmas, [&](Latent& x, const SlopeHistory& history, int i) {
    // No polynomial passes through two slopes at one sigma (the lcm schedule repeats levels beyond
    // 50 steps), so the order is at most the run of distinct sigmas that ends here.
    int order = 1;
    while (order < history.size() && sigmas[i - order] != sigmas[i - order + 1]) ++order;
    for (int back = 0; back < order; ++back) {
      addScaled(x, history.back(back), static_cast<float>(lmsWeight(sigmas, i, order, back)));
    }
  });
}

Latent sampleIpndm(SamplerRun& run, Latent x, const std::vector<float>& sigmas) {
  return runOnSlopes(run, std::move(x), sigmas, [&](Latent& x, const SlopeHistory& history, int i) {
    addScaled(x, history.adamsBashforthSlope(history.size()), sigmas[i + 1] - sigmas[i]);
  });
}

Latent sampleIpndmVariable(SamplerRun& run, Latent x, const std::vector<float>& sigmas) {
  return runOnSlopes(run, std::move(x), sigmas, [&](Latent& x, const SlopeHistory& history, int i) {
    const float h = sigmas[i + 1] - sigmas[i];
    if (history.size() != 2) {
      addScaled(x, history.adamsBashforthSlope(history.size()), h);
      return;
    }
    const float hLast = sigmas[i] - sigmas[i - 1];
    if (hLast == 0) {
      // A repeated level left x and so the slope as they were: no second slope to weigh.
      addScaled(x, history.back(0), h);
      return;
    }
    // Second-order Adams-Bashforth for a step h after a step of another length.
    const float ratio = h / hLast;
    const Latent& d = history.back(0);
    const Latent& dLast = history.back(1);
    for (size_t j = 0; j < x.size(); ++j) x[j] += h * ((2 + ratio) * d[j] - ratio * dLast[j]) / 2;
  });
}

// With x in k-diffusion scale a DDIM step (eta 0) with noise prediction eps is x + (to - from) *
// eps, so PLMS is Adams-Bashforth on eps in sigma. Its first step is Heun's (the mean of the
// slopes at both ends); the history keeps the model's own eps, not the combined ones, as the
// latent-diffusion code does.
Latent samplePlms(SamplerRun& run, Latent x, const std::vector<float>& sigmas) {
  const int steps = static_cast<int>(sigmas.size()) - 1;
  SlopeHistory history;
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i];
    const float sigmaNext = ddimStepTarget(run.schedule(), sigmas[i + 1]);
    const float h = sigmaNext - sigma;
    Latent eps = slope(x, run.denoise(x, sigma), sigma);
    Latent epsStep;
    if (history.size() == 0) {
      Latent xEuler = x;
      addScaled(xEuler, eps, h);
      const Latent epsEnd = slope(xEuler, run.denoise(xEuler, sigmaNext), sigmaNext);
      epsStep.resize(x.size());
      for (size_t j = 0; j < x.size(); ++j) epsStep[j] = (eps[j] + epsEnd[j]) / 2;
      history.push(std::move(eps));
    } else {
      history.push(std::move(eps));
      epsStep = history.adamsBashforthSlope(history.size());
    }
    addScaled(x, epsStep, h);
    run.stepDone(i);
  }
  if (sigmas.back() == 0) leaveInDdimScale(x, run.schedule());
  return x;
}

}  // namespace sdnode

// Step caching: a model pass whose result can be foreseen is not run; its output is the pass's
// input plus the difference (output - input) the same pass gave at the last step that ran. Two
// modes, as stable-diffusion.cpp's --cache-mode names and defines them:
//  - easycache (flow transformers: FLUX.1, Chroma, SD3): after each pass of the conditional
//    prompt, the rate at which the output changed relative to the input is measured; at the next
//    step the output change is predicted from the input change, and the step is skipped while the
//    predictions summed since the last pass that ran stay under `threshold` (default 0.2).
//  - ucache (UNets: SD 1.x, 2.x, SDXL): the same estimate, scaled by the output's size and a
//    running mean of its changes (`relative`), grown with each skip in a row, decayed (`decay`)
//    and summed into an error that must stay under a threshold (default 1.0; half of it in the
//    first fifth of the active steps, 1.5 times it in the last fifth).
// Only steps inside [start, end] of the schedule (fractions; default 0.15 to 0.95) may be
// skipped. When the conditional pass of a step is skipped, the step's other passes are too.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "flow_schedule.h"
#include "sdnode.h"

namespace sdnode {

// Throws std::invalid_argument naming the field when the options are out of range or the mode
// does not suit the model (`flow`: a flow transformer).
void checkCacheOptions(const CacheOptions& options, bool flow);

class StepCache {
 public:
  // No caching.
  StepCache() = default;
  // ucache for a UNet: its active range is the part [start, end] of the pass's sigmas.
  static StepCache forUnet(const CacheOptions& options, const std::vector<float>& sigmas);
  // easycache for a flow transformer: its active range is the sigmas of the training timesteps
  // at the fractions start and end of the way from 999 to 0.
  static StepCache forFlow(const CacheOptions& options, const FlowSchedule& schedule);

  bool enabled() const { return mode_ != Mode::None; }

  // Before the model pass of `slot` (0: the step's conditional pass, then the others, each its own
  // slot) at the sampler's model call `step` (from 1; <= 0 for the first of a step's two calls,
  // which is never cached). `input`: what the network takes (the latent as scaled for it). True
  // when the pass is skipped: `output` is then its foreseen result.
  bool reuse(int slot, const std::vector<float>& input, float sigma, int step, std::vector<float>& output);
  // After a pass that ran, with the same slot, input and step as its reuse() call.
  void remember(int slot, const std::vector<float>& input, const std::vector<float>& output, int step);
  // Whether the current step's passes are skipped (its conditional pass was).
  bool stepSkipped() const { return active_ && skipping_; }
  int skippedSteps() const { return skippedSteps_; }

 private:
  enum class Mode { None, EasyCache, UCache };

  void beginStep(int stepIndex, float sigma);
  float ucacheThreshold() const;

  Mode mode_ = Mode::None;
  CacheOptions options_;
  float threshold_ = 0.0f;
  float fromSigma_ = 0.0f;  // active: toSigma_ < sigma <= fromSigma_
  float toSigma_ = 0.0f;
  int expectedSteps_ = 0;

  int stepIndex_ = -1;
  bool active_ = false;
  bool skipping_ = false;
  std::map<int, std::vector<float>> differences_;
  std::vector<float> previousInput_;
  std::vector<float> previousOutput_;
  float previousOutputSize_ = 0.0f;   // mean |output| of the last conditional pass
  float changeRate_ = 0.0f;           // |Δoutput| / |Δinput| at the last pass that could measure it
  bool hasChangeRate_ = false;
  float inputChange_ = 0.0f;          // mean |Δinput| measured at this step
  bool measuredInputChange_ = false;
  float summed_ = 0.0f;               // easycache's summed predictions, ucache's error
  float outputChangeMean_ = 0.0f;     // ucache: running mean of the output's change
  bool hasOutputChangeMean_ = false;
  int passesRun_ = 0;                 // ucache: conditional passes run in the active range
  int skippedInARow_ = 0;
  int skippedSteps_ = 0;
};

}  // namespace sdnode

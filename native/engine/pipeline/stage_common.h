// What the stage calls of every model family share: the checks of a sample request against its
// latent, ComfyUI's schedule window, and the noise-mask blend.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "backend.h"
#include "vae.h"
#include "sdnode.h"

namespace sdnode {

[[noreturn]] void stageFail(const std::string& what);

// Throws InvalidArgument naming the field: sizes (cells, a multiple of `cellStep`), batch,
// channels, noise mask, steps, denoise, window, cfg, previews, and that the text was encoded by a
// model of text width `textWidth` (0: not checked).
void checkStageSample(const SampleRequest& request, const LatentBatch& latent, int64_t channels, int cellStep, int64_t textWidth);

// ComfyUI's KSampler schedule: the full schedule of steps / denoise steps (`makeSigmas(n)` gives
// n + 1 sigmas), its last `steps`, then KSamplerAdvanced's window [startStep, endStep]. Empty when
// the window holds no step.
std::vector<float> stageSigmas(const SampleRequest& request, const std::function<std::vector<float>(int)>& makeSigmas);

// The callbacks' abort check, or one that never aborts.
std::function<bool()> stageAbortCheck(const Callbacks& callbacks);

// Each latent of the batch decoded by `decodeOne(latent, width, height)` (cells) to RGB bytes, the
// VAE's buffers freed after each, after checking the batch holds the VAE's channels and decodes to
// at most 4096 pixels a side.
std::vector<Image> decodeBatch(const LatentBatch& latent, Vae& vae, int vaeScale, Backend& backend, const Callbacks& callbacks,
                               const std::function<std::vector<uint8_t>(const std::vector<float>&, int64_t, int64_t)>& decodeOne);

// One image's latent from RGB bytes (width, height: multiples of `sizeStep` up to 4096): the VAE
// posterior's mean, or a sample drawn from a generator of kind `rngKind` seeded with `seed`.
LatentBatch encodeImageLatent(Vae& vae, int vaeScale, int sizeStep, const std::vector<uint8_t>& rgb, int width, int height, bool tiled,
                              bool sampled, uint64_t seed, const std::string& rngKind);

// The sampler's step hook of a single-pass call: Progress for image `image` of `images`, timed from `started`.
std::function<void(int, int)> stepReporter(const Callbacks& callbacks, int image, int images,
                                           std::chrono::steady_clock::time_point started);

// Inpainting by noise mask: the kept cells' prediction is the input's latent (mask 0 keeps, 1 repaints).
void blendKept(std::vector<float>& denoised, const std::vector<float>& input, const std::vector<float>& mask);

}  // namespace sdnode

// A flow-matching transformer model loaded from components (FLUX.1 schnell and dev): CLIP-L's pooled
// vector and T5's hidden states condition the transformer, which predicts the velocity from noise
// to image; the 16-channel VAE decodes.
#pragma once

#include <memory>

#include "backend.h"
#include "clip.h"
#include "components.h"
#include "flow_schedule.h"
#include "flux.h"
#include "sdnode.h"
#include "t5.h"
#include "vae.h"

namespace sdnode {

// One prompt through the text encoders.
struct FlowText {
  std::vector<float> context;  // T5's hidden states, [tokens, width]
  int64_t tokens = 0;
  std::vector<float> pooled;   // CLIP-L's pooled vector
};

class FlowModel : public Model {
 public:
  explicit FlowModel(const LoadParams& params);
  const ModelInfo& info() const override { return info_; }
  std::vector<Image> generate(const Request& request, const Callbacks& callbacks) override;

 private:
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Component> diffusion_;
  std::unique_ptr<Component> clipFile_;
  std::unique_ptr<Component> t5File_;
  std::unique_ptr<Component> vaeFile_;
  std::unique_ptr<FluxTransformer> flux_;
  std::unique_ptr<ClipTextEncoder> clip_;
  std::unique_ptr<T5Encoder> t5_;
  std::unique_ptr<Vae> vae_;
  FlowSchedule schedule_;
  std::string defaultScheduler_ = "flux";
  ModelInfo info_;

  void checkRequest(const Request& request) const;
  std::vector<Image> generateImages(const Request& request, const Callbacks& callbacks);
  FlowText encodePrompt(const Conditioning& clipTokens, const Conditioning& t5Tokens);
  std::vector<float> denoise(const std::vector<float>& x, float sigma, int64_t w, int64_t h, const FlowText& cond,
                             const FlowText* uncond, const Request& request);
  std::vector<uint8_t> decodeToRgb(const std::vector<float>& latent, int64_t w, int64_t h, bool tiled);
};

}  // namespace sdnode

// The Stable Diffusion safety checker: CLIP's vision tower (transformers' CLIPVisionModel layout)
// embeds each image, the visual projection maps the pooled class token into CLIP's joint space,
// and cosine similarities to fixed concept embeddings, less per-concept thresholds, decide.
#include <algorithm>
#include <cmath>

#include "checkpoint.h"
#include "clip.h"
#include "metadata.h"
#include "nn.h"
#include "sdnode.h"
#include "system_info.h"

namespace sdnode {

namespace {

const std::string kVision = "vision_model.vision_model.";
const std::string kProjection = "visual_projection";

bool isSafetyCheckerWeight(const CheckpointTensor& t) {
  if (!isWeightType(t.type) || t.elements() <= 0) return false;
  for (const char* prefix : {"vision_model.", "visual_projection.", "concept_embeds", "special_care_embeds"}) {
    if (t.name.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

const ClipLayerNames kVisionLayer = {"layer_norm1", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                     "self_attn.out_proj", "layer_norm2", "mlp.fc1", "mlp.fc2", ""};

// What the reference adds to every concept threshold's margin once a special-care concept matched.
constexpr double kSpecialCareAdjustment = 0.01;

struct VisionConfig {
  int64_t width = 1024;
  int64_t mlp = 4096;
  int64_t patch = 14;
  int64_t grid = 16;  // patches per side
  int64_t projection = 768;
  int layers = 24;
  int heads = 16;
  int64_t concepts = 17;
  int64_t specialConcepts = 3;
  int64_t positions() const { return grid * grid + 1; }
  int64_t imageSize() const { return grid * patch; }
};

// Before any weight is loaded: a file without these is something else (a model, another CLIP).
void requireSafetyChecker(const Checkpoint& file) {
  if (!file.tensors.count(kVision + "embeddings.patch_embedding.weight") || !file.tensors.count("concept_embeds")) {
    throw Error(ErrorCode::ModelUnsupported,
                file.path + ": not a Stable Diffusion safety checker in the transformers layout (expected "
                            "vision_model.vision_model.embeddings.patch_embedding.weight and concept_embeds)");
  }
}

VisionConfig readVisionConfig(const Weights& w, const std::map<std::string, std::string>& metadata, const std::string& path) {
  VisionConfig c;
  const auto& patch = w.shape(kVision + "embeddings.patch_embedding.weight");
  if (patch.size() != 4 || patch[1] != 3 || patch[2] != patch[3]) {
    throw Error(ErrorCode::ModelFormat, path + ": the patch embedding must be [width, 3, patch, patch]");
  }
  c.width = patch[0];
  c.patch = patch[2];
  const int64_t positions = w.shape(kVision + "embeddings.position_embedding.weight").at(0);
  c.grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(positions - 1))));
  if (positions < 2 || c.grid * c.grid + 1 != positions) {
    throw Error(ErrorCode::ModelFormat, path + ": " + std::to_string(positions) +
                                            " vision positions are not a square grid of patches plus the class token");
  }
  c.layers = countIndexed(w, kVision + "encoder.layers.", ".mlp.fc1.weight");
  if (c.layers == 0) throw Error(ErrorCode::ModelFormat, path + ": the vision tower has no layers");
  c.mlp = w.shape(kVision + "encoder.layers.0.mlp.fc1.weight").at(0);
  c.projection = w.shape(kProjection + ".weight").at(0);
  c.concepts = w.shape("concept_embeds").at(0);
  c.specialConcepts = w.shape("special_care_embeds").at(0);
  // ViT-L/14 has 16 heads of 64; shapes cannot tell, so the head size follows CLIP's convention.
  c.heads = metadataPositiveInt(metadata, "sdnode.vision_num_heads", static_cast<int>(c.width / 64));
  if (c.heads <= 0 || c.width % c.heads != 0) {
    throw Error(ErrorCode::ModelFormat, path + ": vision width " + std::to_string(c.width) + " does not split into " +
                                            std::to_string(c.heads) + " attention heads (metadata sdnode.vision_num_heads)");
  }
  return c;
}

// A weight's values on the host as f32, whatever its resident type.
std::vector<float> hostValues(ggml_tensor* t) {
  std::vector<float> out(ggml_nelements(t));
  if (t->type == GGML_TYPE_F32) {
    ggml_backend_tensor_get(t, out.data(), 0, ggml_nbytes(t));
  } else {
    std::vector<uint8_t> raw(ggml_nbytes(t));
    ggml_backend_tensor_get(t, raw.data(), 0, raw.size());
    ggml_get_type_traits(t->type)->to_float(raw.data(), out.data(), static_cast<int64_t>(out.size()));
  }
  return out;
}

// Rows scaled to unit length, as torch.nn.functional.normalize (eps 1e-12) does.
void normalizeRows(std::vector<float>& rows, int64_t width) {
  for (size_t r = 0; r * width < rows.size(); r++) {
    float* row = rows.data() + r * width;
    double sum = 0;
    for (int64_t i = 0; i < width; i++) sum += static_cast<double>(row[i]) * row[i];
    const double norm = std::max(std::sqrt(sum), 1e-12);
    for (int64_t i = 0; i < width; i++) row[i] = static_cast<float>(row[i] / norm);
  }
}

// The reference rounds each score to 3 decimals (numpy, half to even) before comparing it with 0.
bool above(double score) { return std::nearbyint(score * 1000.0) > 0; }

class SafetyCheckerModel : public SafetyChecker {
 public:
  explicit SafetyCheckerModel(const SafetyCheckerParams& params) : file_(openCheckpoint(params.path)) {
    requireSafetyChecker(file_);
    const int threads = params.threads > 0 ? params.threads : physicalCores();
    backend_ = std::make_unique<Backend>(params.backend, threads);
    weights_ = std::make_unique<Weights>(file_, GGML_TYPE_COUNT, threads, backend_->handle(), isSafetyCheckerWeight);
    config_ = readVisionConfig(*weights_, file_.metadata, file_.path);
    runner_ = std::make_unique<GraphRunner>(*backend_);
    const int64_t P = config_.projection;
    concepts_ = hostValues(weights_->get("concept_embeds", {config_.concepts, P}));
    special_ = hostValues(weights_->get("special_care_embeds", {config_.specialConcepts, P}));
    conceptThresholds_ = hostValues(weights_->get("concept_embeds_weights", {config_.concepts}));
    specialThresholds_ = hostValues(weights_->get("special_care_embeds_weights", {config_.specialConcepts}));
    normalizeRows(concepts_, P);
    normalizeRows(special_, P);
    GraphBuild g;
    build(g, nullptr, 1);

    info_.imageSize = static_cast<int>(config_.imageSize());
    info_.concepts = static_cast<int>(config_.concepts);
    info_.specialConcepts = static_cast<int>(config_.specialConcepts);
    info_.weightBytes = weights_->bytes();
    info_.backend = backend_->name();
  }

  const SafetyCheckerInfo& info() const override { return info_; }

  std::vector<SafetyVerdict> check(const std::vector<float>& pixels, int count) override {
    const int64_t S = config_.imageSize();
    if (count < 1 || pixels.size() != static_cast<size_t>(count) * 3 * S * S) {
      throw Error(ErrorCode::InvalidArgument, "the safety checker takes images of 3 x " + std::to_string(S) + " x " +
                                                  std::to_string(S) + " floats each");
    }
    std::vector<float> embeds = runner_->run([&](GraphBuild& g) { return build(g, pixels.data(), count); });
    normalizeRows(embeds, config_.projection);
    std::vector<SafetyVerdict> verdicts;
    for (int i = 0; i < count; i++) verdicts.push_back(judge(embeds.data() + i * config_.projection));
    return verdicts;
  }

 private:
  Checkpoint file_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Weights> weights_;
  std::unique_ptr<GraphRunner> runner_;
  VisionConfig config_;
  SafetyCheckerInfo info_;
  std::vector<float> concepts_, special_;  // unit rows [concepts, projection]
  std::vector<float> conceptThresholds_, specialThresholds_;

  // pixels: [S, S, 3, count] -> image embeddings [projection, count]
  ggml_tensor* build(GraphBuild& g, const float* pixels, int64_t count) {
    Net n{g.ctx(), *weights_};
    ggml_context* ctx = g.ctx();
    const VisionConfig& c = config_;
    const int64_t S = c.imageSize(), W = c.width, T = c.positions();
    ggml_tensor* x = g.input(GGML_TYPE_F32, {S, S, 3, count}, pixels);
    ggml_tensor* kernel = n.w.get(kVision + "embeddings.patch_embedding.weight", {W, 3, c.patch, c.patch});
    // Non-overlapping patches; no bias. [grid, grid, W, count] -> [W, grid*grid, count], rows first.
    ggml_tensor* patches = ggml_conv_2d_direct(ctx, kernel, x, static_cast<int>(c.patch), static_cast<int>(c.patch), 0, 0, 1, 1);
    patches = imageToTokens(ctx, patches);
    ggml_tensor* cls = ggml_reshape_3d(ctx, n.w.get(kVision + "embeddings.class_embedding", {W}), W, 1, 1);
    cls = ggml_repeat(ctx, cls, ggml_new_tensor_3d(ctx, GGML_TYPE_F32, W, 1, count));
    x = ggml_concat(ctx, cls, patches, 1);  // [W, T, count]
    x = ggml_add(ctx, x, n.w.get(kVision + "embeddings.position_embedding.weight", {T, W}));
    x = layerNorm(n, x, kVision + "pre_layrnorm", W);
    ClipLayerShape shape;
    shape.width = W;
    shape.mlp = c.mlp;
    shape.heads = c.heads;
    shape.exactAttention = true;
    for (int l = 0; l < c.layers; l++) x = clipLayer(n, x, kVision + "encoder.layers." + std::to_string(l) + ".", kVisionLayer, shape);
    // The pooled output: each image's class token, normalised.
    ggml_tensor* pooled = ggml_cont(ctx, ggml_view_2d(ctx, x, W, count, x->nb[2], 0));
    pooled = layerNorm(n, pooled, kVision + "post_layernorm", W);
    return linear(n, pooled, kProjection, W, c.projection, false);
  }

  // embedding: one unit row of `projection` floats.
  SafetyVerdict judge(const float* embedding) const {
    const int64_t P = config_.projection;
    auto cosine = [&](const std::vector<float>& rows, int64_t row) {
      double dot = 0;
      for (int64_t i = 0; i < P; i++) dot += static_cast<double>(embedding[i]) * rows[row * P + i];
      return dot;
    };
    SafetyVerdict verdict;
    // As the reference loops: a special-care match raises the margin of the scores after it.
    double adjustment = 0;
    for (int64_t j = 0; j < config_.specialConcepts; j++) {
      const double score = cosine(special_, j) - specialThresholds_[j] + adjustment;
      verdict.specialScores.push_back(static_cast<float>(score));
      if (above(score)) {
        verdict.specialCare = true;
        adjustment = kSpecialCareAdjustment;
      }
    }
    for (int64_t k = 0; k < config_.concepts; k++) {
      const double score = cosine(concepts_, k) - conceptThresholds_[k] + adjustment;
      verdict.conceptScores.push_back(static_cast<float>(score));
      if (above(score)) verdict.nsfw = true;
    }
    return verdict;
  }
};

}  // namespace

std::unique_ptr<SafetyChecker> SafetyChecker::load(const SafetyCheckerParams& params) {
  return std::make_unique<SafetyCheckerModel>(params);
}

}  // namespace sdnode

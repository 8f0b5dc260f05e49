// LoRA module names → checkpoint tensors. LoRA trainers name modules after the diffusers / Hugging
// Face layout ("down_blocks.0.attentions.0.proj_in", kohya writes it with '_' for '.'), while the
// checkpoint uses the single-file LDM names ("input_blocks.1.1.proj_in"). Rather than parse the
// ambiguous '_' spelling, every weight of the checkpoint is given its LoRA name(s), and LoRA files
// are looked up in that table. Each family lists its components: where they sit in the checkpoint,
// the kohya prefix and the diffusers prefix of their modules, and how their names are spelled.
#include <algorithm>
#include <cstring>
#include <vector>

#include "lora.h"
#include "unet_names.h"

namespace sdnode {

namespace {

enum class NameStyle {
  Unet,      // model.diffusion_model.* (LDM) ↔ diffusers UNet2DConditionModel
  HfClip,    // Hugging Face CLIPTextModel names on both sides
  OpenClip,  // OpenCLIP resblocks ↔ Hugging Face CLIPTextModel names (packed q/k/v split by rows)
  Flux,      // BFL's FLUX.1 names (kohya / ComfyUI) ↔ diffusers' FluxTransformer2DModel (q/k/v as row blocks)
  Mmdit,     // Stability's SD3 names (kohya / ComfyUI) ↔ diffusers' SD3Transformer2DModel (q/k/v as row blocks)
};

struct LoraComponent {
  const char* checkpointPrefix;
  const char* kohyaPrefix;
  const char* diffusersPrefix;
  NameStyle style;
};

// SDXL's two encoders are kohya's te1 (CLIP ViT-L, Hugging Face names in the checkpoint) and te2
// (OpenCLIP ViT-bigG, its resblocks), diffusers' text_encoder and text_encoder_2.
const std::vector<LoraComponent>& componentsOf(const std::string& family) {
  static const std::vector<LoraComponent> sd1 = {
      {"model.diffusion_model.", "lora_unet_", "unet.", NameStyle::Unet},
      {"cond_stage_model.transformer.", "lora_te_", "text_encoder.", NameStyle::HfClip},
  };
  static const std::vector<LoraComponent> sd2 = {
      {"model.diffusion_model.", "lora_unet_", "unet.", NameStyle::Unet},
      {"cond_stage_model.model.", "lora_te_", "text_encoder.", NameStyle::OpenClip},
  };
  static const std::vector<LoraComponent> sdxl = {
      {"model.diffusion_model.", "lora_unet_", "unet.", NameStyle::Unet},
      {"conditioner.embedders.0.transformer.", "lora_te1_", "text_encoder.", NameStyle::HfClip},
      {"conditioner.embedders.1.model.", "lora_te2_", "text_encoder_2.", NameStyle::OpenClip},
  };
  // FLUX.1's diffusion model is a component of its own, with bare names. Its LoRAs come as kohya
  // ("lora_unet_double_blocks_0_img_attn_qkv"), ComfyUI ("diffusion_model.double_blocks.0…") or
  // diffusers / PEFT ("transformer.transformer_blocks.0.attn.to_q") modules.
  static const std::vector<LoraComponent> flux = {
      {"", "lora_unet_", "diffusion_model.", NameStyle::Flux},
      {"", "lora_unet_", "transformer.", NameStyle::Flux},
  };
  // SD3's likewise: kohya ("lora_unet_joint_blocks_0_x_block_attn_qkv"), ComfyUI ("diffusion_model.joint_blocks.0…")
  // or diffusers / PEFT ("transformer.transformer_blocks.0.attn.to_q").
  static const std::vector<LoraComponent> sd3 = {
      {"", "lora_unet_", "diffusion_model.", NameStyle::Mmdit},
      {"", "lora_unet_", "transformer.", NameStyle::Mmdit},
  };
  static const std::vector<LoraComponent> none;
  if (family == "flux-schnell" || family == "flux-dev" || family == "chroma") return flux;
  if (family == "sd3" || family == "sd3.5") return sd3;
  if (family == "sd1") return sd1;
  if (family == "sd2") return sd2;
  if (family == "sdxl") return sdxl;
  return none;
}

bool startsWith(const std::string& text, const std::string& prefix) { return text.compare(0, prefix.size(), prefix) == 0; }

bool endsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string underscored(std::string name) {
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t dot = text.find('.', start);
    parts.push_back(text.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

std::string joinFrom(const std::vector<std::string>& parts, size_t first) {
  std::string out;
  for (size_t i = first; i < parts.size(); i++) out += (out.empty() ? "" : ".") + parts[i];
  return out;
}

bool toIndex(const std::string& text, int& out) {
  if (text.empty() || text.size() > 4 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  out = std::stoi(text);
  return true;
}

// A ResBlock's layers: LDM's Sequential indices → diffusers' names.
std::string resnetLayer(const std::string& rest) {
  static const std::pair<const char*, const char*> layers[] = {
      {"in_layers.0", "norm1"}, {"in_layers.2", "conv1"},  {"emb_layers.1", "time_emb_proj"},
      {"out_layers.0", "norm2"}, {"out_layers.3", "conv2"}, {"skip_connection", "conv_shortcut"},
  };
  for (const auto& [ldm, diffusers] : layers) {
    if (rest == ldm) return diffusers;
  }
  return "";
}

}  // namespace

UnetBlocks unetBlocks(const Checkpoint& file, const std::string& prefix) {
  std::map<int, bool> inputs, outputs;  // block → ends its level (down- / upsampler)
  for (const auto& [name, t] : file.tensors) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::vector<std::string> parts = split(name.substr(prefix.size()));
    int block = 0;
    if (parts.size() < 4 || !toIndex(parts[1], block)) continue;
    if (parts[0] == "input_blocks" && block >= 1) inputs[block] |= parts[2] == "0" && parts[3] == "op";
    if (parts[0] == "output_blocks") outputs[block] |= parts[2] != "0" && parts[3] == "conv";
  }
  UnetBlocks blocks;
  BlockPlace place;
  for (const auto& [block, down] : inputs) {
    blocks.input[block] = place;
    place.index++;
    if (down) place = {place.level + 1, 0};
  }
  place = {};
  for (const auto& [block, up] : outputs) {
    blocks.output[block] = place;
    place.index++;
    if (up) place = {place.level + 1, 0};
  }
  return blocks;
}

// The diffusers module path of an LDM UNet module path (without ".weight"), or "".
std::string diffusersUnetPath(const std::string& ldm, const UnetBlocks& blocks) {
  static const std::pair<const char*, const char*> fixed[] = {
      {"time_embed.0", "time_embedding.linear_1"}, {"time_embed.2", "time_embedding.linear_2"},
      {"label_emb.0.0", "add_embedding.linear_1"}, {"label_emb.0.2", "add_embedding.linear_2"},
      {"input_blocks.0.0", "conv_in"},            {"out.0", "conv_norm_out"},
      {"out.2", "conv_out"},
  };
  for (const auto& [from, to] : fixed) {
    if (ldm == from) return to;
  }
  const std::vector<std::string> parts = split(ldm);
  auto resnet = [](const std::string& owner, const std::string& rest) {
    const std::string layer = resnetLayer(rest);
    return layer.empty() ? std::string() : owner + "." + layer;
  };
  int block = 0, slot = 0;
  // middle_block.N.* has one index; the input and output blocks two.
  if (parts.size() >= 3 && parts[0] == "middle_block" && toIndex(parts[1], slot)) {
    const std::string rest = joinFrom(parts, 2);
    if (slot == 1) return "mid_block.attentions.0." + rest;
    if (slot == 0 || slot == 2) return resnet("mid_block.resnets." + std::to_string(slot / 2), rest);
    return "";
  }
  if (parts.size() < 4 || !toIndex(parts[1], block) || !toIndex(parts[2], slot)) return "";
  const std::string rest = joinFrom(parts, 3);
  if (parts[0] == "input_blocks" && blocks.input.count(block)) {
    const BlockPlace& at = blocks.input.at(block);
    const std::string level = std::to_string(at.level), index = std::to_string(at.index);
    if (slot == 0 && rest == "op") return "down_blocks." + level + ".downsamplers.0.conv";
    if (slot == 0) return resnet("down_blocks." + level + ".resnets." + index, rest);
    if (slot == 1) return "down_blocks." + level + ".attentions." + index + "." + rest;
  } else if (parts[0] == "output_blocks" && blocks.output.count(block)) {
    const BlockPlace& at = blocks.output.at(block);
    const std::string level = std::to_string(at.level), index = std::to_string(at.index);
    if (slot >= 1 && rest == "conv") return "up_blocks." + level + ".upsamplers.0.conv";
    if (slot == 0) return resnet("up_blocks." + level + ".resnets." + index, rest);
    if (slot == 1) return "up_blocks." + level + ".attentions." + index + "." + rest;
  }
  return "";
}

namespace {

// Hugging Face CLIP layer names of an OpenCLIP text tower's modules (resblocks.N.*).
void addOpenClip(const std::string& tensorName, const std::string& path, const CheckpointTensor& t, const LoraComponent& c,
                 std::map<std::string, LoraTarget>& out) {
  const std::vector<std::string> parts = split(path);
  int layer = 0;
  if (parts.size() < 4 || parts[0] != "transformer" || parts[1] != "resblocks" || !toIndex(parts[2], layer)) return;
  const std::string prefix = std::string(c.kohyaPrefix) + "text_model_encoder_layers_" + parts[2] + "_";
  const std::string rest = joinFrom(parts, 3);
  if (rest == "attn.in_proj_weight" && !t.shape.empty() && t.shape[0] % 3 == 0) {
    const int64_t third = t.shape[0] / 3;
    const char* names[] = {"self_attn_q_proj", "self_attn_k_proj", "self_attn_v_proj"};
    for (int i = 0; i < 3; i++) out[prefix + names[i]] = {tensorName, i * third, third, false};
    return;
  }
  static const std::pair<const char*, const char*> layers[] = {
      {"attn.q_proj.weight", "self_attn_q_proj"}, {"attn.k_proj.weight", "self_attn_k_proj"},
      {"attn.v_proj.weight", "self_attn_v_proj"}, {"attn.out_proj.weight", "self_attn_out_proj"},
      {"mlp.c_fc.weight", "mlp_fc1"},             {"mlp.c_proj.weight", "mlp_fc2"},
  };
  for (const auto& [openClip, hf] : layers) {
    if (rest == openClip) out[prefix + hf] = {tensorName, 0, 0, false};
  }
}

// What the diffusers-name tables of the transformers share: 2-D weights looked up by name, and the
// kohya spelling of a diffusers module mapped onto a weight (or a block of its rows).
class DiffusersTargets {
 public:
  DiffusersTargets(const Checkpoint& file, const char* kohya, std::map<std::string, LoraTarget>& targets)
      : file_(file), kohya_(kohya), targets_(targets) {}

  const std::vector<int64_t>* matrix(const std::string& name) const {
    auto it = file_.tensors.find(name);
    return it == file_.tensors.end() || it->second.shape.size() != 2 ? nullptr : &it->second.shape;
  }

  void add(const std::string& module, const std::string& tensor, int64_t firstRow = 0, int64_t rows = 0) {
    if (matrix(tensor)) targets_[kohya_ + underscored(module)] = {tensor, firstRow, rows, true};
  }

  // Modules that are whole weights: {diffusers module, weight without ".weight"}.
  template <size_t N>
  void addWhole(const std::pair<const char*, const char*> (&pairs)[N]) {
    for (const auto& [module, tensor] : pairs) add(module, std::string(tensor) + ".weight");
  }

 private:
  const Checkpoint& file_;
  std::string kohya_;
  std::map<std::string, LoraTarget>& targets_;
};

// diffusers' names for FLUX.1's weights, as kohya spells them: q, k and v of a joint attention are
// row blocks of BFL's packed qkv, and a single block's q, k, v and MLP input rows of linear1.
void addFluxDiffusers(const Checkpoint& file, const char* kohya, std::map<std::string, LoraTarget>& targets) {
  DiffusersTargets t(file, kohya, targets);
  const std::vector<int64_t>* imgIn = t.matrix("img_in.weight");
  if (!imgIn) return;
  const int64_t H = (*imgIn)[0];
  const std::pair<const char*, const char*> whole[] = {
      {"x_embedder", "img_in"}, {"context_embedder", "txt_in"}, {"proj_out", "final_layer.linear"},
      {"time_text_embed.timestep_embedder.linear_1", "time_in.in_layer"}, {"time_text_embed.timestep_embedder.linear_2", "time_in.out_layer"},
      {"time_text_embed.guidance_embedder.linear_1", "guidance_in.in_layer"}, {"time_text_embed.guidance_embedder.linear_2", "guidance_in.out_layer"},
      {"time_text_embed.text_embedder.linear_1", "vector_in.in_layer"}, {"time_text_embed.text_embedder.linear_2", "vector_in.out_layer"}};
  t.addWhole(whole);
  for (int b = 0; t.matrix("double_blocks." + std::to_string(b) + ".img_attn.qkv.weight"); b++) {
    const std::string d = "transformer_blocks." + std::to_string(b) + ".", p = "double_blocks." + std::to_string(b) + ".";
    const char* qkv[] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
      t.add(d + "attn.to_" + qkv[i], p + "img_attn.qkv.weight", i * H, H);
      t.add(d + "attn.add_" + qkv[i] + "_proj", p + "txt_attn.qkv.weight", i * H, H);
    }
    t.add(d + "attn.to_out.0", p + "img_attn.proj.weight");
    t.add(d + "attn.to_add_out", p + "txt_attn.proj.weight");
    t.add(d + "ff.net.0.proj", p + "img_mlp.0.weight");
    t.add(d + "ff.net.2", p + "img_mlp.2.weight");
    t.add(d + "ff_context.net.0.proj", p + "txt_mlp.0.weight");
    t.add(d + "ff_context.net.2", p + "txt_mlp.2.weight");
    t.add(d + "norm1.linear", p + "img_mod.lin.weight");
    t.add(d + "norm1_context.linear", p + "txt_mod.lin.weight");
  }
  for (int b = 0; t.matrix("single_blocks." + std::to_string(b) + ".linear1.weight"); b++) {
    const std::string d = "single_transformer_blocks." + std::to_string(b) + ".", p = "single_blocks." + std::to_string(b) + ".";
    const int64_t fused = (*t.matrix(p + "linear1.weight"))[0];
    const char* qkv[] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) t.add(d + "attn.to_" + qkv[i], p + "linear1.weight", i * H, H);
    t.add(d + "proj_mlp", p + "linear1.weight", 3 * H, fused - 3 * H);
    t.add(d + "proj_out", p + "linear2.weight");
    t.add(d + "norm.linear", p + "modulation.lin.weight");
  }
}

// diffusers' names for SD3's weights, as kohya spells them: q, k and v are row blocks of the packed
// qkv of the image stream (to_*), the text stream (add_*_proj) and SD3.5's second attention (attn2).
// The final layer's norm (diffusers' norm_out, scale before shift) is left out: its rows are in
// the other order.
void addMmditDiffusers(const Checkpoint& file, const char* kohya, std::map<std::string, LoraTarget>& targets) {
  DiffusersTargets t(file, kohya, targets);
  const std::vector<int64_t>* context = t.matrix("context_embedder.weight");
  if (!context) return;
  const int64_t H = (*context)[0];
  const std::pair<const char*, const char*> whole[] = {
      {"context_embedder", "context_embedder"}, {"proj_out", "final_layer.linear"},
      {"time_text_embed.timestep_embedder.linear_1", "t_embedder.mlp.0"}, {"time_text_embed.timestep_embedder.linear_2", "t_embedder.mlp.2"},
      {"time_text_embed.text_embedder.linear_1", "y_embedder.mlp.0"}, {"time_text_embed.text_embedder.linear_2", "y_embedder.mlp.2"}};
  t.addWhole(whole);
  for (int b = 0; t.matrix("joint_blocks." + std::to_string(b) + ".x_block.attn.qkv.weight"); b++) {
    const std::string d = "transformer_blocks." + std::to_string(b) + ".", x = "joint_blocks." + std::to_string(b) + ".x_block.",
                      c = "joint_blocks." + std::to_string(b) + ".context_block.";
    const char* qkv[] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
      t.add(d + "attn.to_" + qkv[i], x + "attn.qkv.weight", i * H, H);
      t.add(d + "attn.add_" + qkv[i] + "_proj", c + "attn.qkv.weight", i * H, H);
      t.add(d + "attn2.to_" + qkv[i], x + "attn2.qkv.weight", i * H, H);
    }
    t.add(d + "attn.to_out.0", x + "attn.proj.weight");
    t.add(d + "attn.to_add_out", c + "attn.proj.weight");
    t.add(d + "attn2.to_out.0", x + "attn2.proj.weight");
    t.add(d + "ff.net.0.proj", x + "mlp.fc1.weight");
    t.add(d + "ff.net.2", x + "mlp.fc2.weight");
    t.add(d + "ff_context.net.0.proj", c + "mlp.fc1.weight");
    t.add(d + "ff_context.net.2", c + "mlp.fc2.weight");
    t.add(d + "norm1.linear", x + "adaLN_modulation.1.weight");
    t.add(d + "norm1_context.linear", c + "adaLN_modulation.1.weight");
  }
}

// XLabs' FLUX.1 LoRAs name attention processors of the double blocks: lora1 is the image stream's,
// lora2 the text stream's (double_blocks.N.processor.qkv_lora1 → double_blocks.N.img_attn.qkv).
std::string xlabsModule(const std::string& name) {
  const std::vector<std::string> parts = split(name);
  int block = 0;
  if (parts.size() != 4 || parts[0] != "double_blocks" || !toIndex(parts[1], block) || parts[2] != "processor") return "";
  static const std::pair<const char*, const char*> layers[] = {
      {"qkv_lora1", "img_attn_qkv"}, {"proj_lora1", "img_attn_proj"}, {"qkv_lora2", "txt_attn_qkv"}, {"proj_lora2", "txt_attn_proj"}};
  for (const auto& [xlabs, bfl] : layers) {
    if (parts[3] == xlabs) return "lora_unet_double_blocks_" + parts[1] + "_" + bfl;
  }
  return "";
}

}  // namespace

std::map<std::string, LoraTarget> loraTargets(const std::string& family, const Checkpoint& file) {
  std::map<std::string, LoraTarget> targets;
  for (const LoraComponent& c : componentsOf(family)) {
    const UnetBlocks blocks = c.style == NameStyle::Unet ? unetBlocks(file, c.checkpointPrefix) : UnetBlocks();
    if (c.style == NameStyle::Flux) addFluxDiffusers(file, c.kohyaPrefix, targets);
    if (c.style == NameStyle::Mmdit) addMmditDiffusers(file, c.kohyaPrefix, targets);
    for (const auto& [name, t] : file.tensors) {
      // An empty tensor is never a loaded weight (isModelWeight), and its zero rows would divide
      // the LoRA shape checks by zero.
      if (!startsWith(name, c.checkpointPrefix) || t.shape.size() < 2 || t.elements() <= 0) continue;
      const std::string path = name.substr(std::strlen(c.checkpointPrefix));
      if (c.style == NameStyle::OpenClip) {
        addOpenClip(name, path, t, c, targets);
        continue;
      }
      if (!endsWith(path, ".weight")) continue;
      const std::string module = path.substr(0, path.size() - std::strlen(".weight"));
      const bool unet = c.style == NameStyle::Unet || c.style == NameStyle::Flux || c.style == NameStyle::Mmdit;
      targets[c.kohyaPrefix + underscored(module)] = {name, 0, 0, unet};
      if (c.style == NameStyle::Unet) {
        const std::string diffusers = diffusersUnetPath(module, blocks);
        if (!diffusers.empty()) targets[c.kohyaPrefix + underscored(diffusers)] = {name, 0, 0, true};
      }
    }
  }
  return targets;
}

std::string kohyaModuleName(const std::string& family, const std::string& module) {
  std::string name = startsWith(module, "base_model.model.") ? module.substr(std::strlen("base_model.model.")) : module;
  if (family == "flux-schnell" || family == "flux-dev") {
    const std::string xlabs = xlabsModule(name);
    if (!xlabs.empty()) return xlabs;
  }
  // diffusers' old attention-processor LoRAs: "attn1.processor.to_q_lora" is the module attn1.to_q.
  const size_t processor = name.find(".processor.");
  if (processor != std::string::npos) {
    name.erase(processor, std::strlen(".processor"));
    if (endsWith(name, "to_out_lora")) name = name.substr(0, name.size() - std::strlen("_lora")) + ".0";
    else if (endsWith(name, "_lora")) name.resize(name.size() - std::strlen("_lora"));
  }
  for (const LoraComponent& c : componentsOf(family)) {
    if (startsWith(name, c.diffusersPrefix)) return c.kohyaPrefix + underscored(name.substr(std::strlen(c.diffusersPrefix)));
  }
  return "";
}

}  // namespace sdnode

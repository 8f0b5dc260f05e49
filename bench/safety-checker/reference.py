#!/usr/bin/env python3
"""Independent reference for sdnode's safety checker, in PyTorch.

Writes a random-weight safety checker in the transformers layout of
CompVis/stable-diffusion-safety-checker (.safetensors), a few test images, and what the reference
pipeline decides for them: CLIPImageProcessor's preprocessing (Pillow bicubic, centre crop, CLIP's
mean and std), CLIPVisionModel's forward pass, the visual projection, and
StableDiffusionSafetyChecker.forward's scoring (rounded scores, the sequential special-care
adjustment). Each step is written out here with torch ops, in the order transformers and diffusers
run them, because neither package is installable on these machines.

    /usr/bin/python3 bench/safety-checker/reference.py --size full --out /tmp/sdnode-safety
    node bench/safety-checker.mjs --dir /tmp/sdnode-safety

Needs Debian's python3-torch and python3-pil.
"""

import argparse
import json
import struct
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)

# ViT-L/14 as the released checker has it, and a reduced tower of the same structure.
SIZES = {
    "full": dict(width=1024, layers=24, heads=16, mlp=4096, patch=14, image=224, projection=768),
    "reduced": dict(width=256, layers=4, heads=4, mlp=1024, patch=14, image=224, projection=128),
}
CONCEPTS, SPECIAL = 17, 3
LN_EPS = 1e-5


def random_checker(cfg, seed):
    """Weights under the checkpoint's names; scales keep activations of order one through every layer."""
    g = torch.Generator().manual_seed(seed)
    W, M, P = cfg["width"], cfg["mlp"], cfg["projection"]
    grid = cfg["image"] // cfg["patch"]

    def normal(*shape, std=1.0, mean=0.0):
        return torch.randn(*shape, generator=g) * std + mean

    t = {}
    v = "vision_model.vision_model."
    t[v + "embeddings.class_embedding"] = normal(W, std=W ** -0.5)
    t[v + "embeddings.patch_embedding.weight"] = normal(W, 3, cfg["patch"], cfg["patch"], std=0.02)
    t[v + "embeddings.position_embedding.weight"] = normal(grid * grid + 1, W, std=0.02)

    def norm(name):
        t[name + ".weight"] = normal(W, std=0.1, mean=1.0)
        t[name + ".bias"] = normal(W, std=0.02)

    def linear(name, out, inp, std, bias=True):
        t[name + ".weight"] = normal(out, inp, std=std)
        if bias:
            t[name + ".bias"] = normal(out, std=0.02)

    norm(v + "pre_layrnorm")
    for layer in range(cfg["layers"]):
        p = f"{v}encoder.layers.{layer}."
        # Sharp attention (queries and keys twice the usual scale), so that images stay apart.
        linear(p + "self_attn.q_proj", W, W, 2 * W ** -0.5)
        linear(p + "self_attn.k_proj", W, W, 2 * W ** -0.5)
        linear(p + "self_attn.v_proj", W, W, W ** -0.5)
        linear(p + "self_attn.out_proj", W, W, 0.5 * W ** -0.5)
        norm(p + "layer_norm1")
        linear(p + "mlp.fc1", M, W, W ** -0.5)
        linear(p + "mlp.fc2", W, M, 0.5 * M ** -0.5)
        norm(p + "layer_norm2")
    norm(v + "post_layernorm")
    linear("visual_projection", P, W, W ** -0.5, bias=False)
    t["concept_embeds"] = normal(CONCEPTS, P)
    t["special_care_embeds"] = normal(SPECIAL, P)
    return t


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    for name, tensor in tensors.items():
        size = tensor.numel() * 4
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for tensor in tensors.values():
            f.write(tensor.contiguous().numpy().astype("<f4").tobytes())


def test_images(out):
    """Square, wide, tall and small (upscaled) pictures with edges, gradients and noise."""
    rng = np.random.default_rng(7)
    images = {}
    y, x = np.mgrid[0:512, 0:512]
    gradient = np.stack([x / 2, y / 2, (x + y) / 4], axis=-1).astype(np.uint8)
    images["gradient-512x512"] = Image.fromarray(gradient)
    images["noise-768x512"] = Image.fromarray(rng.integers(0, 256, (512, 768, 3), dtype=np.uint8))
    shapes = Image.new("RGB", (512, 640), (30, 60, 90))
    draw = ImageDraw.Draw(shapes)
    draw.ellipse((80, 100, 420, 500), fill=(240, 200, 160))
    draw.rectangle((150, 250, 350, 330), fill=(120, 20, 40))
    images["shapes-512x640"] = shapes
    small = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).resize((200, 150), Image.NEAREST)
    images["blocks-200x150"] = small
    (out / "images").mkdir(parents=True, exist_ok=True)
    for name, image in images.items():
        image.save(out / "images" / f"{name}.png")
    return images


def preprocess(image, size):
    """CLIPImageProcessor: shortest edge to `size` (bicubic), centre crop, rescale, normalise; CHW."""
    image = image.convert("RGB")
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    if short != size:
        new_short, new_long = size, int(size * long / short)
        image = image.resize((new_short, new_long) if width <= height else (new_long, new_short), Image.BICUBIC)
    array = np.array(image)
    top = (array.shape[0] - size) // 2
    left = (array.shape[1] - size) // 2
    array = array[top:top + size, left:left + size]
    array = (array.astype(np.float64) * (1 / 255)).astype(np.float32)
    array = (array - CLIP_MEAN) / CLIP_STD
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def layer_norm(x, t, name):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), t[name + ".weight"], t[name + ".bias"], LN_EPS)


def linear(x, t, name, bias=True):
    return torch.nn.functional.linear(x, t[name + ".weight"], t[name + ".bias"] if bias else None)


def vision_embeds(pixels, t, cfg):
    """CLIPVisionModel(pixels).pooler_output through visual_projection: [batch, projection]."""
    v = "vision_model.vision_model."
    batch = pixels.shape[0]
    W, heads = cfg["width"], cfg["heads"]
    head_dim = W // heads
    patches = torch.nn.functional.conv2d(pixels, t[v + "embeddings.patch_embedding.weight"], stride=cfg["patch"])
    patches = patches.flatten(2).transpose(1, 2)
    cls = t[v + "embeddings.class_embedding"].expand(batch, 1, -1)
    x = torch.cat([cls, patches], dim=1) + t[v + "embeddings.position_embedding.weight"]
    x = layer_norm(x, t, v + "pre_layrnorm")
    tokens = x.shape[1]
    for layer in range(cfg["layers"]):
        p = f"{v}encoder.layers.{layer}."
        h = layer_norm(x, t, p + "layer_norm1")

        def split(y):
            return y.view(batch, tokens, heads, head_dim).transpose(1, 2)

        q = split(linear(h, t, p + "self_attn.q_proj"))
        k = split(linear(h, t, p + "self_attn.k_proj"))
        vv = split(linear(h, t, p + "self_attn.v_proj"))
        weights = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * head_dim ** -0.5, dim=-1, dtype=torch.float32)
        attended = torch.matmul(weights, vv).transpose(1, 2).reshape(batch, tokens, W)
        x = x + linear(attended, t, p + "self_attn.out_proj")
        h = layer_norm(x, t, p + "layer_norm2")
        h = linear(h, t, p + "mlp.fc1")
        h = h * torch.sigmoid(1.702 * h)  # quick_gelu
        x = x + linear(h, t, p + "mlp.fc2")
    pooled = layer_norm(x[:, 0, :], t, v + "post_layernorm")
    return linear(pooled, t, "visual_projection", bias=False)


def cosine(image_embeds, text_embeds):
    a = torch.nn.functional.normalize(image_embeds)
    b = torch.nn.functional.normalize(text_embeds)
    return torch.mm(a, b.t())


def judge(cos, special_cos, thresholds, special_thresholds):
    """StableDiffusionSafetyChecker.forward's loop for one image."""
    adjustment = 0.0
    special_scores, special_rounded, concept_scores, concept_rounded = [], [], [], []
    special_care = False
    for j in range(len(special_cos)):
        raw = float(special_cos[j]) - float(special_thresholds[j]) + adjustment
        special_scores.append(raw)
        special_rounded.append(round(special_cos[j] - float(special_thresholds[j]) + adjustment, 3))
        if special_rounded[-1] > 0:
            special_care = True
            adjustment = 0.01
    bad = []
    for k in range(len(cos)):
        raw = float(cos[k]) - float(thresholds[k]) + adjustment
        concept_scores.append(raw)
        concept_rounded.append(round(cos[k] - float(thresholds[k]) + adjustment, 3))
        if concept_rounded[-1] > 0:
            bad.append(k)
    return {
        "nsfw": len(bad) > 0, "specialCare": special_care, "badConcepts": bad,
        "conceptScores": concept_scores, "specialScores": special_scores,
        "conceptScoresRounded": [float(s) for s in concept_rounded],
        "specialScoresRounded": [float(s) for s in special_rounded],
    }


def own_column(values, row, taken):
    """The column where `row` stands highest above every other row (not in `taken`), and that margin."""
    others = np.delete(values, row, axis=0).max(axis=0)
    margins = values[row] - others
    margins[list(taken)] = -np.inf
    column = int(np.argmax(margins))
    return column, float(margins[column])


def designed_thresholds(cos, special_cos):
    """
    Thresholds that make the verdicts differ (every other one sits far above any similarity): the
    image that stands out most on a special-care concept matches it, and a concept only by the 0.01
    adjustment that brings; two others match a concept of their own; the last matches nothing.
    """
    thresholds = np.full(CONCEPTS, 1.0, dtype=np.float32)
    special_thresholds = np.full(SPECIAL, 1.0, dtype=np.float32)
    best = [own_column(special_cos, image, set()) for image in range(len(cos))]
    special_image = int(np.argmax([margin for _, margin in best]))
    column, margin = best[special_image]
    special_thresholds[column] = special_cos[special_image, column] - margin / 2
    taken = set()
    for image in [i for i in range(len(cos)) if i != special_image][:2]:
        column, margin = own_column(cos, image, taken)
        taken.add(column)
        thresholds[column] = cos[image, column] - margin / 2
    column, _ = own_column(cos, special_image, taken)
    thresholds[column] = cos[special_image, column] + 0.005
    return thresholds, special_thresholds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = SIZES[args.size]
    args.out.mkdir(parents=True, exist_ok=True)

    t = random_checker(cfg, args.seed)
    images = test_images(args.out)
    names = list(images)
    pixels = torch.stack([preprocess(images[name], cfg["image"]) for name in names])
    for i, name in enumerate(names):
        pixels[i].numpy().astype("<f4").tofile(args.out / "images" / f"{name}.f32")

    started = time.time()
    with torch.no_grad():
        embeds = vision_embeds(pixels, t, cfg)
    seconds = time.time() - started
    cos = cosine(embeds, t["concept_embeds"]).numpy()
    special_cos = cosine(embeds, t["special_care_embeds"]).numpy()

    thresholds, special_thresholds = designed_thresholds(cos, special_cos)
    t["concept_embeds_weights"] = torch.from_numpy(thresholds)
    t["special_care_embeds_weights"] = torch.from_numpy(special_thresholds)
    write_safetensors(args.out / "checker.safetensors", t, {
        "format": "pt", "generator": "sdnode bench/safety-checker/reference.py",
        "sdnode.vision_num_heads": str(cfg["heads"]),
    })

    results = [judge(cos[i], special_cos[i], thresholds, special_thresholds) for i in range(len(names))]
    json.dump({
        "size": args.size, "config": cfg, "seed": args.seed, "torch": torch.__version__, "threads": args.threads,
        "seconds": seconds,
        "images": [{"name": name, **result} for name, result in zip(names, results)],
    }, open(args.out / "reference.json", "w"), indent=1)
    for name, result in zip(names, results):
        print(f"{name}: nsfw={result['nsfw']} specialCare={result['specialCare']} bad={result['badConcepts']}")
    print(f"vision tower: {seconds:.1f} s for {len(names)} images ({args.size})")


if __name__ == "__main__":
    main()

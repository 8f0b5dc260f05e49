// The flags that give a model as component files (FLUX.1, SD3 and Z-Image as they are downloaded),
// shared by serve, worker, generate and info: --diffusion-model with --clip-l, --clip-g, --t5xxl, --llm, --vae,
// --t5-tokenizer for T5's vocabulary, and --kontext for a FLUX.1 Kontext file whose name does not
// say so (Kontext has FLUX.1 dev's tensors).

import type { ModelComponentSet } from '../models/components.js';
import { InvalidFieldError } from '../parse.js';

export const componentOptionSpec = {
  'diffusion-model': { type: 'string' },
  'clip-l': { type: 'string' },
  'clip-g': { type: 'string' },
  t5xxl: { type: 'string' },
  llm: { type: 'string' },
  vae: { type: 'string' },
  't5-tokenizer': { type: 'string' },
  kontext: { type: 'boolean' },
} as const;

/** Help lines for the flags, indented as the commands' own. */
export const componentUsage = `      --diffusion-model <file>  A model given as components (FLUX.1, SD3, SD3.5, Z-Image): the diffusion
                           model (flux1-dev.safetensors, sd3.5_medium.safetensors, a GGUF), in
                           place of --model; the model is named after this file. With:
      --clip-l <file>      its CLIP-L text encoder (clip_l.safetensors),
      --clip-g <file>      its OpenCLIP bigG text encoder (clip_g.safetensors; SD3 only),
      --t5xxl <file>       its T5-XXL encoder (t5xxl_fp16.safetensors, t5xxl_fp8_e4m3fn.safetensors),
      --llm <file>         its language-model text encoder (Z-Image: qwen_3_4b.safetensors),
      --vae <file>         its 16-channel VAE (FLUX.1's ae.safetensors; SD3 has its own),
      --t5-tokenizer <file> T5's vocabulary: spiece.model or tokenizer.json from FLUX.1's
                           tokenizer_2/ or SD3's tokenizer_3/ folder (sdnode ships none;
                           without it prompts fail).
      --kontext            the diffusion model is FLUX.1 Kontext (needed only when its file name
                           lacks "kontext"): image-to-image requests to the server send their
                           images as Kontext's reference images.
                           Each file may also be an hf:<owner>/<repo>/<file> or https:// reference
                           to a file downloaded with sdnode pull (or now, with --pull).`;

const companions = ['clip-l', 'clip-g', 't5xxl', 'llm', 'vae', 't5-tokenizer'] as const;
const keyOf = { 'clip-l': 'clipL', 'clip-g': 'clipG', t5xxl: 't5xxl', llm: 'llm', vae: 'vae', 't5-tokenizer': 't5Tokenizer' } as const;

type ComponentValues = Partial<Record<Exclude<keyof typeof componentOptionSpec, 'kontext'>, string>> & { kontext?: boolean; model?: string };

/**
 * The component set the flags give, or undefined without --diffusion-model. A companion flag
 * without --diffusion-model, or --model with it, is an InvalidFieldError naming the flags;
 * `tokenizerAlone` lets --t5-tokenizer stand alone (serve and worker: it then serves the
 * component models of --models).
 */
export function componentFlags(values: ComponentValues, options: { tokenizerAlone?: boolean } = {}): ModelComponentSet | undefined {
  const diffusionModel = values['diffusion-model'];
  if (diffusionModel === undefined) {
    if (values.kontext === true) {
      throw new InvalidFieldError('--kontext', '--kontext marks the model given with --diffusion-model <file> as FLUX.1 Kontext; '
        + 'in a models folder, give its JSON file "kontext": true instead (or a name containing "kontext")');
    }
    const stray = companions.find((flag) => values[flag] !== undefined && !(flag === 't5-tokenizer' && options.tokenizerAlone));
    if (stray !== undefined) {
      throw new InvalidFieldError(`--${stray}`, `--${stray} is a component of a model given as files: add --diffusion-model <file> `
        + `(with --clip-l, --t5xxl and --vae; SD3 also --clip-g), or leave --${stray} out`);
    }
    return undefined;
  }
  if (values.model !== undefined) {
    throw new InvalidFieldError('--model', '--model and --diffusion-model both name the model: give --model <checkpoint>, '
      + 'or --diffusion-model <file> with its --clip-l, --t5xxl and --vae (SD3 also --clip-g)');
  }
  const set: ModelComponentSet = { diffusionModel };
  for (const flag of companions) {
    const file = values[flag];
    if (file !== undefined) set[keyOf[flag]] = file;
  }
  if (values.kontext === true) set.kontext = true;
  return set;
}

// The API dialects a server can mount (--api), in the order their routes are tried.

import type { Dialect, ServerContext } from '../http/context.js';
import { a1111Dialect, type A1111Options } from './a1111/routes.js';
import { comfyuiDialect, type ComfyUiOptions } from './comfyui/routes.js';
import { m1Dialect } from './m1/routes.js';
import { generateDialect } from './generate/routes.js';
import { openaiDialect, type OpenAiOptions } from './openai/routes.js';
import { photoshopDialect } from './photoshop/routes.js';
import { sdcppDialect, type SdcppOptions } from './sdcpp/routes.js';
import { tasksDialect, type TasksOptions } from './tasks/routes.js';

export const dialectNames = ['m1', 'openai', 'a1111', 'tasks', 'photoshop', 'generate', 'comfyui', 'sdcpp'] as const;
export type DialectName = (typeof dialectNames)[number];

export function isDialectName(value: string): value is DialectName {
  return (dialectNames as readonly string[]).includes(value);
}

export interface DialectOptions {
  openai: OpenAiOptions;
  a1111: A1111Options;
  tasks: TasksOptions;
  comfyui: ComfyUiOptions;
  sdcpp: SdcppOptions;
}

export function selectDialects(names: readonly DialectName[], context: ServerContext, options: DialectOptions): Dialect[] {
  const factories: Record<DialectName, () => Dialect> = {
    m1: () => m1Dialect(context),
    openai: () => openaiDialect(context, options.openai),
    a1111: () => a1111Dialect(context, options.a1111),
    tasks: () => tasksDialect(context, options.tasks),
    photoshop: () => photoshopDialect(context),
    generate: () => generateDialect(context),
    comfyui: () => comfyuiDialect(context, options.comfyui),
    sdcpp: () => sdcppDialect(context, options.sdcpp),
  };
  return dialectNames.filter((name) => names.includes(name)).map((name) => factories[name]());
}

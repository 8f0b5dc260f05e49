// The API dialects a server can mount (--api), in the order their routes are tried.

import type { Dialect, ServerContext } from '../http/context.js';
import { m1Dialect } from './m1/routes.js';
import { openaiDialect, type OpenAiOptions } from './openai/routes.js';

export const dialectNames = ['m1', 'openai'] as const;
export type DialectName = (typeof dialectNames)[number];

export function isDialectName(value: string): value is DialectName {
  return (dialectNames as readonly string[]).includes(value);
}

export function selectDialects(names: readonly DialectName[], context: ServerContext, openai: OpenAiOptions): Dialect[] {
  const factories: Record<DialectName, () => Dialect> = {
    m1: () => m1Dialect(context),
    openai: () => openaiDialect(context, openai),
  };
  return dialectNames.filter((name) => names.includes(name)).map((name) => factories[name]());
}

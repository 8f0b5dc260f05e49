// Request schemas: written once with zod, they validate requests and become the OpenAPI document.
// Form fields (multipart, query strings) arrive as text and are parsed strictly ("12abc" is an
// error naming the field, not 12); their JSON Schema says what the text must hold.

import { z } from 'zod';

import { InvalidFieldError, parseDecimal, parseInteger, type NumberRange } from '../parse.js';

/** An integer sent as text, e.g. a multipart field. */
export function formInteger(name: string, range: NumberRange, description: string) {
  return z.string().transform((text, ctx) => parsedOrIssue(ctx, () => parseInteger(name, text, range)))
    .meta({ type: 'integer', minimum: range.min, maximum: range.max, description });
}

/** A decimal number sent as text. */
export function formNumber(name: string, range: NumberRange, description: string) {
  return z.string().transform((text, ctx) => parsedOrIssue(ctx, () => parseDecimal(name, text, range)))
    .meta({ type: 'number', ...rangeKeywords(range), description });
}

// HTML checkboxes send "on"; curl users write true/false or 1/0.
/** A boolean sent as text: true/false, 1/0, on/off, yes/no. */
export function formBoolean(name: string, description: string) {
  return z.string().transform((text, ctx) => parsedOrIssue(ctx, () => {
    const lower = text.trim().toLowerCase();
    if (['true', '1', 'on', 'yes'].includes(lower)) return true;
    if (['false', '0', 'off', 'no'].includes(lower)) return false;
    throw new InvalidFieldError(name, `Expected true or false (or 1 / 0) for ${name} but received ${text}`);
  })).meta({ type: 'boolean', description });
}

/** JSON Schema's words for a range: `exclusiveMinimum` where the minimum itself is not allowed. */
export function rangeKeywords(range: NumberRange): { minimum?: number; exclusiveMinimum?: number; maximum: number } {
  return range.minExclusive ? { exclusiveMinimum: range.min, maximum: range.max } : { minimum: range.min, maximum: range.max };
}

function parsedOrIssue<T>(ctx: z.RefinementCtx, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: error instanceof Error ? error.message : String(error) });
    return z.NEVER;
  }
}

/**
 * Text fields of a multipart body or query string, ready for a schema: a field sent empty (an
 * empty HTML input) counts as not sent; one sent twice is an error naming it.
 */
export function formFields(body: unknown): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(typeof body === 'object' && body !== null ? body : {})) {
    if (typeof value !== 'string') throw new InvalidFieldError(name, `${name} was given more than once`);
    if (value.trim() !== '') fields[name] = value;
  }
  return fields;
}

/**
 * Validates `data` against `schema`; the first problem becomes an InvalidFieldError naming the
 * field. `where` names the route in messages about unknown fields ("/text-to-image").
 */
export function parseWith<S extends z.ZodType>(schema: S, data: unknown, where: string): z.output<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const [issue] = result.error.issues;
  if (!issue) throw new InvalidFieldError('', 'Invalid request');
  if (issue.code === 'unrecognized_keys') {
    const [name = ''] = issue.keys;
    const accepted = schema instanceof z.ZodObject ? Object.keys(schema.shape as object).join(', ') : '';
    throw new InvalidFieldError(name, `Unknown field ${name} for ${where}; accepted fields: ${accepted}`);
  }
  const field = issue.path.map(String).join('.');
  if (issue.code === 'custom') throw new InvalidFieldError(field, issue.message);
  throw new InvalidFieldError(field, field === '' ? issue.message : `Invalid ${field}: ${issue.message}`);
}

/** JSON Schema (2020-12, as OpenAPI 3.1 uses) of what a client sends. */
export function requestJsonSchema(schema: z.ZodType): Record<string, unknown> {
  return withoutDialect(z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }));
}

/** JSON Schema of what the server answers. */
export function responseJsonSchema(schema: z.ZodType): Record<string, unknown> {
  return withoutDialect(z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'output', unrepresentable: 'any' }));
}

function withoutDialect(schema: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = schema;
  return rest;
}

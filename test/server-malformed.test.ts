// Malformed requests, generated from the server's own /openapi.json: for every operation of every
// dialect and every field of its body or query, a wrong type, values out of range, a missing
// required field, a 100 KB string, unicode / NUL / emoji, an object where a scalar goes and keys
// sent twice; for every body, an empty one and one that is not what its content type says. Each
// answer must be a 4xx in the dialect's own error shape where the schema says the request is
// invalid, may be a success where it could be valid, and is never a 5xx; the server still answers
// /health after the run.

import t from 'tap';

import { FakeModel, getJson, solidPng, startTestServer } from './server-helpers.js';

interface JsonSchema {
  type?: string | string[];
  anyOf?: JsonSchema[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: unknown;
  contentMediaType?: string;
}

interface Operation {
  tags: string[];
  parameters?: { name: string; in: 'path' | 'query'; required: boolean; schema: JsonSchema }[];
  requestBody?: { content: Record<string, { schema: JsonSchema }> };
}

type OpenApiDocument = { paths: Record<string, Record<string, Operation>> };

/** `invalid`: the schema forbids it, so a 4xx; `either`: it may be valid, so anything but a 5xx. */
type Expectation = 'invalid' | 'either';

interface Case {
  tag: string;
  label: string;
  method: string;
  path: string;
  expect: Expectation;
  headers?: Record<string, string>;
  body?: string | FormData;
}

const hugeText = 'a'.repeat(100 * 1024);
// Paths and query strings travel in the request line: Node refuses headers over 16 KB before any
// route sees them, so those get a long string that fits.
const longUrlText = 'b'.repeat(8 * 1024);
const oddText = ['cat \u0000 dog', '🐈‍⬛🔥 猫 \u202e\ufeff', '\ud800 lone surrogate', '%00%ff%', '../../etc/passwd'];

/** The schema's types, with anyOf flattened; empty when anything goes. */
function typesOf(schema: JsonSchema): string[] {
  if (schema.anyOf) return schema.anyOf.flatMap(typesOf);
  if (schema.type === undefined) return [];
  return Array.isArray(schema.type) ? schema.type : [schema.type];
}

function rangeOf(schema: JsonSchema): JsonSchema {
  return schema.anyOf?.find((option) => option.minimum !== undefined || option.maximum !== undefined) ?? schema;
}

function isFile(schema: JsonSchema): boolean {
  return schema.contentMediaType === 'application/octet-stream' || schema.items?.contentMediaType === 'application/octet-stream';
}

/** A value the schema takes, for the fields a baseline request must carry. */
function validValue(name: string, schema: JsonSchema, pngBase64: string): unknown {
  if (/image|mask/.test(name) && !/blur|invert|fidelity|number|count/.test(name)) {
    return typesOf(schema).includes('array') ? [pngBase64] : pngBase64;
  }
  if (schema.enum) return schema.enum[0];
  const types = typesOf(schema);
  const range = rangeOf(schema);
  if (types.includes('integer') || types.includes('number')) return range.minimum ?? range.maximum ?? 1;
  if (types.includes('boolean')) return true;
  if (types.includes('array')) return [];
  if (name === 'task_type') return 'txt2img';
  if (name === 'password') return 'a long enough password';
  return 'a cat';
}

/** Whether a number is of the schema's type and in its range. */
function numberExpect(schema: JsonSchema, value: number): Expectation {
  const types = typesOf(schema);
  if (types.length === 0) return 'either';
  const typed = types.includes('number') || (types.includes('integer') && Number.isInteger(value));
  const range = rangeOf(schema);
  const inRange = (range.minimum === undefined || value >= range.minimum) && (range.maximum === undefined || value <= range.maximum)
    && (range.exclusiveMinimum === undefined || value > range.exclusiveMinimum);
  return typed && inRange ? 'either' : 'invalid';
}

/** An integer above `maximum` that a double still tells apart from it (2^53 + 1 is 2^53). */
function above(maximum: number): number {
  return maximum + Math.max(1, 2 ** (Math.ceil(Math.log2(Math.abs(maximum) + 1)) - 50));
}

/** Mutated values of one field as JSON values, each with whether the schema forbids it. */
function jsonMutations(schema: JsonSchema): { label: string; value: unknown; expect: Expectation }[] {
  const types = typesOf(schema);
  const anything = types.length === 0;
  const allows = (type: string): boolean => anything || types.includes(type) || (type === 'integer' && types.includes('number'));
  const forbidden = (type: string): Expectation => (allows(type) ? 'either' : 'invalid');
  const textExpect: Expectation = schema.enum ? 'invalid' : forbidden('string');
  const mutations: { label: string; value: unknown; expect: Expectation }[] = [
    { label: 'a string', value: 'not a number', expect: textExpect },
    { label: 'a number', value: 12345, expect: numberExpect(schema, 12345) },
    { label: 'a fraction', value: 2.5, expect: numberExpect(schema, 2.5) },
    { label: 'a boolean', value: true, expect: forbidden('boolean') },
    { label: 'null', value: null, expect: forbidden('null') },
    { label: 'an array', value: [1, 'two', {}], expect: allows('array') ? 'either' : 'invalid' },
    { label: 'a nested object', value: { nested: { deeper: [{}] } }, expect: forbidden('object') },
    { label: 'a 100 KB string', value: hugeText, expect: textExpect },
    ...oddText.map((text) => ({ label: `the text ${JSON.stringify(text)}`, value: text, expect: textExpect })),
  ];
  const range = rangeOf(schema);
  if (range.minimum !== undefined) mutations.push({ label: 'below its minimum', value: range.minimum - 1, expect: 'invalid' });
  if (range.exclusiveMinimum !== undefined) mutations.push({ label: 'at its exclusive minimum', value: range.exclusiveMinimum, expect: 'invalid' });
  if (range.maximum !== undefined) {
    mutations.push({ label: 'above its maximum', value: above(range.maximum), expect: 'invalid' });
    mutations.push({ label: 'a huge number', value: 1e308, expect: 'invalid' });
  }
  return mutations;
}

/** Mutated values of one text field (multipart, form or query), each with whether the schema forbids it. */
function textMutations(schema: JsonSchema, maxText: string): { label: string; value: string; expect: Expectation }[] {
  const types = typesOf(schema);
  const freeText = (types.length === 0 || types.includes('string')) && !schema.enum;
  const textExpect: Expectation = freeText ? 'either' : 'invalid';
  const mutations: { label: string; value: string; expect: Expectation }[] = [
    { label: 'a word', value: 'notavalue', expect: textExpect },
    { label: 'a JSON object', value: '{"nested":{"deeper":[1]}}', expect: textExpect },
    { label: 'a number with trailing junk', value: '12abc', expect: textExpect },
    { label: 'a long string', value: maxText, expect: textExpect },
    ...oddText.map((text) => ({ label: `the text ${JSON.stringify(text)}`, value: text, expect: textExpect })),
  ];
  const range = rangeOf(schema);
  if (range.minimum !== undefined) mutations.push({ label: 'below its minimum', value: String(range.minimum - 1), expect: 'invalid' });
  if (range.maximum !== undefined) {
    mutations.push({ label: 'above its maximum', value: String(above(range.maximum)), expect: 'invalid' });
    mutations.push({ label: 'a number too long for a double', value: '9'.repeat(400), expect: 'invalid' });
  }
  return mutations;
}

/** The path with its parameters filled, each URL-encoded (a lone surrogate as the bytes a careless client sends). */
function fillPath(path: string, values: Record<string, string>): string {
  return path.replace(/\{([^}]+)\}/g, (_match, name: string) => {
    const value = values[name] ?? 'no-such-id';
    try {
      return encodeURIComponent(value);
    } catch {
      return `${encodeURIComponent(value.replace(/[\ud800-\udfff]/g, ''))}%ED%A0%80`;
    }
  });
}

function jsonBody(fields: Record<string, unknown>): string {
  return JSON.stringify(fields);
}

function formBody(fields: Record<string, string>, files: string[], png: Buffer, fileOverride?: { name: string; data: Uint8Array }): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  for (const name of files) {
    const data = fileOverride?.name === name ? fileOverride.data : png;
    form.append(name, new Blob([Uint8Array.from(data)], { type: 'image/png' }), `${name}.png`);
  }
  return form;
}

function urlEncoded(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

function textFields(fields: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(fields).map(([name, value]) => [name, typeof value === 'string' ? value : JSON.stringify(value)]));
}

/** Every malformed request for one operation. */
function casesFor(path: string, method: string, operation: Operation, png: Buffer): Case[] {
  const tag = operation.tags[0] ?? '';
  const cases: Case[] = [];
  const add = (label: string, expect: Expectation, request: Omit<Case, 'tag' | 'label' | 'method' | 'expect'>): void => {
    cases.push({ tag, label: `${method.toUpperCase()} ${path}: ${label}`, method: method.toUpperCase(), expect, ...request });
  };
  const pngBase64 = png.toString('base64');
  const pathParameters = (operation.parameters ?? []).filter((parameter) => parameter.in === 'path');
  const queryParameters = (operation.parameters ?? []).filter((parameter) => parameter.in === 'query');
  const basePath = fillPath(path, {});

  for (const parameter of pathParameters) {
    // Not '.' or '..': fetch resolves those before sending, so they name another path.
    for (const value of [longUrlText, ...oddText, 'a/b', '%2e%2e']) {
      add(`path ${parameter.name} = ${JSON.stringify(value.slice(0, 20))}`, 'invalid', { path: fillPath(path, { [parameter.name]: value }) });
    }
  }

  if (queryParameters.length > 0) {
    const required = Object.fromEntries(queryParameters.filter((parameter) => parameter.required)
      .map((parameter) => [parameter.name, String(validValue(parameter.name, parameter.schema, pngBase64))]));
    add('the required query only', 'either', { path: `${basePath}?${urlEncoded(required)}` });
    for (const parameter of queryParameters) {
      if (parameter.required) add(`query without ${parameter.name}`, 'invalid', { path: `${basePath}?${urlEncoded({ ...required, [parameter.name]: '' }).replace(`${parameter.name}=&`, '').replace(`&${parameter.name}=`, '')}` });
      for (const mutation of textMutations(parameter.schema, longUrlText)) {
        add(`query ${parameter.name} = ${mutation.label}`, mutation.expect, { path: `${basePath}?${urlEncoded({ ...required, [parameter.name]: mutation.value })}` });
      }
      add(`query ${parameter.name} given twice`, 'either', { path: `${basePath}?${urlEncoded(required)}&${parameter.name}=1&${parameter.name}=2` });
      add(`query ${parameter.name} as a nested object`, 'either', { path: `${basePath}?${urlEncoded(required)}&${parameter.name}[a][b]=1` });
    }
  }

  const content = Object.entries(operation.requestBody?.content ?? {})[0];
  if (!content) {
    if (method !== 'get') {
      add('a body that is not JSON', 'either', { path: basePath, headers: { 'content-type': 'application/json' }, body: '{"unterminated' });
      add('an empty JSON body', 'either', { path: basePath, headers: { 'content-type': 'application/json' }, body: '' });
    }
    return cases;
  }
  const [contentType, { schema }] = content;
  const properties = schema.properties ?? {};
  const required = schema.required ?? [];
  const files = Object.entries(properties).filter(([, property]) => isFile(property)).map(([name]) => name);
  const requiredFiles = files.filter((name) => required.includes(name));
  const baseline: Record<string, unknown> = {};
  for (const name of required) {
    const property = properties[name];
    if (property && !isFile(property)) baseline[name] = validValue(name, property, pngBase64);
  }
  const closed = schema.additionalProperties === false;

  const send = (label: string, expect: Expectation, fields: Record<string, unknown>, fileOverride?: { name: string; data: Uint8Array }): void => {
    if (contentType === 'application/json') {
      add(label, expect, { path: basePath, headers: { 'content-type': contentType }, body: jsonBody(fields) });
    } else if (contentType === 'multipart/form-data') {
      add(label, expect, { path: basePath, body: formBody(textFields(fields), requiredFiles, png, fileOverride) });
    } else {
      add(label, expect, { path: basePath, headers: { 'content-type': contentType }, body: urlEncoded(textFields(fields)) });
    }
  };

  send('the required fields only', 'either', baseline);
  send('an unknown field', closed ? 'invalid' : 'either', { ...baseline, no_such_field_here: 1 });
  for (const name of required) {
    if (isFile(properties[name] ?? {})) continue;
    const { [name]: _missing, ...rest } = baseline;
    send(`without required ${name}`, 'invalid', rest);
  }
  for (const name of requiredFiles) {
    add(`without required file ${name}`, 'invalid', {
      path: basePath, body: formBody(textFields(baseline), requiredFiles.filter((file) => file !== name), png),
    });
    send(`file ${name} that is not an image`, 'invalid', baseline, { name, data: new TextEncoder().encode('not an image at all') });
    send(`file ${name} that is empty`, 'invalid', baseline, { name, data: new Uint8Array() });
    send(`file ${name} that is a PNG cut short`, 'invalid', baseline, { name, data: png.subarray(0, 40) });
  }
  for (const [name, property] of Object.entries(properties)) {
    if (isFile(property)) continue;
    if (contentType === 'application/json') {
      for (const mutation of jsonMutations(property)) send(`${name} = ${mutation.label}`, mutation.expect, { ...baseline, [name]: mutation.value });
      const duplicated = jsonBody({ ...baseline, [name]: 'first' }).replace(/^\{/, `{${JSON.stringify(name)}:{"nested":1},`);
      add(`${name} given twice`, 'either', { path: basePath, headers: { 'content-type': contentType }, body: duplicated });
    } else {
      for (const mutation of textMutations(property, hugeText)) send(`${name} = ${mutation.label}`, mutation.expect, { ...baseline, [name]: mutation.value });
      if (contentType === 'multipart/form-data') {
        const form = formBody(textFields(baseline), requiredFiles, png);
        form.append(name, '1');
        form.append(name, '2');
        add(`${name} given twice`, 'either', { path: basePath, body: form });
      } else {
        add(`${name} given twice`, 'either', {
          path: basePath, headers: { 'content-type': contentType }, body: `${urlEncoded(textFields(baseline))}&${name}=1&${name}=2`,
        });
        add(`${name} as a nested form field`, 'either', {
          path: basePath, headers: { 'content-type': contentType }, body: `${urlEncoded(textFields(baseline))}&${name}[a][b]=1`,
        });
      }
    }
  }

  add('an empty body', 'invalid', { path: basePath, headers: { 'content-type': contentType }, body: '' });
  if (contentType === 'application/json') {
    add('a body that is not JSON', 'invalid', { path: basePath, headers: { 'content-type': 'application/json' }, body: '{"prompt": "cat",' });
    add('a JSON array for a body', 'invalid', { path: basePath, headers: { 'content-type': 'application/json' }, body: '[1,2,3]' });
    add('a JSON string for a body', 'invalid', { path: basePath, headers: { 'content-type': 'application/json' }, body: '"cat"' });
    add('plain text for a JSON route', 'invalid', { path: basePath, headers: { 'content-type': 'text/plain' }, body: 'a cat' });
    add('a body nested 10,000 deep', 'invalid', {
      path: basePath, headers: { 'content-type': 'application/json' }, body: `${'['.repeat(10_000)}${']'.repeat(10_000)}`,
    });
  } else if (contentType === 'multipart/form-data') {
    add('a multipart body cut short', 'invalid', {
      path: basePath, headers: { 'content-type': 'multipart/form-data; boundary=XYZ' }, body: '--XYZ\r\nContent-Disposition: form-data; name="prompt"\r\n\r\ncat',
    });
    add('a multipart type without a boundary', 'invalid', { path: basePath, headers: { 'content-type': 'multipart/form-data' }, body: 'prompt=cat' });
    add('JSON to a multipart route', 'invalid', { path: basePath, headers: { 'content-type': 'application/json' }, body: '{"prompt": "cat",' });
  } else {
    add('a form body with a broken escape', 'either', { path: basePath, headers: { 'content-type': contentType }, body: 'prompt=%E0%A4%A&x=%' });
  }
  return cases;
}

/** Whether `body` is an error in the dialect's own shape. */
function inDialectShape(tag: string, body: unknown): boolean {
  const object = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const error = (typeof object.error === 'object' && object.error !== null ? object.error : {}) as Record<string, unknown>;
  switch (tag) {
    case 'm1':
    case 'sdcpp':
      return typeof error.code === 'string' && typeof error.message === 'string';
    case 'openai':
      return typeof error.message === 'string' && typeof error.type === 'string' && 'code' in error && 'param' in error;
    case 'photoshop':
      return object.status === 'failure' && typeof object.message === 'string';
    case 'comfyui':
      return typeof error.type === 'string' && typeof error.message === 'string' && 'node_errors' in object;
    default:
      return typeof object.detail === 'string' || Array.isArray(object.detail);
  }
}

async function runPool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await work(items[next++] as T);
  }));
}

t.test('every malformed request to every documented route gets a 4xx in its dialect\'s shape, never a 5xx', async (t) => {
  const { url } = await startTestServer(t, { model: new FakeModel(), previewEvery: 0, maxQueue: 100_000 });
  const document = (await getJson(`${url}/openapi.json`)).body as unknown as OpenApiDocument;
  const png = await solidPng(64, 64);
  const cases = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).flatMap(([method, operation]) => casesFor(path, method, operation, png)));

  const perDialect = new Map<string, number>();
  for (const item of cases) perDialect.set(item.tag, (perDialect.get(item.tag) ?? 0) + 1);
  t.comment(`${cases.length} requests: ${[...perDialect].map(([tag, count]) => `${tag} ${count}`).join(', ')}`);
  t.ok(cases.length > 1000, `a corpus of ${cases.length} requests`);
  t.same([...perDialect.keys()].sort(), ['a1111', 'comfyui', 'generate', 'm1', 'openai', 'photoshop', 'sdcpp', 'tasks']);

  const failures: string[] = [];
  await runPool(cases, 8, async (item) => {
    const response = await fetch(`${url}${item.path}`, {
      method: item.method, ...(item.headers && { headers: item.headers }), ...(item.body !== undefined && { body: item.body }),
    });
    const text = await response.text();
    const status = response.status;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    const describe = (): string => `${item.label} → ${status} ${text.slice(0, 200)}`;
    if (status >= 500) failures.push(`5xx: ${describe()}`);
    else if (item.expect === 'invalid' && (status < 400 || status >= 500)) failures.push(`accepted although invalid: ${describe()}`);
    else if (status >= 400 && !inDialectShape(item.tag, body)) failures.push(`not in ${item.tag}'s error shape: ${describe()}`);
  });
  t.same(failures, [], `${failures.length} of ${cases.length} requests answered wrongly`);

  const health = await getJson(`${url}/health`);
  t.equal(health.status, 200, 'the server still answers /health');
});

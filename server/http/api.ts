// Routes are declared once: method, path, schemas and handler. Declaring one mounts it on the
// dialect's router and records it for the OpenAPI document, so the document cannot drift from
// the routes that exist.

import type { RequestHandler, Router } from 'express';
import type { z } from 'zod';

import { methodNotAllowed } from './errors.js';
import { requestJsonSchema, responseJsonSchema } from './schema.js';

export type Method = 'get' | 'post' | 'delete';

export interface FileFieldSpec {
  name: string;
  description: string;
  required: boolean;
  /** More than one file may be sent under this name. */
  multiple?: boolean;
}

export interface ResponseSpec {
  description: string;
  /** A JSON body; absent for binary or streamed answers. */
  schema?: z.ZodType;
  /** Media type of a non-JSON answer, e.g. 'image/png' or 'text/event-stream'. */
  contentType?: string;
  /** Further media types the same answer may come in (content negotiation, streaming). */
  alternatives?: Record<string, { schema?: z.ZodType; description?: string }>;
}

export interface RouteSpec {
  method: Method;
  /** Express path: '/text-to-image/:id'. */
  path: string;
  /** The dialect, as an OpenAPI tag. */
  tag: string;
  summary: string;
  description?: string;
  /** Whether an API key is needed when keys are configured. Default true. */
  auth?: boolean;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: {
    contentType: 'application/json' | 'multipart/form-data' | 'application/x-www-form-urlencoded';
    schema: z.ZodType;
    files?: FileFieldSpec[];
  };
  responses: Record<number, ResponseSpec>;
}

/** Every declared route, across dialects. */
export class ApiRegistry {
  readonly routes: RouteSpec[] = [];

  /**
   * Records `spec` and mounts `handlers` on `router` (Express 5 passes rejected promises to the
   * error handler). Other methods on the same path answer 405.
   */
  route(router: Router, spec: RouteSpec, ...handlers: RequestHandler[]): void {
    this.routes.push(spec);
    router[spec.method](spec.path, ...handlers);
  }

  /** After a dialect's routes: 405 for paths it declared with other methods. */
  refuseOtherMethods(router: Router, tag: string): void {
    const methodsByPath = new Map<string, Set<string>>();
    for (const spec of this.routes.filter((route) => route.tag === tag)) {
      const methods = methodsByPath.get(spec.path) ?? new Set();
      methods.add(spec.method.toUpperCase());
      methodsByPath.set(spec.path, methods);
    }
    for (const [path, methods] of methodsByPath) router.all(path, methodNotAllowed([...methods]));
  }

  /** The OpenAPI 3.1 document of every route declared so far, its paths under `prefix` (--api-prefix, '' for none). */
  document(info: { title: string; version: string; description: string }, tags: { name: string; description: string }[],
    prefix = ''): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const spec of this.routes) {
      const path = prefix + spec.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      paths[path] ??= {};
      (paths[path] as Record<string, unknown>)[spec.method] = operation(spec);
    }
    const usedTags = new Set(this.routes.map((route) => route.tag));
    return {
      openapi: '3.1.0',
      info,
      tags: tags.filter((tag) => usedTags.has(tag.name)),
      paths,
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'A key given with --api-key' } },
      },
    };
  }
}

function operation(spec: RouteSpec): Record<string, unknown> {
  const parameters = [
    ...parametersOf(spec.params, 'path'),
    ...parametersOf(spec.query, 'query'),
  ];
  const responses: Record<string, unknown> = {};
  for (const [status, response] of Object.entries(spec.responses)) {
    const content: Record<string, unknown> = {};
    if (response.schema) content['application/json'] = { schema: responseJsonSchema(response.schema) };
    if (response.contentType) content[response.contentType] = {};
    for (const [type, alternative] of Object.entries(response.alternatives ?? {})) {
      content[type] = alternative.schema ? { schema: responseJsonSchema(alternative.schema) } : {};
    }
    responses[status] = { description: response.description, ...(Object.keys(content).length > 0 && { content }) };
  }
  return {
    tags: [spec.tag],
    summary: spec.summary,
    ...(spec.description !== undefined && { description: spec.description }),
    operationId: `${spec.tag}_${spec.method}_${spec.path.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '')}`,
    ...(parameters.length > 0 && { parameters }),
    ...(spec.body && { requestBody: requestBody(spec.body) }),
    responses,
    ...(spec.auth === false ? { security: [] } : { security: [{ apiKey: [] }] }),
  };
}

function parametersOf(schema: z.ZodObject | undefined, where: 'path' | 'query'): Record<string, unknown>[] {
  if (!schema) return [];
  const json = requestJsonSchema(schema) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => {
    const { description, ...propertySchema } = property;
    return {
      name,
      in: where,
      required: where === 'path' || (json.required ?? []).includes(name),
      ...(description !== undefined && { description }),
      schema: propertySchema,
    };
  });
}

function requestBody(body: NonNullable<RouteSpec['body']>): Record<string, unknown> {
  const schema = requestJsonSchema(body.schema) as { properties?: Record<string, unknown>; required?: string[] };
  for (const file of body.files ?? []) {
    const binary = { type: 'string', contentMediaType: 'application/octet-stream', description: file.description };
    schema.properties = { ...schema.properties, [file.name]: file.multiple ? { type: 'array', items: binary } : binary };
    if (file.required) schema.required = [...(schema.required ?? []), file.name];
  }
  return { required: true, content: { [body.contentType]: { schema } } };
}

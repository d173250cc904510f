// GET /api/openapi.json: OpenAPI 3.1 of every /api route, made from the zod schemas the routes
// parse their input with and the schemas of their replies (zod's JSON Schema output). A route
// is described once, next to its handler (describeRoute); app.ts gives every router's list to
// openApiRouter. A test fails when a mounted /api route is missing or answers other than described.
import express from 'express';
import { z } from 'zod';
import { errorBody, isFileReply, type RouteDoc, describeRoute } from '../route-doc.js';

const openApiRoute = describeRoute({
  method: 'get',
  path: '/api/openapi.json',
  summary: 'This document (OpenAPI 3.1)',
  auth: false,
  replies: {
    200: z
      .object({
        openapi: z.string(),
        info: z.object({ title: z.string(), version: z.string(), description: z.string() }),
        paths: z.record(z.string(), z.unknown()),
      })
      .loose(),
  },
});

type JsonSchema = Record<string, unknown>;

/** zod -> JSON Schema 2020-12 (OpenAPI 3.1's dialect): inputs as a client sends them (before
 * defaults and coercion), replies as the service sends them. */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

/** /api/listings/:id -> /api/listings/{id} */
export const openApiPath = (expressPath: string) => expressPath.replace(/:(\w+)/g, '{$1}');

function parameters(doc: RouteDoc) {
  const list: JsonSchema[] = [];
  for (const [where, schema] of [
    ['path', doc.params],
    ['query', doc.query],
  ] as const) {
    if (!schema) continue;
    const s = jsonSchema(schema, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] };
    for (const [name, property] of Object.entries(s.properties ?? {})) {
      list.push({ name, in: where, required: where === 'path' || (s.required ?? []).includes(name), schema: property });
    }
  }
  return list;
}

function operation(doc: RouteDoc) {
  const responses: Record<string, unknown> = {};
  for (const [status, reply] of Object.entries(doc.replies)) {
    responses[status] = isFileReply(reply)
      ? { description: reply.description, content: { [reply.contentType]: { schema: { type: 'string', format: 'binary' } } } }
      : { description: 'OK', content: { 'application/json': { schema: jsonSchema(reply, 'output') } } };
  }
  responses.default = {
    description:
      'an error: bad input (400), no or wrong token (401), not found (404), conflict (409), database unavailable (503)',
    content: { 'application/json': { schema: jsonSchema(errorBody, 'output') } },
  };
  return {
    summary: doc.summary,
    security: doc.auth === false ? [] : [{ apiToken: [] }],
    parameters: parameters(doc),
    ...(doc.body
      ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(doc.body, 'input') } } } }
      : {}),
    responses,
  };
}

export function openApiDocument(routes: RouteDoc[]) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const doc of routes) {
    const path = openApiPath(doc.path);
    paths[path] = { ...paths[path], [doc.method]: operation(doc) };
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Tixstock reseller integration service API',
      version: '1',
      description:
        'The inventory, the webhook log and the orders with their ticket PDFs. ' +
        'Lists are {"items": [...], "next": cursor or null}; errors are {"success": false, "message", "errors"}.',
    },
    components: { securitySchemes: { apiToken: { type: 'http', scheme: 'bearer', description: 'API_TOKEN' } } },
    security: [{ apiToken: [] }],
    paths,
  };
}

/** The document of these routes (and of itself), without the API token. Mounted before the /api
 * routers that require it. */
export function openApiRouter(routes: RouteDoc[]): express.Router {
  const router = express.Router();
  let document: string | undefined;
  router.get(openApiRoute.path, (_req, res) => {
    document ??= JSON.stringify(openApiDocument([openApiRoute, ...routes]));
    res.type('application/json').send(document);
  });
  return router;
}

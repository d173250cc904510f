// The description of one /api route: its path, its inputs and its replies as zod schemas. The
// routes use the same schemas to parse their input; the OpenAPI document (openapi.ts) is made
// from them, and a test checks real replies of every mounted route against that document.
import { z } from 'zod';

/** Every error; some carry more, e.g. the hold a refused sale was about. */
export const errorBody = z.looseObject({
  success: z.literal(false),
  message: z.string(),
  errors: z.array(z.string()),
});

/** A list reply: `next` is the cursor for `after`, null on the last page. */
export const pageOf = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), next: z.string().nullable() });

/** A page of rows ordered by id: `next` is the last id when the page is full. */
export function listPage(items: readonly Record<string, unknown>[], limit: number) {
  const last = items[items.length - 1];
  return { items, next: items.length === limit && last ? String(last.id) : null };
}

/** `limit` of a list: 1 to 500 rows. */
export const pageLimit = (byDefault = 100) => z.coerce.number().int().min(1).max(500).default(byDefault);

/** The `:id` of a route's path. */
export const idParam = z.object({ id: z.string() });

/** A reply that is not JSON, e.g. a PDF download. */
export interface FileReply {
  contentType: string;
  description: string;
}

export type Reply = z.ZodType | FileReply;

export interface RouteDoc {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** express's path, e.g. /api/listings/:id */
  path: string;
  summary: string;
  /** false for the few routes without the API token (the document itself) */
  auth?: boolean;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** Replies by status; every route also answers errors in errorBody's shape (400, 401, 404, 503). */
  replies: Record<number, Reply>;
}

/** A route's description, checked by the compiler; app.ts gives each router's list to openApiRouter. */
export function describeRoute(doc: RouteDoc): RouteDoc {
  return doc;
}

export const isFileReply = (r: Reply): r is FileReply => typeof (r as FileReply).contentType === 'string';

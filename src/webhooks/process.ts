// One signed webhook, start to finish: classify it (JSON, envelope, version, type, schema),
// then record it in the delivery log and apply it in ONE transaction. Used by the receiver and
// by replays. Errors that mean "database unavailable" are thrown: the caller answers 503 and
// nothing was written.
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import { groupCommit, type GroupCommit } from '../db/group-commit.js';
import { hotPoolSize } from '../db/open.js';
import {
  beforeDeadline,
  COMMIT_CONFIRM_MS,
  CommitOutcomeUnknown,
  isConnectionLost,
  isDatabaseUnavailable,
  isDataException,
  transactionWithDeadline,
} from '../db/transaction.js';
import { sha256InSteps } from '../digest.js';
import { applyQuantityDeltas, listingLockedBy, type DeltaOfDelivery, type RecordedDelta } from '../inventory/quantity-deltas.js';
import { findNul } from '../http.js';
import { addLogContext, log } from '../log.js';
import { InvalidJsonString, LIFT_MIN, materializeStrings, readJsonBody } from '../json-bytes.js';
import type { Outcome } from '../replies.js';
import { redactSecrets } from './redact.js';
import { isPdfStored } from '../tickets/store.js';
import {
  deliveryCommitted,
  findRetryOfBody,
  findRetryOfEntity,
  finishDelivery,
  insertDelivery,
  isAlreadyReplayed,
  recordedDelivery,
  referencedBodyOf,
  restoreFullBody,
  retryLookup,
  takeDeliveryId,
  type DeliveryRefs,
  type NewDelivery,
} from './deliveries.js';
import { normalizeVersion, webhookRegistry, type AnyWebhook } from './registry.js';
import { bodyWithTicketReference } from './stored-body.js';
import { v1Webhooks } from './v1/index.js';

const webhooks = webhookRegistry({ v1: v1Webhooks });

/** The pools a webhook's way uses: `hot`, when given, for holds and releases (db/open.ts). */
export interface PipelineDeps {
  sql: Sql;
  hot?: Sql;
  config: Config;
}

export interface IncomingDelivery {
  raw: Buffer;
  versionHeader: string | undefined;
  contentType: string | undefined;
  path: string;
  /** Headers kept in the log (never the signature). */
  headers: Record<string, string>;
  replayOf?: string;
  /** Called when it waits without needing a processing slot (a hold waiting for its batch). */
  leaveSlot?: () => void;
  /** Date.now() by which it must have reached its COMMIT, counted by the receiver from the first
   * byte (waiting included); default: webhookDeadlineMs from now (replays). */
  deadlineAt?: number;
}

export interface ProcessedDelivery {
  status: number;
  outcome: Outcome;
  reply: Record<string, unknown>;
  deliveryId: string | null;
  version: string;
  type: string | null;
  refs: DeliveryRefs;
}

const envelope = z.object({
  data: z.record(z.string(), z.unknown()),
  meta: z.looseObject({ type: z.string().trim().min(1) }),
});

export function errorReply(message: string, errors: string[] = [message]): Record<string, unknown> {
  return { success: false, message, errors };
}

function issuesOf(error: z.ZodError, prefix: string): string[] {
  return error.issues.map((i) => `${[prefix, ...i.path].filter((p) => p !== '').join('.')}: ${i.message}`);
}

function isJsonContentType(ct: string): boolean {
  const mime = ct.split(';')[0]!.trim().toLowerCase();
  return mime === 'application/json' || mime.endsWith('+json');
}

/** The charset parameter of a Content-Type, lower-cased, if any. */
function charsetOf(ct: string): string | undefined {
  const m = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(ct);
  return m?.[1]?.toLowerCase();
}

/** A webhook's time from its first byte to its COMMIT. Writing a body of tens of MB takes seconds
 * even when all is well: 1 s more per 4 MB. */
export function webhookDeadlineMs(config: Config, bytes: number): number {
  return config.WEBHOOK_DEADLINE_MS + Math.floor(bytes / (4 * 1024 * 1024)) * 1000;
}

/** A webhook's way: what its log row records, then classify -> (prepare) -> apply. */
export async function processDelivery(deps: PipelineDeps, d: IncomingDelivery): Promise<ProcessedDelivery> {
  const p = await received(deps, d);
  const c = await classify(p);
  if ('refused' in c) return c.refused;
  if (c.def.delta) return applyDelta(p, c);
  const prepared = await prepare(p, c);
  if ('refused' in prepared) return prepared.refused;
  return applyInTransaction(p, c, prepared);
}

/** What every step knows of the delivery: its log row's values, its deadline, how to refuse it. */
interface Received {
  deps: PipelineDeps;
  d: IncomingDelivery;
  version: string;
  json: ReturnType<typeof readJsonBody>;
  base: Omit<NewDelivery, 'type' | 'outcome' | 'status' | 'reply'>;
  redacted: boolean;
  /** Date.now() by which it must have reached its COMMIT. */
  deadlineAt: number;
  deadlineMs: () => number;
  confirmUntil: number;
  /** Not applied: recorded (so it can be inspected and replayed after a fix) and answered 4xx. */
  refuse: (
    status: number,
    outcome: Outcome,
    type: string | null,
    message: string,
    errors?: string[],
  ) => Promise<ProcessedDelivery>;
}

/** A webhook its definition accepts: its type, handler and parsed data. */
interface Classified {
  type: string;
  def: AnyWebhook;
  /** The envelope's data as given to the schema (large strings lifted, for definitions that take them). */
  input: unknown;
  data: unknown;
}

/** Refused: the answer is ready, recorded in the log. */
type Refused = { refused: ProcessedDelivery };

async function received(deps: PipelineDeps, d: IncomingDelivery): Promise<Received> {
  const { sql, config } = deps;
  const version = normalizeVersion(d.versionHeader);
  const deadlineAt = d.deadlineAt ?? Date.now() + webhookDeadlineMs(config, d.raw.length);
  const deadlineMs = () => deadlineAt - Date.now();
  const json = readJsonBody(d.raw);
  const { body, redacted } = redactSecrets(d.raw, json);
  const base: Received['base'] = {
    version,
    path: d.path,
    headers: d.headers,
    body,
    bodySha256: await sha256InSteps(body),
    redacted,
    replayOf: d.replayOf ?? null,
  };
  const refuse: Received['refuse'] = async (status, outcome, type, message, errors) => {
    const reply = errorReply(message, errors);
    const deliveryId = await transactionWithDeadline(sql, deadlineMs(), (tx) =>
      insertDelivery(tx, { ...base, type, outcome, status, reply, error: (errors ?? [message]).join('\n') }),
    );
    return { status, outcome, reply, deliveryId, version, type, refs: {} };
  };
  // A lost COMMIT is confirmed within a bound of its own after the deadline, so that the answer
  // still comes in bounded time from the first byte.
  return { deps, d, version, json, base, redacted, deadlineAt, deadlineMs, confirmUntil: deadlineAt + COMMIT_CONFIRM_MS, refuse };
}

/** Content type, JSON, NUL, version, envelope, type, then the type's schema. */
async function classify(p: Received): Promise<Classified | Refused> {
  const { d, version, json } = p;
  const refused = async (...args: Parameters<Received['refuse']>): Promise<Refused> => ({ refused: await p.refuse(...args) });
  if (d.contentType !== undefined && !isJsonContentType(d.contentType)) {
    return refused(
      415,
      'invalid',
      null,
      `Content-Type must be application/json, got ${JSON.stringify(d.contentType.slice(0, 100))}`,
    );
  }
  const charset = d.contentType === undefined ? undefined : charsetOf(d.contentType);
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return refused(
      415,
      'invalid',
      null,
      `Content-Type charset ${JSON.stringify(charset.slice(0, 40))} is not accepted: webhooks are UTF-8 JSON`,
    );
  }
  // The signature is over the bytes sent, so a compressed body is refused rather than inflated.
  const encoding = d.headers['content-encoding']?.trim().toLowerCase();
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
    return refused(
      415,
      'invalid',
      null,
      `Content-Encoding ${JSON.stringify(encoding.slice(0, 40))} is not accepted: send the JSON body uncompressed`,
    );
  }
  if (!json.ok) return refused(400, 'invalid', null, json.message);
  const parsed = json.value;
  const rawType = (parsed as { meta?: { type?: unknown } } | null)?.meta?.type;
  const typeForLog = typeof rawType === 'string' && !rawType.includes('\u0000') ? rawType.trim().slice(0, 100) : null;
  const nul = findNul(parsed);
  if (nul !== undefined)
    return refused(400, 'invalid', typeForLog, `${nul} contains a NUL character (\\u0000), which cannot be stored`);
  if (!webhooks.versions.includes(version)) {
    return refused(
      400,
      'unsupported',
      typeForLog,
      `Tixstock-Version ${JSON.stringify(version)} is not supported (supported: ${webhooks.versions.join(', ')})`,
    );
  }
  const env = envelope.safeParse(parsed);
  if (!env.success) {
    return refused(
      400,
      'invalid',
      typeForLog,
      'body is not a Tixstock webhook: expected {"data": {...}, "meta": {"type": "..."}}',
      issuesOf(env.error, ''),
    );
  }
  const type = env.data.meta.type;
  const def = webhooks.find(version, type);
  if (!def)
    return refused(400, 'unsupported', type, `unknown webhook type ${JSON.stringify(type)} for Tixstock-Version ${version}`);
  // Async: a schema may do slow checks (decoding and loading a PDF) here, before the transaction.
  // Large string values stay bytes for definitions that take them (fulfilments), else strings.
  // A lifted string is checked only when it is turned into a string, here or by the schema.
  let data: z.ZodSafeParseResult<unknown>;
  let input: unknown = env.data.data;
  try {
    if (!def.largeStrings && d.raw.length >= LIFT_MIN) {
      input = materializeStrings(input);
      const nulInLong = findNul(input, 'data');
      if (nulInLong !== undefined)
        return refused(400, 'invalid', type, `${nulInLong} contains a NUL character (\\u0000), which cannot be stored`);
    }
    data = await def.schema.safeParseAsync(input);
  } catch (err) {
    if (!(err instanceof InvalidJsonString)) throw err;
    return refused(400, 'invalid', type, `body is not valid JSON: ${err.message}`);
  }
  if (!data.success) {
    const errors = issuesOf(data.error, 'data');
    return refused(400, 'invalid', type, `invalid ${type} webhook: ${errors.join('; ')}`, errors);
  }
  return { type, def, input, data: data.data };
}

/** A failure while applying: database unavailable is thrown (answered 503, nothing written),
 * anything else is recorded as a refusal. */
function failed(
  p: Received,
  type: string,
  err: unknown,
  deliveryIdOf: (result: unknown) => string | null,
): Promise<ProcessedDelivery> {
  const { version } = p;
  if (err instanceof CommitOutcomeUnknown) {
    log.error('commit outcome unknown: answered 503; check whether this delivery exists', {
      delivery_id: deliveryIdOf(err.result),
      type,
      version,
    });
  }
  if (isDatabaseUnavailable(err) || isAlreadyReplayed(err)) throw err;
  // A large string is checked for valid JSON escapes only when it is read (the file's check).
  if (err instanceof InvalidJsonString) return p.refuse(400, 'invalid', type, `body is not valid JSON: ${err.message}`);
  if (isDataException(err)) {
    return p.refuse(400, 'invalid', type, `invalid ${type} webhook: a value cannot be stored (${(err as Error).message})`);
  }
  log.error('webhook handler failed', { type, version, error: err });
  return p.refuse(
    500,
    'failed',
    type,
    `internal error while applying ${type}; nothing was applied and the delivery is logged for replay`,
    [String((err as Error)?.message ?? err)],
  );
}

/** Holds and releases: the change, delivery row included, applied with those arriving at the
 * same time in one autocommit statement on the hot pool (db/group-commit.ts); the delivery's id
 * is taken ahead, so that a lost answer can be confirmed by it. */
async function applyDelta(p: Received, c: Classified): Promise<ProcessedDelivery> {
  const {
    deps: { sql, config },
    base,
    version,
  } = p;
  const hot = p.deps.hot ?? sql;
  const { type } = c;
  try {
    const id = await beforeDeadline(takeDeliveryId(hot), p.deadlineAt);
    p.d.leaveSlot?.(); // its batch's bound is the group commit's (db/group-commit.ts), not a slot
    const row = await deltaBatchesOf(hot, config).apply({
      item: { delta: c.def.delta!(c.data), delivery: { ...base, type, id } },
      deadlineAt: p.deadlineAt,
      confirmUntil: p.confirmUntil,
      wasCommitted: () => deliveryCommitted(sql, id),
      committed: () => recordedDelivery(sql, id),
    });
    return {
      status: 200,
      outcome: row.outcome,
      reply: row.reply,
      deliveryId: row.id,
      version,
      type,
      refs: { listing_id: row.listing_id },
    };
  } catch (err) {
    return failed(p, type, err, (item) => (item as DeltaOfDelivery).delivery.id);
  }
}

const deltaBatches = new WeakMap<Sql, GroupCommit<DeltaOfDelivery, RecordedDelta>>();

/** One group commit per hot pool, with a batch in flight per connection of it. */
function deltaBatchesOf(hot: Sql, config: Config): GroupCommit<DeltaOfDelivery, RecordedDelta> {
  let batches = deltaBatches.get(hot);
  if (!batches) {
    batches = groupCommit<DeltaOfDelivery, RecordedDelta>({
      statement: (items) => applyQuantityDeltas(hot, items),
      rowOf: (rows, item) => rows.find((r) => r.id === item.delivery.id),
      lockOf: (item) => listingLockedBy(item.delta),
      inFlight: Math.max(1, hotPoolSize(config)),
    });
    deltaBatches.set(hot, batches);
  }
  return batches;
}

/** What prepare found out before the transaction. */
interface Prepared {
  /** The listing, event, broker or order an absolute-state webhook sets, when its data names it. */
  entity: string | undefined;
  /** Whether to look for an applied delivery it repeats (absolute-state webhooks, not replays). */
  checkRetry: boolean;
  /** The handler's input; undefined when the webhook was taken for a retry (not prepared). */
  prepared: { data: unknown } | undefined;
  /** The body with a reference to the file the handler stores, instead of the file. */
  referenced: Awaited<ReturnType<typeof bodyWithTicketReference>> | undefined;
}

/** Slow checks (loading a ticket PDF) only for a webhook that is not a retry of an applied one:
 * looked for here without a lock, and again under its lock in the transaction. */
async function prepare(p: Received, c: Classified): Promise<Prepared | Refused> {
  const {
    deps: { sql, config },
    base,
    version,
  } = p;
  const { def, type } = c;
  const entity = def.retriesAreDuplicates ? def.entityOf?.(c.data) : undefined;
  const checkRetry = !!def.retriesAreDuplicates && !p.d.replayOf;
  let prepared: { data: unknown } | undefined = { data: c.data };
  if (def.prepare) {
    try {
      const seen = checkRetry && entity === undefined && (await retryLookup(sql, base.bodySha256, version)).length > 0;
      prepared = seen ? undefined : { data: await def.prepare({ config, deadlineAt: p.deadlineAt }, c.data) };
    } catch (err) {
      return { refused: await failed(p, type, err, () => null) };
    }
  }
  return { entity, checkRetry, prepared, referenced: prepared && (await referenceOf(p, c, prepared)) };
}

/** A file the handler stores (a fulfilment's PDF, in tickets) is not stored a second time in
 * the body of a delivery that applies or repeats it: the body keeps a reference instead. */
async function referenceOf(p: Received, c: Classified, prepared: { data: unknown }) {
  const external = c.def.externalFile && !p.redacted ? c.def.externalFile(c.input, prepared.data) : undefined;
  return external && (await bodyWithTicketReference(p.d.raw, external));
}

/** In one transaction: a retry is answered from the log, anything else recorded and applied. */
async function applyInTransaction(p: Received, c: Classified, r: Prepared): Promise<ProcessedDelivery> {
  const {
    deps: { sql, config },
    d,
    base,
    version,
  } = p;
  const { def, type } = c;
  const { entity, checkRetry } = r;
  let { prepared, referenced } = r;
  const referencedBody = () =>
    referenced ? { body: referenced.body, bodyFile: referenced.bodyFile, bodyBytes: referenced.bodyBytes } : {};

  let finished: Promise<unknown> | undefined;
  try {
    const processed = await transactionWithDeadline(
      sql,
      p.deadlineMs(),
      async (tx) => {
        if (checkRetry) {
          const prior =
            entity !== undefined
              ? await findRetryOfEntity(tx, entity, base.bodySha256, version)
              : await findRetryOfBody(tx, base.bodySha256, version);
          if (prior) {
            const { id: duplicateOf, status, reply, ...refs } = prior;
            // A retry found before its file was checked shares its original's stored body (the same bytes).
            const stored = referenced
              ? (await isPdfStored(tx, referenced.bodyFile.sha256))
                ? referencedBody()
                : {}
              : def.externalFile
                ? await referencedBodyOf(tx, duplicateOf)
                : {};
            const deliveryId = await insertDelivery(tx, {
              ...base,
              ...stored,
              type,
              outcome: 'duplicate',
              status,
              reply,
              duplicateOf,
              refs,
              entity,
            });
            return { status, outcome: 'duplicate' as const, reply, deliveryId, version, type, refs };
          }
        }
        // Taken for a retry above but not one under the lock (its original just left the window):
        // rare enough to check here, within the transaction's deadline.
        if (!prepared) {
          prepared = { data: await def.prepare!({ config, deadlineAt: p.deadlineAt }, c.data) };
          referenced = await referenceOf(p, c, prepared);
        }
        const deliveryId = await insertDelivery(tx, {
          ...base,
          ...referencedBody(),
          type,
          outcome: 'applied',
          status: 200,
          reply: {},
          entity,
        });
        addLogContext({ delivery_id: deliveryId });
        const result = await def.handle!({ tx, deliveryId, config }, prepared.data);
        // Never a reference to a PDF that is not stored (a handler that did not attach it).
        if (referenced && !(await isPdfStored(tx, referenced.bodyFile.sha256))) await restoreFullBody(tx, deliveryId, d.raw);
        const refs = result.refs ?? {};
        // Sent now, awaited after the commit: the UPDATE and the COMMIT share one round trip.
        finished = finishDelivery(tx, deliveryId, result.outcome, result.reply, refs, entity ?? result.entity ?? null);
        return { status: 200, outcome: result.outcome, reply: result.reply, deliveryId, version, type, refs };
      },
      { wasCommitted: (r) => deliveryCommitted(sql, r.deliveryId!), confirmUntil: p.confirmUntil },
    );
    // If the UPDATE failed, PostgreSQL turned the COMMIT behind it into a ROLLBACK: nothing was
    // applied, and this throws like any failure inside the transaction. (A lost connection is
    // not such a failure: the transaction was confirmed committed, so the UPDATE was too.)
    await finished?.catch((err) => {
      if (!isConnectionLost(err)) throw err;
    });
    return processed;
  } catch (err) {
    return failed(p, type, err, (r) => (r as ProcessedDelivery).deliveryId);
  }
}

// One signed webhook, start to finish: classify it (JSON, envelope, version, type, schema),
// then record it in the delivery log and apply it in ONE transaction. Used by the receiver and
// by replays. Errors that mean "database unavailable" are thrown: the caller answers 503 and
// nothing was written.
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import { COMMIT_CONFIRM_MS, CommitOutcomeUnknown, isConnectionLost, isDatabaseUnavailable, isDataException, statementWithDeadline, transactionWithDeadline } from '../db/transaction.js';
import { sha256InSteps } from '../digest.js';
import { findNul } from '../http.js';
import { addLogContext, log } from '../log.js';
import { InvalidJsonString, LIFT_MIN, materializeStrings, readJsonBody } from '../json-bytes.js';
import { redactSecrets } from './redact.js';
import { isPdfStored } from '../tickets/store.js';
import {
  deliveryCommitted, findRetryOfBody, findRetryOfEntity, finishDelivery, insertDelivery, isAlreadyReplayed, referencedBodyOf,
  restoreFullBody, retryLookup, type NewDelivery,
} from './deliveries.js';
import { findWebhook, normalizeVersion, supportedVersions, type DeliveryRefs, type Outcome } from './registry.js';
import { bodyWithTicketReference } from './stored-body.js';
import './v1/index.js';

export interface IncomingDelivery {
  raw: Buffer;
  versionHeader: string | undefined;
  contentType: string | undefined;
  path: string;
  /** Headers kept in the log (never the signature). */
  headers: Record<string, string>;
  replayOf?: string;
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

export async function processDelivery(deps: { sql: Sql; config: Config }, d: IncomingDelivery): Promise<ProcessedDelivery> {
  const { sql, config } = deps;
  const version = normalizeVersion(d.versionHeader);
  const deadlineAt = d.deadlineAt ?? Date.now() + webhookDeadlineMs(config, d.raw.length);
  const deadlineMs = () => deadlineAt - Date.now();
  // A lost COMMIT is confirmed within a bound of its own after the deadline, so that the answer
  // still comes in bounded time from the first byte.
  const confirmUntil = deadlineAt + COMMIT_CONFIRM_MS;
  const json = readJsonBody(d.raw);
  const { body, redacted } = redactSecrets(d.raw, json);
  const base: Omit<NewDelivery, 'type' | 'outcome' | 'status' | 'reply'> = {
    version,
    path: d.path,
    headers: d.headers,
    body,
    bodySha256: await sha256InSteps(body),
    redacted,
    replayOf: d.replayOf ?? null,
  };

  // Not applied: recorded (so it can be inspected and replayed after a fix) and answered 4xx.
  const refuse = async (status: number, outcome: Outcome, type: string | null, message: string, errors?: string[]) => {
    const reply = errorReply(message, errors);
    const deliveryId = await transactionWithDeadline(sql, deadlineMs(), (tx) =>
      insertDelivery(tx, { ...base, type, outcome, status, reply, error: (errors ?? [message]).join('\n') }),
    );
    return { status, outcome, reply, deliveryId, version, type, refs: {} };
  };

  if (d.contentType !== undefined && !isJsonContentType(d.contentType)) {
    return refuse(415, 'invalid', null, `Content-Type must be application/json, got ${JSON.stringify(d.contentType.slice(0, 100))}`);
  }
  const charset = d.contentType === undefined ? undefined : charsetOf(d.contentType);
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return refuse(415, 'invalid', null, `Content-Type charset ${JSON.stringify(charset.slice(0, 40))} is not accepted: webhooks are UTF-8 JSON`);
  }
  // The signature is over the bytes sent, so a compressed body is refused rather than inflated.
  const encoding = d.headers['content-encoding']?.trim().toLowerCase();
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
    return refuse(415, 'invalid', null, `Content-Encoding ${JSON.stringify(encoding.slice(0, 40))} is not accepted: send the JSON body uncompressed`);
  }
  if (!json.ok) return refuse(400, 'invalid', null, json.message);
  const parsed = json.value;
  const rawType = (parsed as { meta?: { type?: unknown } } | null)?.meta?.type;
  const typeForLog = typeof rawType === 'string' && !rawType.includes('\u0000') ? rawType.trim().slice(0, 100) : null;
  const nul = findNul(parsed);
  if (nul !== undefined) return refuse(400, 'invalid', typeForLog, `${nul} contains a NUL character (\\u0000), which cannot be stored`);
  if (!supportedVersions().includes(version)) {
    return refuse(400, 'unsupported', typeForLog,
      `Tixstock-Version ${JSON.stringify(version)} is not supported (supported: ${supportedVersions().join(', ')})`);
  }
  const env = envelope.safeParse(parsed);
  if (!env.success) {
    return refuse(400, 'invalid', typeForLog, 'body is not a Tixstock webhook: expected {"data": {...}, "meta": {"type": "..."}}', issuesOf(env.error, ''));
  }
  const type = env.data.meta.type;
  const def = findWebhook(version, type);
  if (!def) return refuse(400, 'unsupported', type, `unknown webhook type ${JSON.stringify(type)} for Tixstock-Version ${version}`);
  // Async: a schema may do slow checks (decoding and loading a PDF) here, before the transaction.
  // Large string values stay bytes for definitions that take them (fulfilments), else strings.
  // A lifted string is checked only when it is turned into a string, here or by the schema.
  let data: z.ZodSafeParseResult<unknown>;
  let input: unknown = env.data.data;
  try {
    if (!def.largeStrings && d.raw.length >= LIFT_MIN) {
      input = materializeStrings(input);
      const nulInLong = findNul(input, 'data');
      if (nulInLong !== undefined) return refuse(400, 'invalid', type, `${nulInLong} contains a NUL character (\\u0000), which cannot be stored`);
    }
    data = await def.schema.safeParseAsync(input);
  } catch (err) {
    if (!(err instanceof InvalidJsonString)) throw err;
    return refuse(400, 'invalid', type, `body is not valid JSON: ${err.message}`);
  }
  if (!data.success) {
    const errors = issuesOf(data.error, 'data');
    return refuse(400, 'invalid', type, `invalid ${type} webhook: ${errors.join('; ')}`, errors);
  }

  // A failure while applying: database unavailable is thrown (answered 503, nothing written),
  // anything else is recorded as a refusal.
  const failed = (err: unknown, deliveryIdOf: (result: unknown) => string | null) => {
    if (err instanceof CommitOutcomeUnknown) {
      log.error('commit outcome unknown: answered 503; check whether this delivery exists', { delivery_id: deliveryIdOf(err.result), type, version });
    }
    if (isDatabaseUnavailable(err) || isAlreadyReplayed(err)) throw err;
    // A large string is checked for valid JSON escapes only when it is read (the file's check).
    if (err instanceof InvalidJsonString) return refuse(400, 'invalid', type, `body is not valid JSON: ${err.message}`);
    if (isDataException(err)) {
      return refuse(400, 'invalid', type, `invalid ${type} webhook: a value cannot be stored (${(err as Error).message})`);
    }
    log.error('webhook handler failed', { type, version, error: err });
    return refuse(500, 'failed', type, `internal error while applying ${type}; nothing was applied and the delivery is logged for replay`,
      [String((err as Error)?.message ?? err)]);
  };

  if (def.statement) {
    const statement = def.statement;
    try {
      const row = await statementWithDeadline(sql, deadlineMs(), (db) => statement({ db, delivery: { ...base, type }, config }, data.data).then((rows) => rows[0]!),
        { wasCommitted: (r) => deliveryCommitted(sql, r.id), confirmUntil });
      return { status: 200, outcome: row.outcome, reply: row.reply, deliveryId: row.id, version, type, refs: { listing_id: row.listing_id } };
    } catch (err) {
      return failed(err, (r) => (r as { id: string }).id);
    }
  }

  // The listing, event, broker or order an absolute-state webhook sets, when its data names it.
  const entity = def.retriesAreDuplicates ? def.entityOf?.(data.data) : undefined;
  // Slow checks (loading a ticket PDF) only for a webhook that is not a retry of an applied one:
  // looked for here without a lock, and again under its lock in the transaction.
  const checkRetry = def.retriesAreDuplicates && !d.replayOf;
  let prepared: { data: unknown } | undefined = { data: data.data };
  if (def.prepare) {
    try {
      const seen = checkRetry && entity === undefined && (await retryLookup(sql, base.bodySha256, version)).length > 0;
      prepared = seen ? undefined : { data: await def.prepare({ config, deadlineAt }, data.data) };
    } catch (err) {
      return failed(err, () => null);
    }
  }
  // A file the handler stores (a fulfilment's PDF, in tickets) is not stored a second time in
  // the body of a delivery that applies or repeats it: the body keeps a reference instead.
  const referenceOf = async (p: { data: unknown }) => {
    const external = def.externalFile && !redacted ? def.externalFile(input, p.data) : undefined;
    return external && (await bodyWithTicketReference(d.raw, external));
  };
  let referenced = prepared && (await referenceOf(prepared));
  const referencedBody = () => (referenced ? { body: referenced.body, bodyFile: referenced.bodyFile, bodyBytes: referenced.bodyBytes } : {});

  let finished: Promise<unknown> | undefined;
  try {
    const processed = await transactionWithDeadline(sql, deadlineMs(), async (tx) => {
      if (checkRetry) {
        const prior = entity !== undefined
          ? await findRetryOfEntity(tx, entity, base.bodySha256, version)
          : await findRetryOfBody(tx, base.bodySha256, version);
        if (prior) {
          const { id: duplicateOf, status, reply, ...refs } = prior;
          // A retry found before its file was checked shares its original's stored body (the same bytes).
          const stored = referenced
            ? ((await isPdfStored(tx, referenced.bodyFile.sha256)) ? referencedBody() : {})
            : def.externalFile ? await referencedBodyOf(tx, duplicateOf) : {};
          const deliveryId = await insertDelivery(tx, { ...base, ...stored, type, outcome: 'duplicate', status, reply, duplicateOf, refs, entity });
          return { status, outcome: 'duplicate' as const, reply, deliveryId, version, type, refs };
        }
      }
      // Taken for a retry above but not one under the lock (its original just left the window):
      // rare enough to check here, within the transaction's deadline.
      if (!prepared) {
        prepared = { data: await def.prepare!({ config, deadlineAt }, data.data) };
        referenced = await referenceOf(prepared);
      }
      const deliveryId = await insertDelivery(tx, { ...base, ...referencedBody(), type, outcome: 'applied', status: 200, reply: {}, entity });
      addLogContext({ delivery_id: deliveryId });
      const result = await def.handle!({ tx, deliveryId, config }, prepared.data);
      // Never a reference to a PDF that is not stored (a handler that did not attach it).
      if (referenced && !(await isPdfStored(tx, referenced.bodyFile.sha256))) await restoreFullBody(tx, deliveryId, d.raw);
      const refs = result.refs ?? {};
      // Sent now, awaited after the commit: the UPDATE and the COMMIT share one round trip.
      finished = finishDelivery(tx, deliveryId, result.outcome, result.reply, refs, entity ?? result.entity ?? null);
      return { status: 200, outcome: result.outcome, reply: result.reply, deliveryId, version, type, refs };
    }, { wasCommitted: (r) => deliveryCommitted(sql, r.deliveryId!), confirmUntil });
    // If the UPDATE failed, PostgreSQL turned the COMMIT behind it into a ROLLBACK: nothing was
    // applied, and this throws like any failure inside the transaction. (A lost connection is
    // not such a failure: the transaction was confirmed committed, so the UPDATE was too.)
    await finished?.catch((err) => {
      if (!isConnectionLost(err)) throw err;
    });
    return processed;
  } catch (err) {
    return failed(err, (r) => (r as ProcessedDelivery).deliveryId);
  }
}

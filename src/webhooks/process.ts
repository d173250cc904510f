// One signed webhook, start to finish: classify it (JSON, envelope, version, type, schema),
// then record it in the delivery log and apply it in ONE transaction. Used by the receiver and
// by replays. Errors that mean "database unavailable" are thrown: the caller answers 503 and
// nothing was written.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import { CommitOutcomeUnknown, isConnectionLost, isDatabaseUnavailable, isDataException, statementWithDeadline, transactionWithDeadline } from '../db/transaction.js';
import { addLogContext, log } from '../log.js';
import { LIFT_MIN, materializeStrings, parseJsonLifting } from '../json-bytes.js';
import { redactSecrets } from './redact.js';
import { deliveryCommitted, findRetryOf, finishDelivery, insertDelivery, type NewDelivery } from './deliveries.js';
import { findWebhook, normalizeVersion, supportedVersions, type DeliveryRefs, type Outcome } from './registry.js';
import './v1/index.js';

export interface IncomingDelivery {
  raw: Buffer;
  versionHeader: string | undefined;
  contentType: string | undefined;
  path: string;
  /** Headers kept in the log (never the signature). */
  headers: Record<string, string>;
  replayOf?: string;
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

export async function processDelivery(deps: { sql: Sql; config: Config }, d: IncomingDelivery): Promise<ProcessedDelivery> {
  const { sql, config } = deps;
  const version = normalizeVersion(d.versionHeader);
  // Writing a body of tens of MB takes seconds even when all is well: 1 s more per 4 MB.
  const deadlineMs = config.WEBHOOK_DEADLINE_MS + Math.floor(d.raw.length / (4 * 1024 * 1024)) * 1000;
  const { body, redacted } = redactSecrets(d.raw);
  const base: Omit<NewDelivery, 'type' | 'outcome' | 'status' | 'reply'> = {
    version,
    path: d.path,
    headers: d.headers,
    body,
    bodySha256: createHash('sha256').update(body).digest(),
    redacted,
    replayOf: d.replayOf ?? null,
  };

  // Not applied: recorded (so it can be inspected and replayed after a fix) and answered 4xx.
  const refuse = async (status: number, outcome: Outcome, type: string | null, message: string, errors?: string[]) => {
    const reply = errorReply(message, errors);
    const deliveryId = await transactionWithDeadline(sql, deadlineMs, (tx) =>
      insertDelivery(tx, { ...base, type, outcome, status, reply, error: (errors ?? [message]).join('\n') }),
    );
    return { status, outcome, reply, deliveryId, version, type, refs: {} };
  };

  if (d.contentType !== undefined && !isJsonContentType(d.contentType)) {
    return refuse(415, 'invalid', null, `Content-Type must be application/json, got ${JSON.stringify(d.contentType.slice(0, 100))}`);
  }
  if (d.raw.length === 0) return refuse(400, 'invalid', null, 'body is empty; expected a JSON webhook');
  let parsed: unknown;
  try {
    parsed = parseJsonLifting(d.raw);
  } catch (err) {
    return refuse(400, 'invalid', null, `body is not valid JSON: ${(err as Error).message}`);
  }
  const rawType = (parsed as { meta?: { type?: unknown } } | null)?.meta?.type;
  const typeForLog = typeof rawType === 'string' ? rawType.trim().slice(0, 100) : null;
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
  const input = def.largeStrings || d.raw.length < LIFT_MIN ? env.data.data : materializeStrings(env.data.data);
  const data = await def.schema.safeParseAsync(input);
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
    if (isDatabaseUnavailable(err)) throw err;
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
      const row = await statementWithDeadline(sql, deadlineMs, (db) => statement({ db, delivery: { ...base, type }, config }, data.data).then((rows) => rows[0]!),
        { wasCommitted: (r) => deliveryCommitted(sql, r.id) });
      return { status: 200, outcome: row.outcome, reply: row.reply, deliveryId: row.id, version, type, refs: { listing_id: row.listing_id } };
    } catch (err) {
      return failed(err, (r) => (r as { id: string }).id);
    }
  }

  let finished: Promise<unknown> | undefined;
  try {
    const processed = await transactionWithDeadline(sql, deadlineMs, async (tx) => {
      if (def.retriesAreDuplicates && !d.replayOf) {
        const prior = await findRetryOf(tx, base.bodySha256, version);
        if (prior) {
          const { id: duplicateOf, status, reply, ...refs } = prior;
          const deliveryId = await insertDelivery(tx, { ...base, type, outcome: 'duplicate', status, reply, duplicateOf, refs });
          return { status, outcome: 'duplicate' as const, reply, deliveryId, version, type, refs };
        }
      }
      const deliveryId = await insertDelivery(tx, { ...base, type, outcome: 'applied', status: 200, reply: {} });
      addLogContext({ delivery_id: deliveryId });
      const result = await def.handle!({ tx, deliveryId, config }, data.data);
      const refs = result.refs ?? {};
      // Sent now, awaited after the commit: the UPDATE and the COMMIT share one round trip.
      finished = finishDelivery(tx, deliveryId, result.outcome, result.reply, refs);
      return { status: 200, outcome: result.outcome, reply: result.reply, deliveryId, version, type, refs };
    }, { wasCommitted: (r) => deliveryCommitted(sql, r.deliveryId!) });
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

// Is a webhook's body let go once it has been answered? Run in a fresh process, because what
// kept bodies was per process and per query template (postgres.js's cached origin Error holds
// the first call's frames until its stack is read; see src/db/connect.ts releasingOrigins): in
// a test process that had already run every statement, nothing would show. Prints JSON:
// { status, retained } for one ticket fulfilment of about 1 MB applied with processDelivery.
import { randomBytes } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { PDFDocument } from 'pdf-lib';
import { loadConfig } from '../../src/config.js';
import { connect } from '../../src/db/connect.js';
import { processDelivery } from '../../src/webhooks/process.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const url = process.env.TEST_DATABASE_URL!;
const sql = connect(url, { max: 2 });
const config = loadConfig({ DATABASE_URL: url, TIXSTOCK_BEARER_TOKEN: 'x' });

const doc = await PDFDocument.create();
const page = doc.addPage([200, 200]);
const image = doc.context.register(
  doc.context.stream(randomBytes(1024 * 1024), {
    Type: 'XObject',
    Subtype: 'Image',
    Width: 512,
    Height: 512,
    ColorSpace: 'DeviceRGB',
    BitsPerComponent: 8,
  }),
);
page.node.newXObject('Noise', image);
const pdf = Buffer.from(await doc.save());
const order = `R-RETAIN-${Date.now()}`;
let raw: Buffer | null = Buffer.from(
  JSON.stringify({
    data: { order_id: order, id: null, row: 'A', seat: 1, file: pdf.toString('base64') },
    meta: { type: 'order.eticket_fulfilment' },
  }).replaceAll('/', '\\/'),
);
// A FinalizationRegistry, not a WeakRef: a WeakRef keeps its target alive until its job ends.
let collected = false;
const registry = new FinalizationRegistry(() => (collected = true));
registry.register(raw, 'body');
const r = await processDelivery(
  { sql, config },
  { raw, versionHeader: 'v1', contentType: 'application/json', path: '/webhooks/tixstock', headers: {} },
);
raw = null;
for (let i = 0; i < 3; i++) {
  await new Promise((resolve) => setTimeout(resolve, 20));
  gc();
}
if (process.env.SNAPSHOT && !collected) v8.writeHeapSnapshot(process.env.SNAPSHOT);
process.stdout.write(`${JSON.stringify({ status: r.status, outcome: r.outcome, retained: !collected })}\n`);
await sql.end();

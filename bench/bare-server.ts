// What the bench's reference servers (bench/ceiling.ts, bench/floor.ts) share: a bare node:http
// server that reads the body, verifies its HMAC (X-Tixstock-Signature, keyed with
// TIXSTOCK_BEARER_TOKEN) and answers 200 with what `apply` returns, or 503 with its error.
// Run as a child of the bench: PORT, DATABASE_URL, TIXSTOCK_BEARER_TOKEN, DATABASE_POOL_SIZE;
// it says { ready: true } over IPC once listening and stops on SIGTERM.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import postgres from 'postgres';

export const sql = postgres(process.env.DATABASE_URL!, { max: Number(process.env.DATABASE_POOL_SIZE ?? 8), onnotice: () => {} });
const token = process.env.TIXSTOCK_BEARER_TOKEN ?? '';

function reply(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

export function serveSigned(apply: (body: Buffer, url: string) => Promise<string>): void {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const given = Buffer.from(String(req.headers['x-tixstock-signature'] ?? ''), 'hex');
      const expected = createHmac('sha256', token).update(body).digest();
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return reply(res, 401, '{"success":false}');
      apply(body, req.url!).then(
        (answer) => reply(res, 200, answer),
        (err: Error) => reply(res, 503, JSON.stringify({ success: false, message: err.message })),
      );
    });
  });
  server.keepAliveTimeout = 95_000;
  server.listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.({ ready: true }));
  process.on('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    void sql.end({ timeout: 2 }).then(() => process.exit(0));
  });
}

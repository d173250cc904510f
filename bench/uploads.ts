// Uploads that should cost the service nothing: unsigned bodies held open, and bodies sent at
// 1 byte per second. Raw node:http clients from the bench process, on loopback.
import http from 'node:http';

export interface UploadAnswer {
  status: number;
  /** Body bytes written when the answer came, and seconds from the start until then. */
  written: number;
  seconds: number;
}

/** POSTs `length` declared bytes, writing `chunk` bytes every `everyMs` (at most `send`), and
 * resolves at the answer (status 0: the connection ended without one). */
export function upload(
  url: string,
  o: { length: number; send: number; chunk: number; everyMs: number; headers: Record<string, string> },
): { answered: Promise<UploadAnswer>; close(): void } {
  const { port } = new URL(url);
  const started = performance.now();
  let written = 0;
  let timer: NodeJS.Timeout | undefined;
  const req = http.request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/webhooks/tixstock',
    headers: { 'Content-Type': 'application/json', 'Content-Length': String(o.length), ...o.headers },
  });
  const answered = new Promise<UploadAnswer>((resolve) => {
    const done = (status: number) => {
      clearInterval(timer);
      resolve({ status, written, seconds: (performance.now() - started) / 1000 });
    };
    req.on('response', (res) => {
      res.resume();
      done(res.statusCode!);
    });
    req.on('error', () => done(0));
    req.on('close', () => done(0));
  });
  req.flushHeaders();
  const piece = Buffer.alloc(o.chunk, 'x');
  timer = setInterval(() => {
    const n = Math.min(o.chunk, o.send - written);
    if (n <= 0) return clearInterval(timer);
    req.write(piece.subarray(0, n));
    written += n;
  }, o.everyMs);
  return { answered, close: () => (clearInterval(timer), req.destroy()) };
}

// Hashing tens of MB without holding up the process: sha256 in 1 MB steps, letting other work
// (holds answered in milliseconds) run between them.
import { createHash } from 'node:crypto';

const STEP = 1024 * 1024;

export function sha256InSteps(bytes: Uint8Array): Buffer | Promise<Buffer> {
  if (bytes.length <= STEP) return createHash('sha256').update(bytes).digest();
  return hashInSteps(bytes);
}

async function hashInSteps(bytes: Uint8Array): Promise<Buffer> {
  const hash = createHash('sha256');
  for (let i = 0; i < bytes.length; i += STEP) {
    if (i > 0) await new Promise((resolve) => setImmediate(resolve));
    hash.update(bytes.subarray(i, i + STEP));
  }
  return hash.digest();
}

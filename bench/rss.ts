// Resident memory of a server process, read from /proc (Linux): the current RSS, and the peak
// since the last reset (VmHWM; writing 5 to clear_refs resets it to the current RSS), so a
// short spike between two samples is not missed.
import { readFileSync, writeFileSync } from 'node:fs';

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) * 1024 : NaN;
}

export const rssOf = (pid: number) => statusField(pid, 'VmRSS');
export const peakRssOf = (pid: number) => statusField(pid, 'VmHWM');

export function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // Not permitted here: the peak then counts from the process start (reported as such).
  }
}

/** Samples RSS every `everyMs` until stopped. */
export function sampleRss(pid: number, everyMs: number): { stop(): { at: number; rss: number }[] } {
  const samples: { at: number; rss: number }[] = [];
  const started = Date.now();
  const timer = setInterval(() => samples.push({ at: (Date.now() - started) / 1000, rss: rssOf(pid) }), everyMs);
  return {
    stop() {
      clearInterval(timer);
      return samples;
    },
  };
}

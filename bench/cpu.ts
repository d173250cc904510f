// CPU seconds used by processes (Linux /proc), to show where a case's CPU went: the service,
// the ceiling, the load generator, PostgreSQL (the postmaster and its backends).
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function stat(pid: number): { ppid: number; cpu: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // After the name: state(0) ppid(1) ... utime(11) stime(12)
    return { ppid: Number(fields[1]), cpu: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

export function cpuSecondsOf(pid: number): number {
  return stat(pid)?.cpu ?? 0;
}

/** A process and its direct children (PostgreSQL's postmaster and backends). */
export function cpuSecondsOfTree(pid: number): number {
  let total = cpuSecondsOf(pid);
  for (const entry of readdirSync('/proc')) {
    const child = Number(entry);
    if (!Number.isInteger(child)) continue;
    const s = stat(child);
    if (s?.ppid === pid) total += s.cpu;
  }
  return total;
}

export function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

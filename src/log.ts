// One JSON object per line on stdout (Heroku's log drain reads them). Callers pass only ids,
// types and outcomes: never tokens, passwords, database URLs or customers' personal data.
type Fields = Record<string, unknown>;

function write(level: 'info' | 'warn' | 'error', msg: string, fields: Fields = {}): void {
  if (process.env.LOG_LEVEL === 'silent') return;
  const out: Fields = { at: new Date().toISOString(), level, msg };
  for (const [k, v] of Object.entries(fields)) {
    out[k] = v instanceof Error ? { name: v.name, message: v.message, code: (v as { code?: unknown }).code } : v;
  }
  (level === 'info' ? process.stdout : process.stderr).write(JSON.stringify(out) + '\n');
}

export const log = {
  info: (msg: string, fields?: Fields) => write('info', msg, fields),
  warn: (msg: string, fields?: Fields) => write('warn', msg, fields),
  error: (msg: string, fields?: Fields) => write('error', msg, fields),
};

// Server-rendered HTML where every interpolated value is escaped unless it is already Html:
// `html` is the only way to build markup, so nothing a webhook sent can become a tag.
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Value = Html | string | number | boolean | null | undefined | Value[];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

function render(v: Value): string {
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === null || v === undefined || v === false) return '';
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new Html(out);
}

/** A link only for http(s) URLs; anything else (javascript:, data:) is shown as text. */
export function externalLink(url: string): Html {
  try {
    const u = new URL(url);
    if (u.protocol === 'http:' || u.protocol === 'https:') return html`<a href="${url}" rel="noreferrer noopener">${url}</a>`;
  } catch {
    // not a URL: shown as text
  }
  return html`<span>${url}</span>`;
}

export function when(d: Date | string | null | undefined): string {
  if (!d) return '';
  const date = d instanceof Date ? d : new Date(d);
  return Number.isNaN(date.getTime()) ? String(d) : `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

// Summarises a V8 .cpuprofile (node --cpu-prof) by self time and by time including callees
// per function, for finding the hot path: node --import tsx bench/profile-top.ts <file> [n]
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
  children?: number[];
}

const [file, limit = '30'] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-top.ts <file.cpuprofile> [n]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[] };
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const total = profile.nodes.reduce((s, n) => s + n.hitCount, 0);
const name = (n: Node) =>
  `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|dist)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
function walk(n: Node, onStack: Set<string>): number {
  let hits = n.hitCount;
  const key = name(n);
  self.set(key, (self.get(key) ?? 0) + n.hitCount);
  const nested = onStack.has(key);
  onStack.add(key);
  for (const c of n.children ?? []) hits += walk(byId.get(c)!, onStack);
  if (!nested) {
    onStack.delete(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + hits);
  }
  return hits;
}
walk(profile.nodes[0]!, new Set());

const show = (title: string, m: Map<string, number>) => {
  process.stdout.write(`\n${title} (of ${total} samples)\n`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, Number(limit))) {
    process.stdout.write(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}\n`);
  }
};
show('self', self);
show('inclusive', inclusive);
// The same, as shares of the busy samples (idle left out): where the CPU the process used went.
const idle = self.get('(idle) :0') ?? 0;
process.stdout.write(
  `\nself, busy samples only (${total - idle} of ${total}; markdown)\n\n| % of busy | function |\n| --- | --- |\n`,
);
for (const [k, v] of [...self]
  .filter(([k]) => k !== '(idle) :0')
  .sort((a, b) => b[1] - a[1])
  .slice(0, Number(limit))) {
  process.stdout.write(`| ${((v / (total - idle)) * 100).toFixed(1)} | \`${k}\` |\n`);
}

// Dependencies point one way (ARCHITECTURE.md): each folder of src/ is in a layer and imports only
// from its own folder, from lower layers and from the shared modules at src/'s top level. The test
// reads every import of src/ (type-only ones too) and fails on one that points sideways or up, and
// on any import cycle, between folders or between files.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Higher layers may import lower ones, never the reverse; folders of one layer not each other. */
const LAYERS: Record<string, number> = {
  db: 0,
  inventory: 1,
  tickets: 1,
  tixstock: 1,
  jobs: 1,
  webhooks: 2,
  sales: 2,
  reconcile: 2,
  api: 2,
  support: 2,
  'app.ts': 3,
  entry: 4,
};
/** Programs started from the command line: on top, they may import anything (and each other). */
const ENTRY_POINTS = ['main.ts', 'demo.ts', 'release.ts', 'support/cli.ts', 'tixstock/simulator-cli.ts'];
/** Any other file at src/'s top level (http.ts, log.ts, config.ts, ids.ts, money.ts, ...) is shared: below
 * every layer, it imports only other shared files. */
const SHARED = 'shared';

/** The unit a file belongs to: its folder, `app.ts`, `entry` or `shared`. */
function unitOf(file: string): string {
  if (ENTRY_POINTS.includes(file)) return 'entry';
  const [first, ...rest] = file.split('/');
  if (rest.length > 0) return first!;
  return first === 'app.ts' ? 'app.ts' : SHARED;
}

const rank = (unit: string) => (unit === SHARED ? -1 : (LAYERS[unit] ?? Number.NaN));

/** The files of src/ that `source` (the text of `file`) imports, as paths relative to src/. */
function importsOf(file: string, source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /(?:^|\n)\s*(?:import|export)\s[^'";]*?\bfrom\s*'([^']+)'/g,
    /(?:^|\n)\s*import\s*'([^']+)'/g,
    /\bimport\(\s*'([^']+)'\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const m of source.matchAll(pattern)) {
      if (!m[1]!.startsWith('.')) continue;
      found.push(path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]!)).replace(/\.js$/, '.ts'));
    }
  }
  return [...new Set(found)];
}

/** Every import that breaks the layers, and every cycle, of a tree: file (relative to src/) -> source. */
function architectureProblems(files: Map<string, string>): string[] {
  const problems: string[] = [];
  const graph = new Map<string, string[]>();
  const unitGraph = new Map<string, Set<string>>();
  for (const [file, source] of files) {
    const from = unitOf(file);
    if (Number.isNaN(rank(from))) problems.push(`${file}: folder ${from} is in no layer (add it to LAYERS)`);
    const targets = importsOf(file, source).filter((t) => !t.startsWith('..'));
    graph.set(file, targets);
    for (const target of targets) {
      const to = unitOf(target);
      if (to === from) continue;
      if (!unitGraph.has(from)) unitGraph.set(from, new Set());
      unitGraph.get(from)!.add(to);
      if (!(rank(to) < rank(from))) {
        const why = rank(to) === rank(from) ? 'sideways, within one layer' : 'up a layer';
        problems.push(`${file} imports ${target}: ${from} -> ${to} points ${why}`);
      }
    }
  }
  for (const cycle of cycles(new Map([...unitGraph].map(([k, v]) => [k, [...v]]))))
    problems.push(`folders import each other: ${cycle.join(' -> ')}`);
  for (const cycle of cycles(graph)) problems.push(`files import each other: ${cycle.join(' -> ')}`);
  return problems;
}

/** One cycle of each strongly connected part of the graph that has one (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, index.get(next)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const part: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      part.push(member);
    } while (member !== node);
    if (part.length > 1 || (graph.get(node) ?? []).includes(node)) found.push([...part.reverse(), part[0]!]);
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

function readTree(root: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const full = path.join(entry.parentPath, entry.name);
    files.set(path.relative(root, full).split(path.sep).join('/'), readFileSync(full, 'utf8'));
  }
  return files;
}

describe('architecture: one direction of dependencies', () => {
  it('src/ has no import that points sideways or up, and no import cycle', () => {
    const root = path.resolve(process.env.ARCHITECTURE_SRC ?? 'src');
    const files = readTree(root);
    assert.ok(files.size > 50, `read ${files.size} files of ${root}`);
    assert.deepEqual(architectureProblems(files), []);
  });

  it('finds an import up a layer, one sideways, and a cycle between files', () => {
    const problems = architectureProblems(
      new Map([
        ['inventory/orders.ts', "import type { OrderResource } from '../webhooks/v1/orders.js';"],
        ['webhooks/v1/orders.ts', "import { upsertOrder } from '../../inventory/orders.js';"],
        ['api/orders.ts', "import {\n  orderView,\n} from '../support/order-view.js';"],
        ['support/order-view.ts', "import { isId } from '../ids.js';"],
        ['ids.ts', ''],
        ['jobs/worker.ts', "import { jobHandlers } from './handlers.js';"],
        ['jobs/handlers.ts', "import type { JobHandler } from './worker.js';"],
      ]),
    );
    assert.deepEqual(problems, [
      'inventory/orders.ts imports webhooks/v1/orders.ts: inventory -> webhooks points up a layer',
      'api/orders.ts imports support/order-view.ts: api -> support points sideways, within one layer',
      'folders import each other: inventory -> webhooks -> inventory',
      'files import each other: inventory/orders.ts -> webhooks/v1/orders.ts -> inventory/orders.ts',
      'files import each other: jobs/worker.ts -> jobs/handlers.ts -> jobs/worker.ts',
    ]);
  });

  it('lets the shared top-level modules import only each other', () => {
    assert.deepEqual(
      architectureProblems(
        new Map([
          ['http.ts', "import { log } from './log.js';"],
          ['log.ts', ''],
          ['money.ts', "import { x } from './db/connect.js';"],
          ['db/connect.ts', ''],
        ]),
      ),
      ['money.ts imports db/connect.ts: shared -> db points up a layer'],
    );
  });
});

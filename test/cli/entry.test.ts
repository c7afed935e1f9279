import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../../scripts/build-cli.mjs';
import { burst, cloudFrontFile, tempLogs } from './logs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Packages no command may load before it runs: they start slowly. */
const HEAVY = [
  '@aws-sdk/',
  '@smithy/',
  'dynalite',
  's3rver',
  'kinesalite',
  'playwright',
  'cli-table3',
];

let outdir: string;
let metafile: Metafile;

/** Everything a bundle file loads before its first line runs (static imports, transitively). */
function staticClosure(file: string): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (f: string) => {
    if (files.has(f)) return;
    files.add(f);
    for (const i of metafile.outputs[f]!.imports) {
      if (i.kind !== 'import-statement') continue;
      if (i.external) packages.add(i.path);
      else visit(i.path);
    }
  };
  visit(file);
  return { files: [...files], packages: [...packages] };
}

/** The bundle file holding a source module. */
function outputOf(source: string): string {
  const hit = Object.entries(metafile.outputs).find(
    ([, o]) => o.inputs[source] !== undefined || o.entryPoint === source,
  );
  if (hit === undefined) throw new Error(`no output holds ${source}`);
  return hit[0];
}

function cli(args: string[], cwd = ROOT) {
  return spawnSync(process.execPath, [join(outdir, 'edgeban.js'), ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, AWS_ENDPOINT_URL_S3: undefined },
  });
}

beforeAll(async () => {
  // Inside the checkout, so that the bundle resolves its npm packages as dist/ does.
  mkdirSync(join(ROOT, '.build'), { recursive: true });
  outdir = mkdtempSync(join(ROOT, '.build', 'entry-'));
  metafile = (await buildCli(outdir, { metafile: true })).metafile;
});

afterAll(() => rmSync(outdir, { recursive: true, force: true }));

describe('the built CLI', () => {
  it('loads no AWS SDK, local cloud or table renderer before a command runs', () => {
    const entry = relative(ROOT, join(outdir, 'edgeban.js'));
    const { packages } = staticClosure(entry);
    expect(packages).toContain('commander');
    expect(packages.filter((p) => HEAVY.some((h) => p.startsWith(h)))).toEqual([]);
  });

  it('loads the AWS SDK for replay only when an input is an S3 URL', () => {
    const { packages } = staticClosure(outputOf('cli/replay-command.ts'));
    expect(packages.filter((p) => p.startsWith('@aws-sdk/'))).toEqual([]);
    expect(packages.filter((p) => ['dynalite', 's3rver'].includes(p))).toEqual([]);
  });

  it('keeps the local cloud and the operator backends in chunks of their own', () => {
    const entryFiles = staticClosure(relative(ROOT, join(outdir, 'edgeban.js'))).files;
    for (const source of ['cli/local.ts', 'cli/backend.ts', 'local/cloud.ts']) {
      expect(entryFiles).not.toContain(outputOf(source));
    }
  });

  it('starts with a shebang, as the package bin', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
      scripts: Record<string, string>;
    };
    expect(pkg.bin.edgeban).toBe('dist/edgeban.js');
    expect(pkg.scripts.prepare).toBe('node scripts/build-cli.mjs');
    expect(
      readFileSync(join(outdir, 'edgeban.js'), 'utf8').startsWith('#!/usr/bin/env node\n'),
    ).toBe(true);
  });

  it('prints the help and exits 0', () => {
    const r = cli(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: edgeban/);
    for (const command of ['replay', 'local', 'list', 'block', 'status']) {
      expect(r.stdout).toContain(command);
    }
  });

  it('replays a file and prints the JSON document', () => {
    const dir = tempLogs({
      'a.log': cloudFrontFile(burst('192.0.2.7', '2024-05-01T10:04', 6)),
    });
    const r = cli(['replay', '--threshold', '5', '--json', dir]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as { summary: { requests: number }; decisions: unknown[] };
    expect(doc.summary.requests).toBe(6);
    expect(doc.decisions).toHaveLength(1);
  });

  it('replays on worker threads from the bundle, with the JSON of one thread', () => {
    const dir = tempLogs({
      'a.log': cloudFrontFile(burst('192.0.2.7', '2024-05-01T10:04', 6)),
      'b.log': cloudFrontFile(burst('192.0.2.7', '2024-05-01T10:05', 2)),
      'c.log': cloudFrontFile(burst('192.0.2.8', '2024-05-01T10:05', 7)),
    });
    const args = ['replay', '--threshold', '5', '--json', '--clients', dir];
    const one = cli([...args, '--workers', '1']);
    const three = cli([...args, '--workers', '3']);
    expect(three.stderr).toBe('');
    expect(three.status).toBe(0);
    expect(three.stdout).toBe(one.stdout);
    expect(JSON.parse(three.stdout).clients).toEqual([
      { ip: '192.0.2.7', requests: 8 },
      { ip: '192.0.2.8', requests: 7 },
    ]);
  });

  it('prints one line, no stack trace, for a missing path', () => {
    const r = cli(['replay', '--threshold', '5', '/no/such/path']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('edgeban: no such file or directory: /no/such/path\n');
    expect(r.stdout).toBe('');
  });

  it('renders the text tables of replay', () => {
    const dir = tempLogs({ 'a.log': cloudFrontFile(burst('192.0.2.7', '2024-05-01T10:04', 6)) });
    const r = cli(['replay', '--threshold', '5', dir]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/192\.0\.2\.7\s+cli\s+6/);
  });
});

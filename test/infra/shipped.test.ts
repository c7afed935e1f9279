/**
 * The shipped cdk.json, synthesized the way `cdk synth` runs the app (a
 * child process with the CLI's environment), offline: real bundling with
 * the local esbuild, CloudFormation schema validation, and cdk-nag wired
 * in `bin/app.ts`, which would fail the synth on any finding.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CDK_JSON } from './app';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'edgeban-shipped-'));
let result: { code: number; stdout: string; stderr: string };

beforeAll(async () => {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CDK_OUTDIR: out,
    CDK_CONTEXT_JSON: JSON.stringify(CDK_JSON.context),
    CDK_DEFAULT_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  delete env.CDK_VALIDATION;
  delete env.CDK_DEFAULT_ACCOUNT;
  const [cmd, ...args] = CDK_JSON.app.split(' ');
  result = await run(cmd!, args, { cwd: ROOT, env, maxBuffer: 16 * 1024 * 1024 }).then(
    (r) => ({ code: 0, ...r }),
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
}, 120_000);

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('the shipped config', () => {
  it('synthesizes', () => {
    expect(result.stderr).not.toMatch(/error|violation/i);
    expect(result.code).toBe(0);
    expect(existsSync(join(out, 'Edgeban.template.json'))).toBe(true);
  });

  it('passes CloudFormation validation and cdk-nag with nothing to report', () => {
    const report = JSON.parse(readFileSync(join(out, 'validation-report.json'), 'utf8'));
    const failing = (report.pluginReports as { success: boolean; pluginName: string }[]).filter(
      (r) => !r.success,
    );
    expect(failing).toEqual([]);
  });

  it('bundles each handler as a minified ES module with a source map', () => {
    const manifest = JSON.parse(readFileSync(join(out, 'Edgeban.assets.json'), 'utf8'));
    const dirs = Object.values<{ source: { path: string; packaging: string } }>(manifest.files)
      .filter((f) => f.source.packaging === 'zip')
      .map((f) => join(out, f.source.path));
    // Ingest, reconciler, deploy record and the console widget's two; the CDK
    // provider framework in front of the deploy record is aws-cdk-lib's own code.
    const ours = dirs.filter((dir) => readdirSync(dir).includes('index.mjs'));
    expect(ours).toHaveLength(5);
    expect(dirs).toHaveLength(6);
    for (const dir of ours) {
      expect(readdirSync(dir).sort()).toEqual(['index.mjs', 'index.mjs.map']);
      const code = readFileSync(join(dir, 'index.mjs'), 'utf8');
      expect(
        code.startsWith("import { createRequire as __edgebanRequire } from 'node:module';"),
      ).toBe(true);
      // Minified: very long lines, not a readable file.
      expect(code.length / code.split('\n').length).toBeGreaterThan(2000);
      expect(code).toMatch(/export\{[^}]*as handler\}/);
    }
  });
});

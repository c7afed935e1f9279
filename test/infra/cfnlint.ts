/**
 * cfn-lint 1.x (Python, on PATH; it does not come from the npm registry)
 * over synthesized templates, in one process: it is slow to start. Errors
 * always fail; a warning passes only when {@link LISTED} names it with the
 * reason it is not fixed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CFN_LINT = 'cfn-lint';

/** One finding, its file mapped back to the template's name. */
export interface Finding {
  readonly template: string;
  readonly level: string;
  readonly rule: string;
  /** `Resources/<logical id>/...` or `Outputs/<name>/...`. */
  readonly path: string;
  readonly message: string;
}

/** Warnings left as they are, each with why. */
export const LISTED: readonly { rule: string; path: RegExp; reason: string }[] = [
  {
    rule: 'W3005',
    path: /^Resources\/[A-Za-z0-9]+(Function|onEvent|[0-9a-f]{32})[0-9A-F]{8}\/DependsOn\//,
    reason:
      "aws-cdk-lib's Function states DependsOn its role besides the GetAtt of the role's ARN: redundant, it changes no order",
  },
];

/** Whether cfn-lint 1.x runs here. */
export function cfnLintAvailable(): boolean {
  const r = spawnSync(CFN_LINT, ['--version'], { encoding: 'utf8' });
  return r.status === 0 && /cfn-lint 1\./.test(`${r.stdout}${r.stderr}`);
}

interface RawFinding {
  Filename: string;
  Level: string;
  Rule: { Id: string };
  Location: { Path: (string | number)[] };
  Message: string;
}

/**
 * Lints every template in one cfn-lint run, checked against every region given.
 * @throws Error when cfn-lint itself fails (exit code 1 or output that is not JSON)
 */
export function runCfnLint(
  templates: readonly { name: string; body: unknown }[],
  regions: readonly string[],
): Finding[] {
  const dir = mkdtempSync(join(tmpdir(), 'edgeban-cfn-lint-'));
  try {
    const names = new Map<string, string>();
    const files = templates.map((t, i) => {
      const file = join(dir, `template-${i}.json`);
      writeFileSync(file, JSON.stringify(t.body, null, 1));
      names.set(file, t.name);
      return file;
    });
    const r = spawnSync(CFN_LINT, ['--format', 'json', '--regions', ...regions, '--', ...files], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    // Exit codes are a bit mask of error (2), warning (4) and informational (8) findings; 1 is a crash.
    if (r.status === null || r.status === 1) {
      throw new Error(`cfn-lint failed (${r.status ?? r.signal}): ${r.stderr.slice(0, 2000)}`);
    }
    const raw = JSON.parse(r.stdout === '' ? '[]' : r.stdout) as RawFinding[];
    return raw.map((f) => ({
      template: names.get(f.Filename) ?? f.Filename,
      level: f.Level,
      rule: f.Rule.Id,
      path: f.Location.Path.join('/'),
      message: f.Message,
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Listed warnings that no finding matches any more: the list must stay true. */
export function staleListings(findings: readonly Finding[]): string[] {
  return LISTED.filter(
    (l) => !findings.some((f) => f.level === 'Warning' && f.rule === l.rule && l.path.test(f.path)),
  ).map((l) => `${l.rule} ${l.path}`);
}

/** Findings that are not listed warnings, one line each. */
export function unlisted(findings: readonly Finding[]): string[] {
  return findings
    .filter(
      (f) => !LISTED.some((l) => f.level === 'Warning' && l.rule === f.rule && l.path.test(f.path)),
    )
    .map((f) => `${f.level} ${f.rule} ${f.template} ${f.path}: ${f.message}`);
}

/**
 * The operator commands end to end, in process through `run()`: a real
 * local cloud (dynalite and the WAF emulator on 127.0.0.1), a state table
 * and IP sets as `edgeban local --serve` makes them, and a discovery file
 * in a temporary `XDG_RUNTIME_DIR` naming this process.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Io, run } from '../../cli/main';
import { parseConfig } from '../../lambda/core/config';
import { CONSOLE_ACTOR, type IpSetRef } from '../../lambda/reconciler/reconcile';
import { endKeyBlocks, putActiveBlock, readActiveBlocks } from '../../lambda/state/blocks';
import { writePairState } from '../../lambda/state/pairs';
import { ensureTable } from '../../lambda/state/table';
import { type LocalCloud, startLocalCloud } from '../../local/cloud';
import { discoveryPath, writeDiscovery } from '../../local/discovery';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const ME = userInfo().username;
const CONFIG = {
  rules: [{ name: 'flood', threshold: 100, window: '5m' }],
  block: { duration: '1h' },
  allowlist: ['192.0.2.200'],
};

let cloud: LocalCloud;
let runtimeDir: string;
const saved = { ...process.env };

interface Pipeline {
  readonly tableName: string;
  readonly ipSets: IpSetRef[];
}

/** A fresh table and IP sets, announced by a discovery file as a serving pipeline would. */
async function servePipeline(pid = process.pid): Promise<Pipeline> {
  cloud.waf.reset();
  const tableName = `edgeban-${randomUUID()}`;
  await ensureTable(cloud.clients().dynamodb, tableName);
  const ipSets: IpSetRef[] = (['IPV4', 'IPV6'] as const).map((version) => {
    const s = cloud.waf.createIpSet({
      name: `edgeban-${version.toLowerCase()}-1`,
      scope: 'CLOUDFRONT',
      ipAddressVersion: version,
      description: 'edgeban blocklist',
    });
    return { name: s.name, id: s.id, arn: s.arn, version, scope: 'CLOUDFRONT' };
  });
  writeDiscovery(
    {
      pid,
      endpoints: cloud.endpoints,
      region: 'us-east-1',
      bucket: 'logs',
      tableName,
      ipSets,
      config: CONFIG,
      startedAt: '2024-05-01T10:00:00Z',
    },
    discoveryPath(),
  );
  return { tableName, ipSets };
}

function wafAddresses(p: Pipeline): string[] {
  return p.ipSets.flatMap((ref) => [...cloud.waf.ipSet({ id: ref.id }).addresses]).sort();
}

async function edgeban(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), tty: false };
  const code = await run(args, io);
  return { code, out, err };
}

async function json(args: string[]) {
  const r = await edgeban([...args, '--json']);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.out);
}

function expectOneLine(err: string, pattern: RegExp): void {
  expect(err).toMatch(/^edgeban: [^\n]+\n$/);
  expect(err).toMatch(pattern);
}

beforeAll(async () => {
  cloud = await startLocalCloud();
  runtimeDir = mkdtempSync(join(tmpdir(), 'edgeban-run-'));
  process.env.XDG_RUNTIME_DIR = runtimeDir;
});

afterEach(() => {
  process.env = { ...saved, XDG_RUNTIME_DIR: runtimeDir };
});

afterAll(async () => {
  process.env = saved;
  rmSync(runtimeDir, { recursive: true, force: true });
  await cloud?.stop();
});

describe('edgeban block, list, check, history, unblock --local', () => {
  it('blocks an address into WAF, shows it everywhere, and unblocks it out of WAF', async () => {
    const p = await servePipeline();
    const before = Date.now();

    const block = await json(['block', '198.51.100.7', '--reason', 'scanner', '--local']);
    expect(Object.keys(block).sort()).toEqual(
      [
        'blockedUntil',
        'by',
        'firstExceeded',
        'inWaf',
        'key',
        'offences',
        'reason',
        'rule',
        'source',
      ].sort(),
    );
    expect(block.key).toBe('198.51.100.7');
    expect(block.rule).toBeNull();
    expect(block.source).toBe('manual');
    expect(block.reason).toBe('scanner');
    expect(block.by).toBe(ME);
    expect(block.firstExceeded).toBeNull();
    expect(block.offences).toBeNull();
    expect(block.inWaf).toBe(true);
    expect(block.blockedUntil).toMatch(ISO);
    const until = Date.parse(block.blockedUntil);
    expect(until).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 3600_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 3600_000);
    expect(wafAddresses(p)).toEqual(['198.51.100.7/32']);

    const list = await json(['list', '--local']);
    expect(list).toEqual({ blocks: [block] });

    const check = await json(['check', '198.51.100.7', '--local']);
    expect(check).toEqual({ ip: '198.51.100.7', blocked: true, blocks: [block], guardedBy: null });

    const h1 = await json(['history', '198.51.100.7', '--local']);
    expect(h1.ip).toBe('198.51.100.7');
    expect(h1.events).toHaveLength(1);
    const [made] = h1.events;
    expect(made).toEqual({
      at: made.at,
      kind: 'block',
      key: '198.51.100.7',
      rule: null,
      by: ME,
      reason: 'scanner',
    });
    expect(made.at).toMatch(ISO);

    const lifted = await json(['unblock', '198.51.100.7', '--reason', 'false positive', '--local']);
    expect(lifted.key).toBe('198.51.100.7');
    expect(lifted.by).toBe(ME);
    expect(lifted.at).toMatch(ISO);
    expect(lifted.blocks).toHaveLength(1);
    expect(lifted.blocks[0]).toMatchObject({ key: '198.51.100.7', source: 'manual', inWaf: false });
    expect(wafAddresses(p)).toEqual([]);

    expect(await json(['list', '--local'])).toEqual({ blocks: [] });
    expect(await json(['check', '198.51.100.7', '--local'])).toEqual({
      ip: '198.51.100.7',
      blocked: false,
      blocks: [],
      guardedBy: null,
    });
    const h2 = await json(['history', '198.51.100.7', '--local']);
    expect(h2.events.map((e: { kind: string }) => e.kind)).toEqual(['block', 'unblock']);
    expect(h2.events[1]).toMatchObject({
      kind: 'unblock',
      key: '198.51.100.7',
      rule: null,
      by: ME,
      reason: 'false positive',
    });
  });

  it('prints aligned tables and one-line confirmations as text', async () => {
    const p = await servePipeline();
    const blocked = await edgeban([
      'block',
      '2001:db8:5::/48',
      '--for',
      '30m',
      '--reason',
      'botnet',
      '--local',
    ]);
    expect(blocked.err).toBe('');
    expect(blocked.code).toBe(0);
    expect(blocked.out).toMatch(
      new RegExp(`^Blocked 2001:db8:5::/48 for 30m, until \\S+Z, by ${ME} \\("botnet"\\)\\.\\n`),
    );
    expect(blocked.out).toContain('2001:db8:5::/48 is in WAF now.');
    expect(wafAddresses(p)).toEqual(['2001:db8:5::/48']);
    await edgeban(['block', '198.51.100.9', '--local']);

    const list = await edgeban(['list', '--local']);
    const lines = list.out.split('\n');
    expect(lines[0]).toMatch(
      /^key\s+rule\s+blocked until\s+offences\s+peak\s+by\s+in WAF\s+reason$/,
    );
    // Aligned: every row's second column starts where the header's does.
    const ruleColumn = lines[0]!.indexOf('rule');
    expect(lines[1]!.startsWith('198.51.100.9')).toBe(true);
    expect(lines[1]!.indexOf('manual')).toBe(ruleColumn);
    expect(lines[2]!.startsWith('2001:db8:5::/48')).toBe(true);
    expect(lines[2]!.indexOf('manual')).toBe(ruleColumn);
    expect(list.out).toContain('2 active blocks.');

    const check = await edgeban(['check', '2001:db8:5::1', '--local']);
    expect(check.out).toMatch(/^2001:db8:5::1 is blocked \(in WAF\):\n/);
    expect(check.out).toContain(
      `manually blocked by ${ME} (through the range 2001:db8:5::/48): "botnet", until`,
    );

    const history = await edgeban(['history', '2001:db8:5::1', '--local']);
    expect(history.out.split('\n')[0]).toMatch(/^at\s+event\s+key\s+rule\s+by\s+reason$/);
    expect(history.out).toMatch(new RegExp(`block\\s+2001:db8:5::/48\\s+${ME}\\s+botnet`));
  });

  it('explains that a guarded address is not blocked, naming the guard', async () => {
    await servePipeline();
    const check = await edgeban(['check', '10.0.0.1', '--local']);
    expect(check.code).toBe(0);
    expect(check.out).toBe(
      '10.0.0.1 is not blocked, and cannot be: it is guarded by 10.0.0.0/8 (private).\n',
    );
    expect((await json(['check', '192.0.2.200', '--local'])).guardedBy).toBe(
      'allowlist 192.0.2.200/32',
    );
  });
});

describe('edgeban block refusals', () => {
  it('refuses a private address with exit 1 naming the guard, and writes nothing', async () => {
    const p = await servePipeline();
    const r = await edgeban(['block', '10.0.0.1', '--local']);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expectOneLine(r.err, /10\.0\.0\.0\/8 \(private\)/);
    expect(await json(['list', '--local'])).toEqual({ blocks: [] });
    expect((await json(['history', '10.0.0.1', '--local'])).events).toEqual([]);
    expect(wafAddresses(p)).toEqual([]);
  });

  it('refuses an allowlisted address with exit 1 naming the allowlist entry', async () => {
    await servePipeline();
    const r = await edgeban(['block', '192.0.2.200', '--local']);
    expect(r.code).toBe(1);
    expectOneLine(r.err, /allowlist 192\.0\.2\.200\/32/);
  });

  it('refuses a range wider than minPrefix with exit 1', async () => {
    await servePipeline();
    const r = await edgeban(['block', '198.51.100.0/8', '--local']);
    expect(r.code).toBe(1);
    expectOneLine(r.err, /198\.0\.0\.0\/8 is wider than minPrefix \/16/);
  });

  it('refuses to unblock an address inside a blocked range, naming the range', async () => {
    const p = await servePipeline();
    expect((await edgeban(['block', '203.0.113.0/24', '--local'])).code).toBe(0);
    const r = await edgeban(['unblock', '203.0.113.9', '--local']);
    expect(r.code).toBe(1);
    expectOneLine(r.err, /203\.0\.113\.9 is inside the blocked range 203\.0\.113\.0\/24/);
    expect(wafAddresses(p)).toEqual(['203.0.113.0/24']);
  });

  it('says nothing is blocked with exit 1 when unblocking a free address', async () => {
    await servePipeline();
    const r = await edgeban(['unblock', '198.51.100.77', '--local']);
    expect(r.code).toBe(1);
    expectOneLine(r.err, /198\.51\.100\.77 is not blocked/);
  });

  it('rejects text that is no address, and a bad --for, with exit 2', async () => {
    await servePipeline();
    const bad = await edgeban(['check', 'example.com', '--local']);
    expect(bad.code).toBe(2);
    expectOneLine(bad.err, /not an IP address or CIDR: example\.com/);
    const forBad = await edgeban(['block', '198.51.100.7', '--for', '1h30m', '--local']);
    expect(forBad.code).toBe(2);
    expectOneLine(forBad.err, /--for must be a duration like .*got 1h30m/);
  });
});

describe('edgeban pause / resume / status', () => {
  it('pauses to observe and resumes to the config mode, recording who', async () => {
    await servePipeline();
    const s0 = await json(['status', '--local']);
    expect(s0).toMatchObject({
      mode: 'block',
      rules: [{ name: 'flood', threshold: 100, window: '5m', ipv4Prefix: 32, ipv6Prefix: 64 }],
      lagSeconds: null,
      override: null,
    });

    const paused = await json(['pause', '--local']);
    expect(paused).toEqual({ mode: 'observe', override: 'observe', by: ME, at: paused.at });
    expect(paused.at).toMatch(ISO);
    const s1 = await json(['status', '--local']);
    expect(s1.mode).toBe('observe');
    expect(s1.override).toMatchObject({ mode: 'observe', by: ME });
    expect(s1.lastReconcile).toMatch(ISO);

    const again = await edgeban(['pause', '--local']);
    expect(again.code).toBe(1);
    expectOneLine(again.err, /already paused/);

    const resumed = await json(['resume', '--local']);
    expect(resumed).toMatchObject({ mode: 'block', override: null, by: ME });
    expect((await json(['status', '--local'])).mode).toBe('block');

    const idle = await edgeban(['resume', '--local']);
    expect(idle.code).toBe(1);
    expectOneLine(idle.err, /not paused/);
  });

  it('leaves WAF alone while paused, and applies the block on resume', async () => {
    const p = await servePipeline();
    await json(['pause', '--local']);
    const text = await edgeban(['block', '198.51.100.8', '--local']);
    expect(text.code).toBe(0);
    expect(text.out).toContain('the mode is observe, so WAF is left as it is');
    expect(wafAddresses(p)).toEqual([]);
    await json(['resume', '--local']);
    expect(wafAddresses(p)).toEqual(['198.51.100.8/32']);
    const status = await json(['status', '--local']);
    expect(status.ipSets).toEqual([
      { name: 'edgeban-ipv4-1', version: 'IPV4', size: 1, capacity: 10_000 },
      { name: 'edgeban-ipv6-1', version: 'IPV6', size: 0, capacity: 10_000 },
    ]);
  });
});

describe('edgeban operator targets', () => {
  it('exits 3 with one line when no local pipeline is running', async () => {
    rmSync(discoveryPath(), { force: true });
    const r = await edgeban(['list', '--local']);
    expect(r.code).toBe(3);
    expect(r.out).toBe('');
    expect(r.err).toBe('edgeban: edgeban local --serve is not running\n');
  });

  it('exits 3 when the discovery file names a process that is gone', async () => {
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    await servePipeline(gone);
    const r = await edgeban(['status', '--local']);
    expect(r.code).toBe(3);
    expect(r.err).toBe('edgeban: edgeban local --serve is not running\n');
  });

  it('exits 3 when the serving pipeline stopped answering', async () => {
    await servePipeline();
    const port = await closedPort();
    const doc = JSON.parse(JSON.stringify({ endpoints: cloud.endpoints }));
    writeDiscovery(
      {
        pid: process.pid,
        endpoints: { ...doc.endpoints, dynamodb: `http://127.0.0.1:${port}` },
        region: 'us-east-1',
        bucket: 'logs',
        tableName: 'gone',
        ipSets: [],
        config: CONFIG,
        startedAt: '2024-05-01T10:00:00Z',
      },
      discoveryPath(),
    );
    const r = await edgeban(['list', '--local']);
    expect(r.code).toBe(3);
    expectOneLine(r.err, /cannot reach edgeban local/);
  });

  it('exits 2 with a hint when neither --local nor --stack is given', async () => {
    const r = await edgeban(['list']);
    expect(r.code).toBe(2);
    expectOneLine(r.err, /--local .* or --stack NAME/);
    const both = await edgeban(['status', '--local', '--stack', 'edgeban']);
    expect(both.code).toBe(2);
  });

  it('exits 3 when the stack endpoint cannot be reached', async () => {
    const port = await closedPort();
    process.env.AWS_ENDPOINT_URL = `http://127.0.0.1:${port}`;
    process.env.AWS_REGION = 'eu-west-1';
    process.env.AWS_ACCESS_KEY_ID = 'AKIDEXAMPLE';
    process.env.AWS_SECRET_ACCESS_KEY = 'secret';
    const r = await edgeban(['list', '--stack', 'edgeban']);
    expect(r.code).toBe(3);
    expect(r.out).toBe('');
    expectOneLine(r.err, /cannot reach CloudFormation in eu-west-1/);
  });

  it('exits 2 when --stack has no region to look in', async () => {
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    const r = await edgeban(['status', '--stack', 'edgeban']);
    expect(r.code).toBe(2);
    expectOneLine(r.err, /set AWS_REGION/);
  });
});

/** Rule blocks of `flood` (pair state and active item), as ingest writes them, starting now. */
async function floodBlocks(p: Pipeline, keys: readonly string[]): Promise<void> {
  const ddb = DynamoDBDocumentClient.from(cloud.clients().dynamodb);
  const start = Math.floor(Date.now() / 1000) - 60;
  for (const key of keys) {
    const blocks = [{ offence: 1, start, until: start + 3600 }];
    await writePairState(
      ddb,
      p.tableName,
      'flood',
      key,
      { peak: 150, firstExceeded: start, blocks, countFrom: null },
      0,
      { windowMinutes: 5 },
    );
    await putActiveBlock(ddb, p.tableName, {
      key,
      rule: 'flood',
      source: 'rule',
      start,
      until: start + 3600,
      offences: 1,
      peak: 150,
      window: 5,
      firstExceeded: start,
      reason: '150 requests in 5m over threshold 100',
      by: 'edgeban',
    });
  }
}

/** ISO minute `minutes` from now, as --since/--until take it. */
const minuteFromNow = (minutes: number) =>
  new Date(Date.now() + minutes * 60_000).toISOString().slice(0, 16);

describe('edgeban unblock --rule / --all --local', () => {
  it('shows what it would lift and exits 2 without --yes, lifts with it', async () => {
    const p = await servePipeline();
    await floodBlocks(p, ['198.51.100.21', '198.51.100.22']);
    await json(['block', '198.51.100.23', '--local']);
    expect(wafAddresses(p)).toEqual(['198.51.100.21/32', '198.51.100.22/32', '198.51.100.23/32']);

    const dry = await edgeban(['unblock', '--rule', 'flood', '--local']);
    expect(dry.code).toBe(2);
    expectOneLine(dry.err, /would lift 2 blocks of rule flood: run again with --yes/);
    expect(dry.out).toMatch(/198\.51\.100\.21 +flood/);
    expect(wafAddresses(p)).toHaveLength(3);

    const lifted = await json([
      'unblock',
      '--rule',
      'flood',
      '--yes',
      '--reason',
      'threshold too low',
      '--local',
    ]);
    expect(Object.keys(lifted)).toEqual(['unblocked']);
    expect(
      lifted.unblocked.map((b: { key: string; rule: string; inWaf: boolean }) => [
        b.key,
        b.rule,
        b.inWaf,
      ]),
    ).toEqual([
      ['198.51.100.21', 'flood', false],
      ['198.51.100.22', 'flood', false],
    ]);
    expect(wafAddresses(p)).toEqual(['198.51.100.23/32']);
    const h = await json(['history', '198.51.100.21', '--local']);
    expect(h.events.at(-1)).toMatchObject({
      kind: 'unblock',
      rule: 'flood',
      by: ME,
      reason: 'threshold too low',
    });

    const none = await edgeban(['unblock', '--rule', 'flood', '--yes', '--local']);
    expect(none.code).toBe(1);
    expectOneLine(none.err, /no active block of rule flood/);

    const all = await edgeban(['unblock', '--all', '--yes', '--local']);
    expect(all.code).toBe(0);
    expect(all.out).toMatch(
      /^Lifted 1 block \(1 key\) at .* by .*\. Only new traffic can block them again\.\n/,
    );
    expect(wafAddresses(p)).toEqual([]);
    const empty = await edgeban(['unblock', '--all', '--local']);
    expect(empty.code).toBe(1);
  });

  it('refuses bad combinations and unknown rules with exit 2', async () => {
    await servePipeline();
    for (const [args, pattern] of [
      [['unblock', '--local'], /needs an address or CIDR, --rule NAME, or --all/],
      [['unblock', '198.51.100.1', '--all', '--local'], /not both/],
      [['unblock', '--rule', 'flood', '--all', '--local'], /--rule NAME or --all, not both/],
      [['unblock', '198.51.100.1', '--yes', '--local'], /--yes goes with --rule or --all/],
      [
        ['unblock', '--rule', 'nosuch', '--yes', '--local'],
        /no rule nosuch in the config \(rules: flood\)/,
      ],
    ] as const) {
      const r = await edgeban([...args]);
      expect(r.code).toBe(2);
      expectOneLine(r.err, pattern);
    }
  });
});

describe('edgeban reinstate --local', () => {
  it('shows what it would put back, exits 2 without --yes, and puts it back into WAF with it', async () => {
    const p = await servePipeline();
    await floodBlocks(p, ['198.51.100.31', '198.51.100.32']);
    const ddb = DynamoDBDocumentClient.from(cloud.clients().dynamodb);
    // What a reconciler that took a reset for console removals recorded.
    const active = await readActiveBlocks(ddb, p.tableName);
    for (const key of ['198.51.100.31', '198.51.100.32']) {
      await endKeyBlocks(ddb, p.tableName, parseConfig(CONFIG), key, active, {
        ms: Date.now() - 30_000,
        by: CONSOLE_ACTOR,
        reason: 'removed from IP set edgeban-ipv4-1',
      });
    }
    const range = ['--since', minuteFromNow(-60), '--until', minuteFromNow(2)];

    const dry = await edgeban(['reinstate', ...range, '--local']);
    expect(dry.code).toBe(2);
    expectOneLine(dry.err, /would reinstate 2 blocks: run again with --yes/);
    expect(dry.out).toMatch(/198\.51\.100\.31 +flood/);
    expect(wafAddresses(p)).toEqual([]);

    const done = await json(['reinstate', ...range, '--yes', '--local']);
    expect(done.skipped).toEqual([]);
    expect(done.reinstated.map((b: { key: string; rule: string }) => [b.key, b.rule])).toEqual([
      ['198.51.100.31', 'flood'],
      ['198.51.100.32', 'flood'],
    ]);
    expect(wafAddresses(p)).toEqual(['198.51.100.31/32', '198.51.100.32/32']);
    const h = await json(['history', '198.51.100.31', '--local']);
    expect(h.events.at(-1)).toMatchObject({
      kind: 'block',
      rule: 'flood',
      by: ME,
      reason: expect.stringMatching(/^reinstated/),
    });

    const again = await edgeban(['reinstate', ...range, '--yes', '--local']);
    expect(again.code).toBe(1);
    expectOneLine(
      again.err,
      /nothing to reinstate: 2 console removals in the range, each left as it is/,
    );
  });

  it('exits 1 when no removal is in the range, 2 for a bad or missing time', async () => {
    await servePipeline();
    const none = await edgeban([
      'reinstate',
      '--since',
      '2024-05-01',
      '--until',
      '2024-05-02',
      '--local',
    ]);
    expect(none.code).toBe(1);
    expectOneLine(
      none.err,
      /no block was ended as a console removal between 2024-05-01 and 2024-05-02/,
    );
    const bad = await edgeban([
      'reinstate',
      '--since',
      'yesterday',
      '--until',
      '2024-05-02',
      '--local',
    ]);
    expect(bad.code).toBe(2);
    expectOneLine(bad.err, /--since must be a date or an ISO time/);
    const missing = await edgeban(['reinstate', '--since', '2024-05-01', '--local']);
    expect(missing.code).toBe(2);
    expectOneLine(missing.err, /needs --since and --until/);
    const backwards = await edgeban([
      'reinstate',
      '--since',
      '2024-05-02',
      '--until',
      '2024-05-01',
      '--local',
    ]);
    expect(backwards.code).toBe(2);
    expectOneLine(backwards.err, /--since must be before --until/);
  });
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

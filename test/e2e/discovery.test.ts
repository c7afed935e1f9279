import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DiscoveryError,
  discoveryPath,
  type LocalDiscovery,
  readDiscovery,
  removeDiscovery,
  writeDiscovery,
} from '../../local/discovery';
import { tempDir } from './env';

const dir = tempDir('discovery');
afterAll(() => dir.remove());

function doc(pid: number): LocalDiscovery {
  return {
    pid,
    endpoints: {
      s3: 'http://127.0.0.1:4568',
      dynamodb: 'http://127.0.0.1:4569',
      wafv2: 'http://127.0.0.1:4570',
    },
    region: 'us-east-1',
    bucket: 'edgeban-logs',
    tableName: 'edgeban-state',
    ipSets: [{ name: 'edgeban-ipv4-1', id: 'abc', version: 'IPV4', scope: 'CLOUDFRONT' }],
    config: { rules: [{ name: 'flood', threshold: 10, window: '1m' }] },
    startedAt: '2024-05-01T10:00:00Z',
  };
}

/** A pid that certainly belongs to no process: a child that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

describe('discoveryPath', () => {
  it('uses $XDG_RUNTIME_DIR/edgeban/local.json when set', () => {
    expect(discoveryPath({ XDG_RUNTIME_DIR: '/run/user/1000' })).toBe(
      '/run/user/1000/edgeban/local.json',
    );
  });

  it('falls back to /tmp/edgeban-$UID/local.json', () => {
    expect(discoveryPath({})).toBe(`/tmp/edgeban-${process.getuid?.() ?? 0}/local.json`);
    expect(discoveryPath({ XDG_RUNTIME_DIR: '' })).toBe(
      `/tmp/edgeban-${process.getuid?.() ?? 0}/local.json`,
    );
  });
});

describe('writeDiscovery and readDiscovery', () => {
  it('round-trips the document of a live process, readable by its user only', () => {
    const path = join(dir.path, 'a', 'edgeban', 'local.json');
    writeDiscovery(doc(process.pid), path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readDiscovery(path)).toEqual(doc(process.pid));
  });

  it('returns null when there is no file, or when its process is gone', () => {
    expect(readDiscovery(join(dir.path, 'none.json'))).toBeNull();
    const path = join(dir.path, 'dead.json');
    writeDiscovery(doc(deadPid()), path);
    expect(readDiscovery(path)).toBeNull();
  });

  it('throws DiscoveryError for a file without a pid or endpoints', () => {
    const path = join(dir.path, 'bad.json');
    writeFileSync(path, JSON.stringify({ endpoints: doc(1).endpoints }));
    expect(() => readDiscovery(path)).toThrow(DiscoveryError);
    writeFileSync(path, JSON.stringify({ pid: process.pid, endpoints: { s3: 'x' } }));
    expect(() => readDiscovery(path)).toThrow(/endpoints/);
    writeFileSync(path, '{');
    expect(() => readDiscovery(path)).toThrow(/not valid JSON/);
  });

  it('removes only a file written for the given pid', () => {
    const path = join(dir.path, 'mine.json');
    writeDiscovery(doc(process.pid), path);
    expect(removeDiscovery(path, process.pid + 1)).toBe(false);
    expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid);
    expect(removeDiscovery(path, process.pid)).toBe(true);
    expect(existsSync(path)).toBe(false);
  });
});

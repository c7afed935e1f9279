/**
 * Small log writers for the CLI tests: CloudFront legacy and ALB lines
 * with the fields the rules read, the rest filled with plausible values.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CF_LEGACY_FIELDS } from '../fixtures/logs';

export const CF_FIELDS = CF_LEGACY_FIELDS.join(' ');

export interface Hit {
  ip: string;
  /** ISO instant, e.g. 2024-05-01T10:04:12Z */
  at: string;
  method?: string;
  path?: string;
  status?: number;
  host?: string;
}

export function cloudFrontLine(h: Hit): string {
  const [date, rest] = h.at.split('T') as [string, string];
  const time = rest.slice(0, 8);
  return [
    date,
    time,
    'LAX1',
    '392',
    h.ip,
    h.method ?? 'GET',
    'd111111abcdef8.cloudfront.net',
    h.path ?? '/index.html',
    String(h.status ?? 200),
    '-',
    'Mozilla/5.0%20(X11;%20Linux)',
    '-',
    '-',
    'Hit',
    'SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==',
    h.host ?? 'www.example.com',
    'https',
    '23',
    '0.001',
    '-',
    'TLSv1.2',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'Hit',
    'HTTP/2.0',
    '-',
    '-',
    '11040',
    '0.001',
    'Hit',
    'text/html',
    '78',
    '-',
    '-',
  ].join('\t');
}

export function cloudFrontFile(hits: Hit[]): string {
  return `#Version: 1.0\n#Fields: ${CF_FIELDS}\n${hits.map(cloudFrontLine).join('\n')}\n`;
}

export function albLine(h: Hit): string {
  const host = h.host ?? 'www.example.com';
  const client = h.ip.includes(':') ? `${h.ip}:41786` : `${h.ip}:2817`;
  return (
    `https ${h.at.replace('Z', '.186641Z')} app/my-loadbalancer/50dc6c495c0c9188 ${client} ` +
    `10.0.0.1:80 0.086 0.048 0.037 ${h.status ?? 200} 200 0 57 ` +
    `"${h.method ?? 'GET'} https://${host}:443${h.path ?? '/'}?q=1 HTTP/1.1" "curl/7.46.0 \\"x\\"" ` +
    'ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 ' +
    'arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 ' +
    `"Root=1-58337281-1d84f3d73c47ec4e58577259" "${host}" "-" 1 ${h.at} "forward" "-" "-" ` +
    '"10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90 "-" "-" "-"'
  );
}

export function albFile(hits: Hit[]): string {
  return `${hits.map(albLine).join('\n')}\n`;
}

/** `n` hits from `ip` spread over the seconds of one minute. */
export function burst(ip: string, minute: string, n: number, extra: Partial<Hit> = {}): Hit[] {
  return Array.from({ length: n }, (_, i) => ({
    ip,
    at: `${minute}:${String(i % 60).padStart(2, '0')}Z`,
    ...extra,
  }));
}

/** A fresh temporary directory with the given files (gzipped when the name ends in .gz). */
export function tempLogs(files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgeban-cli-'));
  for (const [name, content] of Object.entries(files)) {
    const data = name.endsWith('.gz') && typeof content === 'string' ? gzipSync(content) : content;
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
  return dir;
}

/**
 * Replay inputs: files, directories (recursive) and `s3://bucket/prefix`,
 * resolved to a list of sources that open as byte streams.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchBucket,
  type S3Client,
} from '@aws-sdk/client-s3';
import { isUnreachable, oneLine, UnreachableError, UsageError } from './errors';

/** One log object to replay. */
export interface Source {
  /** As the user gave it: a path, or `s3://bucket/key`. */
  readonly name: string;
  /** Size in bytes, when known. */
  readonly size: number;
  /** Opens the raw bytes (gzip or plain). */
  open(): Promise<Readable>;
}

/** Parses `s3://bucket/prefix`, or returns null for a local path. */
export function parseS3Url(input: string): { bucket: string; prefix: string } | null {
  if (!input.startsWith('s3://')) return null;
  const rest = input.slice(5);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? '' : rest.slice(slash + 1);
  if (bucket === '') throw new UsageError(`invalid S3 URL ${input}: no bucket`);
  return { bucket, prefix };
}

async function walk(path: string, out: Source[]): Promise<void> {
  const entries = await readdir(path, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const full = join(path, entry.name);
    if (entry.isDirectory()) await walk(full, out);
    else if (entry.isFile()) out.push(await fileSource(full));
  }
}

async function fileSource(path: string): Promise<Source> {
  const info = await stat(path);
  return {
    name: path,
    size: info.size,
    open: async () => createReadStream(path, { highWaterMark: 256 * 1024 }),
  };
}

async function localSources(path: string): Promise<Source[]> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch {
    throw new UsageError(`no such file or directory: ${path}`);
  }
  if (!info.isDirectory()) return [await fileSource(path)];
  const out: Source[] = [];
  await walk(path, out);
  return out;
}

async function s3Sources(s3: S3Client, bucket: string, prefix: string): Promise<Source[]> {
  const out: Source[] = [];
  let token: string | undefined;
  try {
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const obj of page.Contents ?? []) {
        if (obj.Key === undefined || obj.Key.endsWith('/')) continue;
        const key = obj.Key;
        out.push({
          name: `s3://${bucket}/${key}`,
          size: obj.Size ?? 0,
          open: async () => {
            const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
            return res.Body as Readable;
          },
        });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  } catch (err) {
    if (err instanceof NoSuchBucket || (err as { name?: string }).name === 'NoSuchBucket') {
      throw new UsageError(`no such bucket: ${bucket}`);
    }
    if (isUnreachable(err)) {
      throw new UnreachableError(`cannot reach S3 for s3://${bucket}/${prefix}: ${oneLine(err)}`);
    }
    throw new UsageError(`cannot list s3://${bucket}/${prefix}: ${oneLine(err)}`);
  }
  return out;
}

/**
 * Resolves every input to its sources, in input order (directories sorted
 * by name). Fails before anything is read when a path does not exist.
 *
 * @param s3 builds the S3 client on first use (only when an input is an S3 URL)
 */
export async function resolveInputs(inputs: string[], s3: () => S3Client): Promise<Source[]> {
  const groups: Source[][] = [];
  for (const input of inputs) {
    const url = parseS3Url(input);
    groups.push(
      url === null ? await localSources(input) : await s3Sources(s3(), url.bucket, url.prefix),
    );
  }
  return groups.flat();
}

/**
 * Object keys per source: S3 event notifications (form encoding, AWS
 * documented) and the stack's EventBridge messages (undocumented: candidate
 * decodings in order).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseS3EventBody } from '../../lambda/ingest/ingest';
import { EVENTBRIDGE_SOURCE, eventKeyCandidates } from '../../lambda/ingest/keys';
import { encodeEventKey } from '../../local/cloud';

/** Keys with a space, `+`, `%` and non-ASCII characters, and plain ones. */
const KEYS = [
  'AWSLogs/a b.gz',
  'AWSLogs/a+b.gz',
  'AWSLogs/100%.gz',
  'AWSLogs/%41.gz',
  'AWSLogs/grüße 日本.gz',
  'AWSLogs/c d+e%f ü.gz',
  'AWSLogs/E2EXAMPLE.2024-05-01-10.abcd1234.gz',
];

const percent = (key: string) => key.split('/').map(encodeURIComponent).join('/');

describe('eventKeyCandidates', () => {
  it('decodes an S3 notification key exactly once, the documented way', () => {
    for (const key of KEYS) {
      expect(eventKeyCandidates(encodeEventKey(key), 'aws:s3'), key).toEqual([key]);
    }
    // `+` is a space there, a literal plus is %2B.
    expect(eventKeyCandidates('a+b%2Bc', 'aws:s3')).toEqual(['a b+c']);
  });

  it('keeps a plus as a plus in an EventBridge key, and tries the other readings after', () => {
    expect(eventKeyCandidates('AWSLogs/a+b.gz', EVENTBRIDGE_SOURCE)).toEqual([
      'AWSLogs/a+b.gz',
      'AWSLogs/a b.gz',
    ]);
    expect(eventKeyCandidates('AWSLogs/a b.gz', EVENTBRIDGE_SOURCE)).toEqual(['AWSLogs/a b.gz']);
  });

  it('reads a raw EventBridge key with a percent sign that is no escape', () => {
    expect(eventKeyCandidates('AWSLogs/100%.gz', EVENTBRIDGE_SOURCE)).toEqual(['AWSLogs/100%.gz']);
    // %41 could be an escape of "A" or the three characters themselves.
    expect(eventKeyCandidates('AWSLogs/%41.gz', EVENTBRIDGE_SOURCE)).toEqual([
      'AWSLogs/A.gz',
      'AWSLogs/%41.gz',
    ]);
  });

  it('finds every key among the candidates of each way S3 might write it in EventBridge', () => {
    for (const key of KEYS) {
      for (const carried of [key, percent(key), encodeEventKey(key)]) {
        expect(eventKeyCandidates(carried, EVENTBRIDGE_SOURCE), carried).toContain(key);
      }
    }
  });

  it('holds any key among the candidates of its raw, percent and form encodings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1 }), (key) => {
        for (const carried of [key, percent(key), encodeEventKey(key)]) {
          expect(eventKeyCandidates(carried, EVENTBRIDGE_SOURCE)).toContain(key);
        }
        expect(eventKeyCandidates(encodeEventKey(key), 'aws:s3')).toEqual([key]);
      }),
    );
  });

  it('has no candidate for an S3 notification key that is not URL-encoded', () => {
    expect(eventKeyCandidates('100%.gz', 'aws:s3')).toEqual([]);
  });
});

describe('parseS3EventBody per source', () => {
  const body = (eventSource: string, key: string) =>
    JSON.stringify({
      Records: [
        {
          eventSource,
          eventName: 'ObjectCreated:PutObject',
          s3: { bucket: { name: 'b' }, object: { key, eTag: 'e1', size: 3 } },
        },
      ],
    });

  it('reads an EventBridge key with its alternates', () => {
    expect(parseS3EventBody(body(EVENTBRIDGE_SOURCE, 'AWSLogs/a+b.gz'))).toEqual([
      {
        bucket: 'b',
        key: 'AWSLogs/a+b.gz',
        alternateKeys: ['AWSLogs/a b.gz'],
        etag: 'e1',
        size: 3,
      },
    ]);
  });

  it('reads an S3 notification key as documented, with no alternates', () => {
    expect(parseS3EventBody(body('aws:s3', 'AWSLogs/a+b.gz'))).toEqual([
      { bucket: 'b', key: 'AWSLogs/a b.gz', etag: 'e1', size: 3 },
    ]);
  });

  it('refuses an S3 notification key that is not URL-encoded', () => {
    expect(() => parseS3EventBody(body('aws:s3', '100%.gz'))).toThrow(/not URL-encoded/);
  });
});

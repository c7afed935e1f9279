import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatMinute, minuteFromDateTime, minuteFromIso } from '../../lambda/core/formats/time';

function iso(s: string): number {
  const b = Buffer.from(s);
  return minuteFromIso(b, 0, b.length);
}

describe('minuteFromIso', () => {
  it('returns the floored epoch minute when the timestamp has a fraction', () => {
    expect(iso('2018-07-02T22:23:00.186641Z')).toBe(Date.UTC(2018, 6, 2, 22, 23) / 60000);
  });
  it('returns the minute when the timestamp has no fraction', () => {
    expect(iso('2024-02-29T23:59:59Z')).toBe(Date.UTC(2024, 1, 29, 23, 59) / 60000);
  });
  it('returns -1 when the date or time is invalid', () => {
    for (const bad of [
      '2023-02-29T00:00:00Z',
      '2018-13-02T22:23:00Z',
      '2018-07-02T24:00:00Z',
      '2018-07-02 22:23:00Z',
      '2018-07-02T22:23:00',
      '2018-07-02T22:23:00.Z',
      '-',
      '2018-07-02T22:23:0a.1Z',
    ]) {
      expect(iso(bad), bad).toBe(-1);
    }
  });
  it('agrees with Date for any instant', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4102444799999 }), (ms) => {
        const text = new Date(ms).toISOString();
        expect(iso(text)).toBe(Math.floor(ms / 60000));
      }),
    );
  });
});

describe('minuteFromDateTime', () => {
  it('returns the minute of CloudFront date and time columns', () => {
    const b = Buffer.from('2019-12-04\t21:02:31');
    expect(minuteFromDateTime(b, 0, 10, 11, 19)).toBe(Date.UTC(2019, 11, 4, 21, 2) / 60000);
  });
  it('returns -1 when a column has the wrong length', () => {
    const b = Buffer.from('2019-12-4\t21:02:31');
    expect(minuteFromDateTime(b, 0, 9, 10, 18)).toBe(-1);
  });
});

describe('formatMinute', () => {
  it('writes the start of the minute without milliseconds', () => {
    expect(formatMinute(Date.UTC(2024, 4, 1, 10, 4) / 60000)).toBe('2024-05-01T10:04:00Z');
  });
});

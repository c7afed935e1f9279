import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../lambda/core/duration';

describe('parseDuration', () => {
  it('returns seconds when the text is an integer and one unit', () => {
    expect(parseDuration('90s')).toBe(90);
    expect(parseDuration('5m')).toBe(300);
    expect(parseDuration('4h')).toBe(14_400);
    expect(parseDuration('7d')).toBe(604_800);
    expect(parseDuration('1s')).toBe(1);
  });

  it('returns null when the text is anything else', () => {
    for (const bad of [
      '',
      '0s',
      '0m',
      '-5m',
      '+5m',
      '5',
      'm',
      '5 m',
      ' 5m',
      '5m ',
      '5M',
      '1.5h',
      '05m',
      '1h30m',
      '5w',
      '4 hours',
      '99999999999d',
    ]) {
      expect(parseDuration(bad), bad).toBeNull();
    }
  });
});

describe('formatDuration', () => {
  it('returns the largest unit that divides the seconds exactly', () => {
    expect(formatDuration(5400)).toBe('90m');
    expect(formatDuration(14_400)).toBe('4h');
    expect(formatDuration(86_400)).toBe('1d');
    expect(formatDuration(604_800)).toBe('7d');
    expect(formatDuration(90_000)).toBe('25h');
    expect(formatDuration(90)).toBe('90s');
    expect(formatDuration(0)).toBe('0s');
  });

  it('throws RangeError when the seconds are negative or fractional', () => {
    expect(() => formatDuration(-1)).toThrow(RangeError);
    expect(() => formatDuration(1.5)).toThrow(RangeError);
  });

  it('round-trips through parseDuration for any positive number of seconds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e9 }), (seconds) => {
        expect(parseDuration(formatDuration(seconds))).toBe(seconds);
      }),
    );
  });
});

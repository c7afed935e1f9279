import { describe, expect, it } from 'vitest';
import { mintToken, TOKEN_TTL_SECONDS, TokenError, verifyToken } from '../../lambda/widget/token';

const KEY = Buffer.alloc(32, 7);
const CLAIM = { action: 'unblock', target: '192.0.2.7', dashboard: 'd', widget: 'w' } as const;
const T = Date.UTC(2024, 4, 1, 10, 0, 0);

describe('action tokens', () => {
  it('verify for the claim they were minted for until they expire', () => {
    const token = mintToken(KEY, CLAIM, T);
    expect(token).toMatch(/^v1\.\d+\.[A-Za-z0-9_-]{43}$/);
    expect(() => verifyToken(KEY, token, CLAIM, T + (TOKEN_TTL_SECONDS - 1) * 1000)).not.toThrow();
    expect(() => verifyToken(KEY, token, CLAIM, T + TOKEN_TTL_SECONDS * 1000)).toThrow(/too old/);
  });

  it('do not verify for any other field of the claim, another key, or a changed expiry', () => {
    const token = mintToken(KEY, CLAIM, T);
    for (const other of [
      { ...CLAIM, action: 'block' as const },
      { ...CLAIM, target: '192.0.2.8' },
      { ...CLAIM, dashboard: 'e' },
      { ...CLAIM, widget: 'x' },
      // A field boundary moved: the same characters, split differently.
      { ...CLAIM, dashboard: 'd\nw', widget: '' },
    ]) {
      expect(() => verifyToken(KEY, token, other, T), JSON.stringify(other)).toThrow(TokenError);
    }
    expect(() => verifyToken(Buffer.alloc(32, 8), token, CLAIM, T)).toThrow(/not valid/);
    const [, exp, sig] = token.split('.');
    expect(() => verifyToken(KEY, `v1.${Number(exp) + 3600}.${sig}`, CLAIM, T)).toThrow(
      /not valid/,
    );
    for (const bad of [undefined, 42, '', 'v2.1.abc', `v1.${exp}.${sig}x`]) {
      expect(() => verifyToken(KEY, bad, CLAIM, T)).toThrow(TokenError);
    }
  });

  it('refuses a key shorter than 32 bytes', () => {
    expect(() => mintToken(Buffer.alloc(16), CLAIM, T)).toThrow(/at least 32 bytes, got 16/);
  });
});

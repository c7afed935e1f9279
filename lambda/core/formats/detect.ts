/**
 * Format detection by content, never by file name (DESIGN section 2).
 *
 * The scanner shows the detector the first {@link DETECT_LINES} non-comment
 * lines of a file (and any `#Fields` header among them). Each line votes for
 * the format its *structure* shows: a row with an invalid client address
 * still votes, and is rejected later by the parser. The format with most
 * votes wins; when more lines fit no format than fit the winner, or the
 * winner carries no HTTP requests, the file is skipped with a reason.
 */
import type { FieldNeeds, LineParser, LogFormat } from '../types';
import { classifyElbFamilyLine, createAlbParser } from './alb';
import {
  type CloudFrontLayout,
  createCloudFrontParser,
  isCloudFrontRow,
  LEGACY_LAYOUT,
} from './cloudfront';
import { createCloudFrontJsonParser, jsonLineShape } from './cloudfront-json';
import { createElbParser } from './elb';

/** How many non-comment lines decide a file's format. */
export const DETECT_LINES = 8;

/** Why a file is skipped (`FileScan.skipped`). */
export const SKIP_REASON = {
  notLog: 'not an access log',
  empty: 'empty file',
  nlbTls: 'NLB TLS log: no HTTP requests',
  albConnection: 'ALB connection log: no HTTP requests',
  jsonClientIp: 'JSON lines lack c-ip',
  jsonTime: 'JSON lines lack a time',
} as const;

/** What one line's structure shows. */
export type LineKind = LogFormat | 'nlb-tls' | 'alb-connection';

/** Tie-break order of the votes. */
const KINDS: readonly LineKind[] = [
  'cloudfront',
  'cloudfront-json',
  'alb',
  'elb',
  'nlb-tls',
  'alb-connection',
];

const OPEN_BRACE = 123;
const SPACE = 32;
const TAB = 9;

/** The outcome of detection. */
export type Detection = { format: LogFormat; skipped: null } | { format: null; skipped: string };

/**
 * Collects the votes of a file's first lines.
 *
 * @example
 * const detector = new FormatDetector();
 * for (const line of firstLines) detector.classify(line, 0, line.length);
 * const { format, skipped } = detector.decide();
 */
export class FormatDetector {
  /** Columns CloudFront rows are read with: the last `#Fields` header seen, else legacy. */
  layout: CloudFrontLayout = LEGACY_LAYOUT;
  /** A readable `#Fields` header was seen. */
  sawFields = false;
  private readonly votes = new Map<LineKind | null, number>();
  private total = 0;
  private jsonClientIp = false;
  private jsonTime = false;

  /** Number of lines classified so far. */
  get count(): number {
    return this.total;
  }

  /** Uses a `#Fields` header's columns for the rows that follow it. */
  setLayout(layout: CloudFrontLayout): void {
    this.layout = layout;
    this.sawFields = true;
  }

  /** Classifies one non-comment line and records its vote. */
  classify(buf: Buffer, start: number, end: number): LineKind | null {
    const kind = this.kindOf(buf, start, end);
    this.vote(kind);
    return kind;
  }

  /** Records a line that fits no format (a line the splitter rejected). */
  vote(kind: LineKind | null): void {
    this.votes.set(kind, (this.votes.get(kind) ?? 0) + 1);
    this.total++;
  }

  /** The format of the file, or why it is skipped. */
  decide(): Detection {
    if (this.total === 0) {
      return this.sawFields
        ? { format: 'cloudfront', skipped: null }
        : { format: null, skipped: SKIP_REASON.empty };
    }
    let best: LineKind | null = null;
    let bestVotes = 0;
    for (const kind of KINDS) {
      const n = this.votes.get(kind) ?? 0;
      if (n > bestVotes) {
        best = kind;
        bestVotes = n;
      }
    }
    if (best === null || (this.votes.get(null) ?? 0) > bestVotes) {
      return { format: null, skipped: SKIP_REASON.notLog };
    }
    switch (best) {
      case 'nlb-tls':
        return { format: null, skipped: SKIP_REASON.nlbTls };
      case 'alb-connection':
        return { format: null, skipped: SKIP_REASON.albConnection };
      case 'cloudfront-json':
        if (!this.jsonClientIp) return { format: null, skipped: SKIP_REASON.jsonClientIp };
        if (!this.jsonTime) return { format: null, skipped: SKIP_REASON.jsonTime };
        return { format: best, skipped: null };
      default:
        return { format: best, skipped: null };
    }
  }

  private kindOf(buf: Buffer, start: number, end: number): LineKind | null {
    let p = start;
    while (p < end && (buf[p] === SPACE || buf[p] === TAB)) p++;
    if (buf[p] === OPEN_BRACE) {
      const shape = jsonLineShape(buf, start, end);
      if (shape === null || !shape.cloudfront) return null;
      if (shape.hasClientIp) this.jsonClientIp = true;
      if (shape.hasTime) this.jsonTime = true;
      return 'cloudfront-json';
    }
    if (isCloudFrontRow(buf, start, end, this.layout)) return 'cloudfront';
    return classifyElbFamilyLine(buf, start, end);
  }
}

/**
 * Builds the line parser of a detected format.
 *
 * @param format the detected format
 * @param needs which optional fields the rules need decoded
 * @param layout CloudFront W3C columns to start with
 * @default layout - {@link LEGACY_LAYOUT}
 */
export function createParser(
  format: LogFormat,
  needs: FieldNeeds,
  layout: CloudFrontLayout = LEGACY_LAYOUT,
): LineParser {
  switch (format) {
    case 'cloudfront':
      return createCloudFrontParser(needs, layout);
    case 'cloudfront-json':
      return createCloudFrontJsonParser(needs);
    case 'alb':
      return createAlbParser(needs);
    case 'elb':
      return createElbParser(needs);
  }
}

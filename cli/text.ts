/**
 * Human output of the CLI: short summaries and aligned tables.
 */
import Table from 'cli-table3';
import type { ReplayDocument } from './replay';

/** A borderless, aligned table. */
export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({
    head,
    chars: {
      top: '',
      'top-mid': '',
      'top-left': '',
      'top-right': '',
      bottom: '',
      'bottom-mid': '',
      'bottom-left': '',
      'bottom-right': '',
      left: '',
      'left-mid': '',
      mid: '',
      'mid-mid': '',
      right: '',
      'right-mid': '',
      middle: '  ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const row of rows) t.push(row.map(String));
  return t
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
}

/** The text form of a replay: summary, problems, clients, decisions. */
export function renderReplayText(doc: ReplayDocument): string {
  const s = doc.summary;
  const parts: string[] = [];
  parts.push(
    `${s.files} files, ${s.lines} lines: ${s.requests} requests, ${s.rejected} rejected; ` +
      `${s.skippedFiles} skipped files, ${s.damagedFiles} damaged files`,
  );
  if (doc.problems.length > 0) {
    parts.push(
      `\nProblems\n${table(
        ['file', 'kind', 'count', 'reason'],
        doc.problems.map((p) => [p.file, p.kind, p.count ?? '', p.reason]),
      )}`,
    );
  }
  if (doc.clients !== undefined) {
    parts.push(
      `\nClients\n${table(
        ['client', 'requests'],
        doc.clients.map((c) => [c.ip, c.requests]),
      )}`,
    );
  }
  if (doc.decisions.length === 0) {
    parts.push('\nNo decisions: no key exceeded a rule.');
  } else {
    parts.push(
      `\nDecisions (${doc.decisions.length})\n${table(
        ['key', 'rule', 'peak', 'first exceeded', 'blocked until', 'offences'],
        doc.decisions.map((d) => [
          d.key,
          d.rule,
          d.peak,
          d.firstExceeded,
          d.blockedUntil,
          d.offences,
        ]),
      )}`,
    );
  }
  return `${parts.join('\n')}\n`;
}

/**
 * The replay progress bar on stderr (only when stderr is a terminal).
 */
import { Presets, SingleBar } from 'cli-progress';
import type { ReplayProgress } from './replay';

/** A progress bar over bytes read, with objects done, throughput and lines per second. */
export function createProgress(): ReplayProgress {
  const bar = new SingleBar(
    {
      stream: process.stderr,
      format:
        'replay |{bar}| {percentage}% | {files} objects | {mb} MB, {rate} MB/s | {lps} lines/s',
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    Presets.shades_classic,
  );
  let bytes = 0;
  let files = 0;
  let lines = 0;
  let total = 0;
  const started = Date.now();
  const payload = () => {
    const seconds = Math.max(0.001, (Date.now() - started) / 1000);
    return {
      files: `${files}/${total}`,
      mb: (bytes / 1e6).toFixed(1),
      rate: (bytes / 1e6 / seconds).toFixed(1),
      lps: Math.round(lines / seconds).toLocaleString('en-US'),
    };
  };
  return {
    start(totalBytes, fileCount) {
      total = fileCount;
      bar.start(Math.max(1, totalBytes), 0, payload());
    },
    bytes(n) {
      bytes += n;
      bar.update(bytes, payload());
    },
    file(done, linesSoFar) {
      files = done;
      lines = linesSoFar;
      bar.update(bytes, payload());
    },
    lines(total) {
      lines = total;
      bar.update(bytes, payload());
    },
    stop() {
      bar.stop();
    },
  };
}

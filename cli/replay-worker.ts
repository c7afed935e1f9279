/**
 * A replay worker thread (started by `replay-workers.ts`): scans the local
 * files it is sent into its own engine and, when told it is done, sends
 * the engine's counts back as plain data.
 */
import { createReadStream } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { Engine } from '../lambda/core/engine';
import { fileCounter } from './file-counter';
import type { FromWorker, ToWorker, WorkerSetup } from './replay-workers';

const port = parentPort;
if (port === null) throw new Error('replay-worker runs only as a worker thread');
const { config, range } = workerData as WorkerSetup;
const engine = new Engine(config);
const counter = fileCounter(engine, range);

port.on('message', (msg: ToWorker) => {
  if ('done' in msg) {
    const state = engine.state();
    const arrays = [
      state.requests,
      ...state.rules.flatMap((r) => [r.offsets, r.minutes, r.counts]),
    ];
    port.postMessage(
      { state } satisfies FromWorker,
      arrays.map((a) => a.buffer as ArrayBuffer),
    );
    port.close();
    return;
  }
  counter(createReadStream(msg.path, { highWaterMark: 256 * 1024 })).then(
    (counted) => port.postMessage({ index: msg.index, counted } satisfies FromWorker),
    (err: unknown) => {
      throw err;
    },
  );
});

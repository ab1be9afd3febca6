/**
 * The per-reader key agreements of one envelope (RFC 5753 §3.1.1: a fresh ephemeral P-256 key and
 * ECDH with the reader's static key, Z = the shared x-coordinate), shared between the calling
 * thread and one helper thread, so that sealing to many readers uses both cores (issue 15
 * Benchmark). Each agreement is node:crypto's createECDH, the same call on either thread.
 *
 * How the work is shared: the readers' points go into a SharedArrayBuffer with one claim counter;
 * the helper starts claiming as soon as the job is posted, the caller joins after its own work
 * (the content encryption), and both take the next unclaimed reader until none is left. A reader
 * the helper claimed but has not finished within HELPER_GRACE_MS (the thread was descheduled) is
 * taken back and done here, so a busy machine costs at most that grace, never a wrong result.
 * Results pass through the shared buffer, which is zeroed before {@link KeyAgreements.finish}
 * returns. The helper starts on first use, serves only once it is online and never keeps the
 * process alive (unref); if it cannot start, everything runs on the calling thread.
 */
import { createECDH } from "node:crypto";
import { Worker } from "node:worker_threads";

/** One reader's agreement: the ephemeral public point (04‖X‖Y) for originatorKey, and Z. */
export interface KeyAgreement {
  ephemeralPoint: Buffer;
  z: Buffer;
}

/** Agreements started for a list of readers; {@link finish} completes them on this thread. */
export interface KeyAgreements {
  finish(): KeyAgreement[];
}

/**
 * The helper is asked when it can overlap something: two readers or more, or one reader while this
 * thread encrypts at least this many octets (AES-GCM of 64 KiB takes about a fifth of an agreement).
 */
export const HELPER_MIN_SIDE_WORK_BYTES = 1 << 16;
const HELPER_GRACE_MS = 2;
const POINT_BYTES = 65;
const Z_BYTES = 32;
/** Per reader: its point in, the ephemeral point and Z out. */
const SLOT_BYTES = POINT_BYTES + POINT_BYTES + Z_BYTES;
/** Slot states (Int32 per reader, after the claim counter). */
const CLAIMED = 0;
const WRITING = 1;
const DONE = 2;
const FAILED = 3;
const TAKEN_BACK = 4;

/** One agreement as the envelope does it (also the benchmark's baseline call sequence). */
export function agreeKey(readerPoint: Uint8Array): KeyAgreement {
  const ephemeral = createECDH("prime256v1");
  const ephemeralPoint = ephemeral.generateKeys();
  return { ephemeralPoint, z: ephemeral.computeSecret(readerPoint) };
}

/*
 * The helper's program (CommonJS, run with eval: no TypeScript loader is needed in the thread).
 * For each posted job: claim the next reader, agree, and publish the result only if the caller has
 * not taken the reader back (compare-and-exchange CLAIMED → WRITING).
 */
const HELPER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { createECDH } = require("node:crypto");
Atomics.store(new Int32Array(workerData), 0, 1); // online
parentPort.on("message", ({ buffer, count }) => {
  const control = new Int32Array(buffer, 0, 1 + count);
  const bytes = new Uint8Array(buffer, 4 * (1 + count));
  for (let i; (i = Atomics.add(control, 0, 1)) < count; ) {
    const at = i * ${SLOT_BYTES};
    let state = ${FAILED}, ephemeralPoint, z;
    try {
      const ephemeral = createECDH("prime256v1");
      ephemeralPoint = ephemeral.generateKeys();
      z = ephemeral.computeSecret(bytes.subarray(at, at + ${POINT_BYTES}));
      state = ${DONE};
    } catch {}
    if (Atomics.compareExchange(control, 1 + i, ${CLAIMED}, ${WRITING}) === ${CLAIMED}) {
      if (state === ${DONE}) { bytes.set(ephemeralPoint, at + ${POINT_BYTES}); bytes.set(z, at + ${2 * POINT_BYTES}); }
      Atomics.store(control, 1 + i, state);
      Atomics.notify(control, 1 + i);
    }
    if (z) z.fill(0);
  }
});`;

let helper: { thread: Worker; online: Int32Array } | undefined;
let helperBroken = false;

/**
 * The helper thread once it runs; starts it on first call. "Online" is a flag the thread sets in
 * shared memory, not the 'online' event: a caller sealing in a loop may not return to the event loop.
 */
function onlineHelper(): Worker | undefined {
  if (helperBroken) return undefined;
  if (!helper) {
    try {
      const online = new Int32Array(new SharedArrayBuffer(4));
      const thread = new Worker(HELPER_SOURCE, { eval: true, workerData: online.buffer });
      thread.unref();
      thread.once("error", () => {
        helperBroken = true;
        Atomics.store(online, 0, 0);
      });
      thread.once("exit", () => {
        helper = undefined;
        Atomics.store(online, 0, 0);
      });
      helper = { thread, online };
    } catch {
      helperBroken = true;
      return undefined;
    }
  }
  return Atomics.load(helper.online, 0) === 1 ? helper.thread : undefined;
}

/**
 * Starts the agreements for `readerPoints` (uncompressed P-256 points). When the helper thread is
 * online, allowed (`helper`, default true) and has something to overlap (two readers or more, or
 * `sideWorkBytes` of content this thread encrypts meanwhile, at least
 * {@link HELPER_MIN_SIDE_WORK_BYTES}), it begins at once; the rest is done by {@link KeyAgreements.finish}.
 */
export function startKeyAgreements(readerPoints: readonly Uint8Array[], opts: { sideWorkBytes?: number; helper?: boolean } = {}): KeyAgreements {
  const count = readerPoints.length;
  const worthIt = count >= 2 || (count === 1 && (opts.sideWorkBytes ?? 0) >= HELPER_MIN_SIDE_WORK_BYTES);
  const thread = opts.helper !== false && worthIt && readerPoints.every((p) => p.length === POINT_BYTES) ? onlineHelper() : undefined;
  if (!thread) return { finish: () => readerPoints.map(agreeKey) };
  const buffer = new SharedArrayBuffer(4 * (1 + count) + count * SLOT_BYTES);
  const control = new Int32Array(buffer, 0, 1 + count);
  const bytes = new Uint8Array(buffer, 4 * (1 + count));
  readerPoints.forEach((p, i) => bytes.set(p, i * SLOT_BYTES));
  thread.postMessage({ buffer, count });
  return { finish: () => finishShared(readerPoints, control, bytes) };
}

function finishShared(readerPoints: readonly Uint8Array[], control: Int32Array, bytes: Uint8Array): KeyAgreement[] {
  const count = readerPoints.length;
  const results: (KeyAgreement | undefined)[] = new Array(count);
  try {
    for (let i; (i = Atomics.add(control, 0, 1)) < count; ) results[i] = agreeKey(readerPoints[i]);
    for (let i = 0; i < count; i++) {
      if (results[i]) continue;
      // Claimed by the helper: wait for it, or take the reader back after the grace period.
      if (Atomics.load(control, 1 + i) === CLAIMED) Atomics.wait(control, 1 + i, CLAIMED, HELPER_GRACE_MS);
      if (Atomics.compareExchange(control, 1 + i, CLAIMED, TAKEN_BACK) === CLAIMED) {
        results[i] = agreeKey(readerPoints[i]);
        continue;
      }
      while (Atomics.load(control, 1 + i) === WRITING) Atomics.wait(control, 1 + i, WRITING, HELPER_GRACE_MS);
      if (Atomics.load(control, 1 + i) !== DONE) {
        results[i] = agreeKey(readerPoints[i]); // the helper failed: fail (or succeed) here, with node's own error
        continue;
      }
      const at = i * SLOT_BYTES;
      results[i] = {
        ephemeralPoint: Buffer.from(bytes.subarray(at + POINT_BYTES, at + 2 * POINT_BYTES)),
        z: Buffer.from(bytes.subarray(at + 2 * POINT_BYTES, at + SLOT_BYTES)),
      };
    }
  } finally {
    bytes.fill(0);
  }
  return results as KeyAgreement[];
}

/** Whether the helper thread runs (started if need be): lets tests and the benchmark wait for it. */
export function keyAgreementHelperOnline(): boolean {
  return onlineHelper() !== undefined;
}

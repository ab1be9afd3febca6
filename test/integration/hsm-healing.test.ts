/**
 * Healing: a signer loop keeps running while the module is re-initialised, while pooled sessions
 * are closed behind the pool's back, and while the token is logged out — no restart, every
 * signature valid.
 */
import { createPublicKey, verify } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CaKeyStore, type HsmKeyRef } from "../../src/hsm/ca-keys.ts";
import { openTempToken, type TempToken } from "./helpers/softhsm.ts";

let t: TempToken;
let store: CaKeyStore;
let rsa: HsmKeyRef;
let ec: HsmKeyRef;

beforeAll(async () => {
  t = openTempToken({ poolSize: 4 });
  store = new CaKeyStore(t.pool);
  rsa = await store.generateKeyPair("heal-rsa", "RSA-2048");
  ec = await store.generateKeyPair("heal-ec", "P-256");
});
afterAll(() => t?.close());

/** Runs `workers` sign loops until stop(); counts valid and failed signatures. */
function signerLoop(workers: number) {
  let running = true;
  const result = { ok: 0, invalid: 0, errors: [] as unknown[] };
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; running; i++) {
      const key = (w + i) % 2 ? rsa : ec;
      const data = Buffer.from(`w${w}-i${i}`);
      try {
        const sig = await store.sign(key, data);
        if (verify("sha256", data, createPublicKey({ key: key.spki, format: "der", type: "spki" }), sig)) result.ok++;
        else result.invalid++;
      } catch (e) {
        result.errors.push(e);
      }
    }
  });
  return {
    result,
    async stop() {
      running = false;
      await Promise.all(loops);
      return result;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Stops the loop and asserts that every signature was valid and no error reached the caller. */
async function stopClean(loop: ReturnType<typeof signerLoop>) {
  const r = await loop.stop();
  expect(r.errors).toEqual([]);
  expect(r.invalid).toBe(0);
  return r;
}

/** Waits until the loop has made `n` more valid signatures (proof it is still signing). */
async function progress(loop: ReturnType<typeof signerLoop>, n: number): Promise<void> {
  const target = loop.result.ok + n;
  const deadline = Date.now() + 20_000;
  while (loop.result.ok < target) {
    if (Date.now() > deadline) throw new Error(`signer stalled at ${loop.result.ok}, errors: ${loop.result.errors.map(String).join("; ")}`);
    await sleep(5);
  }
}

describe("SessionPool healing under a running signer loop", () => {
  it("survives repeated mod.reinitialize()", async () => {
    const loop = signerLoop(6);
    await progress(loop, 50);
    const gen0 = t.mod.generation;
    const opened0 = t.pool.stats.opened;
    for (let k = 0; k < 5; k++) {
      // Signs are in flight here, so the re-initialisation is queued until they finish.
      t.mod.reinitialize();
      await progress(loop, 30);
    }
    const r = await stopClean(loop);
    expect(t.mod.generation).toBe(gen0 + 5);
    // Every re-initialisation killed all sessions: the pool reopened them.
    expect(t.pool.stats.opened - opened0).toBeGreaterThanOrEqual(5);
    expect(r.ok).toBeGreaterThan(200);
  });

  it("survives sessions closed behind the pool's back (CKR_SESSION_HANDLE_INVALID)", async () => {
    const loop = signerLoop(6);
    await progress(loop, 50);
    const retries0 = t.pool.stats.retries;
    for (let k = 0; k < 8; k++) {
      // The op closes its own session's handle: the pool does not know until the next use fails.
      await t.pool.run((s) => s.lib.C_CloseSession(s.handle));
      await progress(loop, 20);
    }
    const r = await stopClean(loop);
    expect(t.pool.stats.retries).toBeGreaterThan(retries0);
  });

  it("survives a module hiccup behind its back (raw C_Finalize + C_Initialize, generation unchanged)", async () => {
    const loop = signerLoop(6);
    await progress(loop, 50);
    const retries0 = t.pool.stats.retries;
    for (let k = 0; k < 3; k++) {
      // exclusive(): no native call in flight, so this is a hiccup, not a use-after-free.
      await t.mod.exclusive(() => {
        t.mod.lib.C_Finalize();
        t.mod.lib.C_Initialize({ flags: 2 /* CKF_OS_LOCKING_OK */ });
      });
      await progress(loop, 30);
    }
    const r = await stopClean(loop);
    expect(t.pool.stats.retries).toBeGreaterThan(retries0);
  });

  it("survives a logout of the token (CKR_USER_NOT_LOGGED_IN / stale key handles)", async () => {
    const loop = signerLoop(6);
    await progress(loop, 50);
    // C_Logout while another thread is in C_Sign deadlocks SoftHSM 2.6.1 (main thread blocked for
    // good), so log out between operations: exclusive() waits until none is in flight.
    let session: Parameters<Parameters<typeof t.pool.run>[0]>[0] | undefined;
    await t.pool.run((s) => {
      session = s;
    });
    await t.mod.exclusive(() => session!.logout());
    await progress(loop, 50);
    const r = await stopClean(loop);
  });

  it("survives C_Finalize with no re-initialise (CKR_CRYPTOKI_NOT_INITIALIZED → pool re-initialises)", async () => {
    const gen0 = t.mod.generation;
    await t.mod.exclusive(() => t.mod.lib.C_Finalize());
    const sig = await store.sign(rsa, Buffer.from("after finalize"));
    expect(verify("sha256", Buffer.from("after finalize"), createPublicKey({ key: rsa.spki, format: "der", type: "spki" }), sig)).toBe(true);
    expect(t.mod.generation).toBe(gen0 + 1);
    expect(t.pool.stats.reinitializations).toBeGreaterThan(0);
  });
});

/**
 * The session pool when its token's directory is moved away and back (SoftHSM2): a missing key is
 * a token loss, not a lasting "not found"; calls fail at once with TOKEN_UNAVAILABLE while it is
 * away; the background probe brings it back without any call; each transition is heard once; a
 * token on the same module stays usable throughout.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CaKeyStore, type HsmKeyRef } from "../../src/hsm/ca-keys.ts";
import type { TokenTransition } from "../../src/hsm/health.ts";
import { SessionPool } from "../../src/hsm/pool.ts";
import { tokenDirectory } from "../helpers/hsm-faults.ts";
import { openTempToken, type TempToken } from "./helpers/softhsm.ts";

let t: TempToken;
let other: SessionPool;
let store: CaKeyStore;
let otherStore: CaKeyStore;
let key: HsmKeyRef;
let otherKey: HsmKeyRef;
const transitions: TokenTransition[] = [];

beforeAll(async () => {
  t = openTempToken({ label: "loss-ca", poolSize: 2 });
  t.mod.initToken("loss-other", t.soPin, t.pin);
  other = new SessionPool(t.mod, { tokenLabel: "loss-other", pin: t.pin, size: 2 });
  store = new CaKeyStore(t.pool);
  otherStore = new CaKeyStore(other);
  key = await store.generateKeyPair("k", "P-256");
  otherKey = await otherStore.generateKeyPair("k2", "P-256");
  t.pool.health.onTransition((x) => transitions.push(x));
});
afterAll(() => {
  other?.close();
  t?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("SessionPool: token directory moved away and back", { timeout: 120_000 }, () => {
  it("answers TOKEN_UNAVAILABLE while away, comes back by itself, one transition each way", async () => {
    const dir = tokenDirectory(t.hsm.tokenDir, "loss-ca");
    const away = path.join(t.hsm.dir, "away");
    fs.renameSync(dir, away);
    for (let i = 0; i < 6; i++) {
      await expect(store.sign(key, Buffer.from("x"))).rejects.toMatchObject({ code: "TOKEN_UNAVAILABLE", message: expect.stringContaining('HSM token "loss-ca" is unavailable') });
      await expect(store.findKey("k")).rejects.toMatchObject({ code: "TOKEN_UNAVAILABLE" });
      // The other token on the same module keeps signing through the re-initialisations.
      expect((await otherStore.sign(otherKey, Buffer.from("y"))).length).toBeGreaterThan(0);
      await sleep(250);
    }
    expect(t.pool.health.report()).toMatchObject({ token: "loss-ca", state: "degraded", lastError: expect.any(String) });
    expect(t.pool.stats.unavailable).toBeGreaterThanOrEqual(12);
    fs.renameSync(away, dir);
    // No call needed: the probe re-initialises and finds the token again.
    while (t.pool.health.degraded) await sleep(50);
    expect((await store.sign(key, Buffer.from("z"))).length).toBeGreaterThan(0);
    expect(await store.findKey("k")).toMatchObject({ label: "k" });
    expect(transitions.map((x) => x.event)).toEqual(["lost", "restored"]);
    expect(transitions[1].downMs).toBeGreaterThan(0);
  });
});

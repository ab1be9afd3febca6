/**
 * A second process on the same SoftHSM token (SOFTHSM2_CONF from the parent): finds the sealing
 * key by label, opens the value it is given and seals one of its own, and prints one JSON line
 * {keyId, opened, sealed} (base64 for bytes). Arguments: token label, PIN, key label, sealed
 * value (base64), aad of that value, plaintext to seal, aad to seal it with.
 */
import { SOFTHSM2_MODULE } from "../../../src/config.ts";
import { Pkcs11Module } from "../../../src/hsm/module.ts";
import { SessionPool } from "../../../src/hsm/pool.ts";
import { SealingKey } from "../../../src/hsm/sealing-key.ts";

const [tokenLabel, pin, keyLabel, sealedB64, aad, plaintext, sealAad] = process.argv.slice(2);
const mod = Pkcs11Module.open(SOFTHSM2_MODULE);
const pool = new SessionPool(mod, { tokenLabel, pin, size: 1 });
try {
  const key = await SealingKey.find(pool, keyLabel);
  if (!key) throw new Error(`no sealing key "${keyLabel}"`);
  const opened = await key.open(Buffer.from(sealedB64, "base64"), aad);
  const sealed = await key.seal(Buffer.from(plaintext), sealAad);
  process.stdout.write(`${JSON.stringify({ keyId: key.id.toString("hex"), opened: opened.toString("utf8"), sealed: sealed.toString("base64") })}\n`);
} finally {
  pool.close();
  await mod.release();
}

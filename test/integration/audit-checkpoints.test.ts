/**
 * Issue 10 §5: signed audit checkpoints notice records cut from the end of the audit log. The
 * attacker is the database owner: triggers disabled, rows deleted, the head row rewritten, even
 * checkpoints deleted. Checkpoints are CMS SignedData that OpenSSL verifies; the audit key is in
 * the HSM (sensitive, not extractable); the repository publishes them.
 */
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Knex } from "knex";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureAuditSigner, AUDIT_KEY_LABEL } from "../../src/audit/checkpoint-signer.ts";
import { CheckpointRefusedError, maybeSignAuditCheckpoint, signAuditCheckpoint, type StoredCheckpoint } from "../../src/audit/checkpoint.ts";
import { checkCheckpoint, checkHead, checkLatestCheckpoint } from "../../src/audit/checkpoint-verify.ts";
import { appendAudit } from "../../src/audit/log.ts";
import { verifyAuditChain } from "../../src/audit/verify.ts";
import { parseCmsSignedData } from "../../src/pki/cms.ts";
import { toPem } from "../../src/pki/pem.ts";
import { startServer, type StartedServer } from "../../src/cli/role-factories.ts";
import { openCliHarness, type CliHarness } from "../helpers/cli.ts";
import { openTestIa, type TestIa } from "../helpers/ia.ts";

const by = { actor: "test", role: "ia" };

/** Runs `sql` with the append-only triggers of audit_log and audit_checkpoints off, as the database owner can. */
async function asDatabaseOwner(db: Knex, sql: string, bindings: Knex.RawBinding[] = []): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update");
    await trx.raw("ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_no_update");
    await trx.raw(sql, bindings);
    await trx.raw("ALTER TABLE audit_checkpoints ENABLE TRIGGER audit_checkpoints_no_update");
    await trx.raw("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update");
  });
}

async function record(db: Knex, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await db.transaction((trx) => appendAudit(trx, [{ actor: "cli:test", role: "ra", action: "test.recorded", objectType: "test", objectId: String(i) }]));
  }
}

/** `openssl cms -verify` of a DER checkpoint against the pinned signer certificate: [exit code, content or error]. */
function opensslCmsVerify(dir: string, cms: Buffer, signerPem: string): { code: number | null; out: string; err: string } {
  const file = path.join(dir, `cp-${Date.now()}-${Math.random()}.p7m`);
  fs.writeFileSync(file, cms);
  const r = spawnSync("openssl", ["cms", "-verify", "-inform", "DER", "-in", file, "-CAfile", signerPem], { encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("signed audit checkpoints (in process)", { timeout: 180_000 }, () => {
  let ia: TestIa;
  let signerPem: string;
  let server: StartedServer;
  beforeAll(async () => {
    ia = await openTestIa("hpki-audit-cp");
    server = await startServer({ cfg: ia.ctx.cfg, db: ia.ctx.db, roles: ["repo"], port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await ia?.cleanup();
  });

  it("creates the audit key once in the HSM (sensitive, not extractable) with a self-signed certificate OpenSSL accepts", async () => {
    const first = await ensureAuditSigner(ia.ctx.keys);
    const again = await ensureAuditSigner(ia.ctx.keys);
    expect(first.created).toBe(true);
    expect(again.created).toBe(false);
    expect(again.signer.certificate.equals(first.signer.certificate)).toBe(true);
    expect(first.signer.key.label).toBe(AUDIT_KEY_LABEL);
    expect(await ia.ctx.keys.keyAttributes(first.signer.key)).toEqual({ sensitive: true, extractable: false, alwaysSensitive: true, neverExtractable: true });
    signerPem = path.join(ia.work, "audit-signer.pem");
    fs.writeFileSync(signerPem, toPem(first.signer.certificate));
    const v = spawnSync("openssl", ["verify", "-CAfile", signerPem, signerPem], { encoding: "utf8" });
    expect(v.stdout + v.stderr).toContain(": OK");
  });

  it("signs the head as CMS that openssl cms -verify accepts, publishes it, and verify finds it covered", async () => {
    await record(ia.ctx.db, 5);
    const cp = await signAuditCheckpoint(ia.ctx.db, ia.ctx.keys, by);
    const last = await ia.ctx.db("audit_log").where("seq", "<", cp.seq + 1).orderBy("seq", "desc").first("seq", "hash");
    expect(cp.seq).toBe(Number(last.seq));
    expect(cp.hash).toBe(Buffer.from(last.hash).toString("hex"));
    const ossl = opensslCmsVerify(ia.work, cp.cms, signerPem);
    expect(ossl.err).toContain("Verification successful");
    expect(JSON.parse(ossl.out)).toEqual({ type: "hpki-audit-checkpoint", version: 1, seq: cp.seq, hash: cp.hash, signedAt: cp.signedAt.toISOString() });

    // The repository publishes it: latest, by id, listed.
    const latest = await fetch(`${server.url}/audit/checkpoints/latest`);
    expect(latest.status).toBe(200);
    expect(latest.headers.get("content-type")).toContain("application/pkcs7-mime");
    const published = Buffer.from(await latest.arrayBuffer());
    expect(published.equals(cp.cms)).toBe(true);
    expect(opensslCmsVerify(ia.work, published, signerPem).err).toContain("Verification successful");
    const list = (await (await fetch(`${server.url}/audit/checkpoints`)).json()) as { checkpoints: { id: number; seq: number; hash: string; url: string }[] };
    expect(list.checkpoints[0]).toMatchObject({ id: cp.id, seq: cp.seq, hash: cp.hash, url: `/audit/checkpoints/${cp.id}` });
    expect((await fetch(`${server.url}${list.checkpoints[0].url}`)).status).toBe(200);
    expect((await fetch(`${server.url}/audit/checkpoints/999999`)).status).toBe(404);

    const spki = parseSpki(cp);
    expect(await checkLatestCheckpoint(ia.ctx.db, spki)).toMatchObject({ ok: true, signer: "hsm", seq: cp.seq });
    expect((await checkHead(ia.ctx.db)).ok).toBe(true);
    expect((await verifyAuditChain(ia.ctx.db)).ok).toBe(true);
  });

  it("the scheduler's rule: no new checkpoint for nothing new, one after N records", async () => {
    expect(await maybeSignAuditCheckpoint(ia.ctx.db, ia.ctx.keys, by, { everyRecords: 3 })).toBeNull();
    await record(ia.ctx.db, 3);
    expect(await maybeSignAuditCheckpoint(ia.ctx.db, ia.ctx.keys, by, { everyRecords: 3 })).not.toBeNull();
  });

  it("records cut from the end: the head row, the latest checkpoint and an auditor's copy each say so", async () => {
    const db = ia.ctx.db;
    const held = await signAuditCheckpoint(db, ia.ctx.keys, by); // the copy an auditor keeps
    await record(db, 4);
    const later = await signAuditCheckpoint(db, ia.ctx.keys, by);
    const spki = parseSpki(later);

    // 1. Delete everything from the auditor's checkpoint's record on, as the owner: the head row is stale.
    await asDatabaseOwner(db, "DELETE FROM audit_log WHERE seq >= ?", [held.seq]);
    expect((await verifyAuditChain(db)).ok).toBe(true); // the chain alone cannot tell
    const head = await checkHead(db);
    expect(head.ok).toBe(false);
    const latest = await checkLatestCheckpoint(db, spki);
    expect(latest).toMatchObject({ ok: false, problem: "truncated", id: later.id });
    expect(latest!.message).toMatch(/audit log TRUNCATED: checkpoint #\d+ of .* covers records up to seq \d+, but the log ends at seq \d+/);
    expect(latest!.messageJa).toContain("監査ログの末尾が削除されています");
    // Never sign over it.
    await expect(signAuditCheckpoint(db, ia.ctx.keys, by)).rejects.toBeInstanceOf(CheckpointRefusedError);

    // 2. The owner also rewrites the head row: the latest checkpoint still says so.
    await db.raw("UPDATE audit_head SET hash = (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1) WHERE id = 1");
    expect((await checkHead(db)).ok).toBe(true);
    expect(await checkLatestCheckpoint(db, spki)).toMatchObject({ ok: false, problem: "truncated" });

    // 3. ...and deletes the checkpoints that cover the cut: only the auditor's copy still tells.
    await asDatabaseOwner(db, "DELETE FROM audit_checkpoints WHERE id >= ?", [held.id]);
    expect((await checkLatestCheckpoint(db, spki))?.ok ?? true).toBe(true);
    expect(await checkCheckpoint(db, held.cms, "file", spki)).toMatchObject({ ok: false, problem: "truncated", seq: held.seq });
  });

  it("a forged or altered checkpoint is refused", async () => {
    const db = ia.ctx.db;
    const cp = await signAuditCheckpoint(db, ia.ctx.keys, by);
    const spki = parseSpki(cp);
    const altered = Buffer.from(cp.cms);
    // Flip one digit of the signed seq inside the JSON content.
    const at = altered.indexOf(Buffer.from(`"seq":${cp.seq}`));
    altered[at + 6] = altered[at + 6] === 0x31 ? 0x32 : 0x31;
    expect(await checkCheckpoint(db, altered, "file", spki)).toMatchObject({ ok: false, problem: "bad-signature" });
    const otherKey = Buffer.from(spki);
    otherKey[otherKey.length - 1] ^= 1;
    expect(await checkCheckpoint(db, cp.cms, "file", otherKey)).toMatchObject({ ok: false, problem: "foreign-signer" });
  });
});

function parseSpki(cp: StoredCheckpoint): Buffer {
  return new X509Certificate(parseCmsSignedData(cp.cms).certificate).publicKey.export({ type: "spki", format: "der" });
}

describe("hpki audit checkpoint / verify (CLI processes)", { timeout: 300_000 }, () => {
  let cli: CliHarness;
  beforeAll(async () => {
    cli = await openCliHarness("hpki-audit-cp-cli-");
  });
  afterAll(async () => cli?.cleanup());


  it("reports records deleted from the end with exit code 1, from the database's checkpoint and from an auditor's file", async () => {
    const init = cli.hpki("ca", "init", "--ceremony", "policies/ceremony.demo.yaml", "--json");
    expect(init.code, init.err).toBe(0);
    expect(init.json().auditSigner).toMatchObject({ label: AUDIT_KEY_LABEL, created: true });
    const cpFile = path.join(cli.home, "held.p7m");
    const signerPem = path.join(cli.home, "signer.pem");
    const cp = cli.hpki("audit", "checkpoint", "--out", cpFile, "--signer-out", signerPem, "--json");
    expect(cp.code, cp.err).toBe(0);
    const held = cp.json() as { id: number; seq: number };
    const ossl = spawnSync("openssl", ["cms", "-verify", "-inform", "DER", "-in", cpFile, "-CAfile", signerPem], { encoding: "utf8" });
    expect(ossl.stderr).toContain("Verification successful");
    expect(JSON.parse(ossl.stdout)).toMatchObject({ seq: held.seq });

    const imp = cli.hpki("licenses", "import", "policies/demo/licence-register.csv", "--json");
    expect(imp.code, imp.err).toBe(0);
    const ok = cli.hpki("audit", "verify");
    expect(ok.code, ok.out + ok.err).toBe(0);
    expect(ok.out).toMatch(/ok: checkpoint #\d+ of .* \(seq \d+\) is covered by the log/);

    // The database owner cuts the log back to before the checkpoint's record and fixes the head row.
    await cli.withDb(async (db) => {
      await asDatabaseOwner(db, "DELETE FROM audit_log WHERE seq >= ?", [held.seq]);
      await db.raw("UPDATE audit_head SET hash = coalesce((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), decode(repeat('00', 32), 'hex')) WHERE id = 1");
    });
    const cut = cli.hpki("audit", "verify");
    expect(cut.code).toBe(1);
    expect(cut.out).toContain("chain intact"); // the chain alone is fine…
    expect(cut.out).toMatch(/PROBLEM: audit log TRUNCATED: checkpoint #\d+ .* covers records up to seq \d+, but the log ends at seq \d+/);
    expect(cut.out).toContain("監査ログの末尾が削除されています");
    const json = cli.hpki("audit", "verify", "--json");
    expect(json.code).toBe(1);
    expect(json.json()).toMatchObject({ ok: false, chainOk: true, headRow: { ok: true }, checkpoints: [{ source: "database", problem: "truncated", signer: "hsm" }] });

    // ...and deletes the checkpoints: the auditor's file still shows the cut.
    await cli.withDb((db) => asDatabaseOwner(db, "DELETE FROM audit_checkpoints"));
    const hidden = cli.hpki("audit", "verify");
    expect(hidden.code, hidden.out).toBe(0);
    const withFile = cli.hpki("audit", "verify", "--checkpoint", cpFile);
    expect(withFile.code).toBe(1);
    expect(withFile.out).toMatch(/PROBLEM: audit log TRUNCATED: the checkpoint file of .* covers records up to seq/);
  });
});

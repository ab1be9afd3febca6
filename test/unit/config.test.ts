/**
 * The configuration schema (src/config/schema.ts): bad values, half-set groups, unknown HPKI_*
 * names and production URLs are refused with a bilingual message naming the variable; the
 * README's table is the one generated from the schema; the CLI stops at start on a bad value.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { KNOWN_VARIABLES } from "../../src/config/schema.ts";
import { TABLE_END, TABLE_START, configTable } from "../../src/config/table.ts";

const repo = path.resolve(import.meta.dirname, "../..");
/** A home that does not exist yet, unique to this run (a start that passes the check creates it). */
const absentHome = () => path.join(os.tmpdir(), `hpki-absent-home-${process.pid}-${Math.random().toString(36).slice(2)}`);

function refusal(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

describe("configuration schema", () => {
  it("parses a valid environment into typed values", () => {
    const cfg = loadConfig({ HPKI_HOME: "/tmp/h", HPKI_SSO_REFRESH_MS: "5000", HPKI_SSO_OCSP_URLS: "http://a.example/, http://b.example/", HPKI_SSO_OCSP_FALLBACK: "off" });
    expect(cfg.home).toBe("/tmp/h");
    expect(cfg.mode).toBe("demo");
    expect(cfg.repoUrl).toBe("http://localhost:8080");
    expect(cfg.sso).toMatchObject({ refreshMs: 5000, ocspUrls: ["http://a.example/", "http://b.example/"], ocspFallback: false, tls: undefined });
  });

  it.each([["NaN"], ["abc"], ["1.5"], ["1e4"], ["-1"], ["0"]])("refuses HPKI_SSO_REFRESH_MS=%s, naming it in English and Japanese", (v) => {
    const e = refusal({ HPKI_SSO_REFRESH_MS: v });
    expect(e.problems.map((p) => p.variable)).toEqual(["HPKI_SSO_REFRESH_MS"]);
    expect(e.message).toContain(`HPKI_SSO_REFRESH_MS: expected a whole number from 1000 to 86400000 (got "${v}")`);
    expect(e.messageJa).toContain("HPKI_SSO_REFRESH_MS: 1000〜86400000 の整数を指定してください");
  });

  it("refuses a half-set TLS listener, naming what is missing", () => {
    const e = refusal({ HPKI_SSO_TLS_PORT: "8443", HPKI_SSO_TLS_CERT: "/etc/tls/cert.pem" });
    expect(e.message).toContain("HPKI_SSO_TLS_PORT, HPKI_SSO_TLS_CERT set but HPKI_SSO_TLS_KEY not");
    expect(e.messageJa).toContain("HPKI_SSO_TLS_KEY がありません");
    expect(loadConfig({ HPKI_SSO_TLS_PORT: "8443", HPKI_SSO_TLS_CERT: "c.pem", HPKI_SSO_TLS_KEY: "k.pem" }).sso.tls).toEqual({ port: 8443, certFile: "c.pem", keyFile: "k.pem" });
  });

  it("refuses an unknown HPKI_ name (a typo is not ignored), but not other variables", () => {
    const e = refusal({ HPKI_HSM_PINN: "1234", PATH: "/usr/bin" });
    expect(e.problems.map((p) => p.variable)).toEqual(["HPKI_HSM_PINN"]);
    expect(e.message).toContain("HPKI_HSM_PINN: unknown setting");
    expect(e.messageJa).toContain("HPKI_HSM_PINN: 不明な設定です");
  });

  it("never echoes a secret value", () => {
    const e = refusal({ HPKI_SESSION_SECRET: "short-secret-value" });
    expect(e.message).toContain("HPKI_SESSION_SECRET: expected at least 32 characters");
    expect(`${e.message}${e.messageJa}`).not.toContain("short-secret-value");
  });

  it("refuses a NODE_ENV typo rather than silently running in demo mode", () => {
    expect(refusal({ NODE_ENV: "prodution", HPKI_REPO_URL: "https://repo.example.jp" }).problems[0].variable).toBe("NODE_ENV");
  });

  it("production needs a public HPKI_REPO_URL: not unset, localhost, loopback or an IP address", () => {
    expect(refusal({ NODE_ENV: "production" }).message).toContain("HPKI_REPO_URL: required in production");
    for (const u of ["http://localhost:8080", "http://127.0.0.1/", "http://[::1]:8080/", "http://192.0.2.10/repo", "http://repo/"]) {
      const e = refusal({ NODE_ENV: "production", HPKI_REPO_URL: u });
      expect(e.problems.map((p) => p.variable), u).toEqual(["HPKI_REPO_URL"]);
      expect(e.messageJa).toContain("本番モード");
    }
    const cfg = loadConfig({ NODE_ENV: "production", HPKI_REPO_URL: "https://repo.hpki.example.jp/" });
    expect(cfg).toMatchObject({ mode: "production", repoUrl: "https://repo.hpki.example.jp" });
  });

  it("lists every problem at once", () => {
    const e = refusal({ HPKI_SSO_TLS_PORT: "x", DATABASE_URL: "mysql://db", HPKI_TYPO: "1" });
    expect(e.problems.map((p) => p.variable).sort()).toEqual(["DATABASE_URL", "HPKI_SSO_TLS_PORT", "HPKI_TYPO"]);
  });
});

describe("README configuration table", () => {
  it("is the table generated from the schema, with every variable", () => {
    const readme = fs.readFileSync(path.join(repo, "README.md"), "utf8");
    const a = readme.indexOf(TABLE_START);
    const b = readme.indexOf(TABLE_END);
    expect(a, "README has the table markers").toBeGreaterThan(0);
    expect(readme.slice(a + TABLE_START.length, b).trim(), "README table differs from the schema: run npm run docs:config").toBe(configTable());
    for (const name of KNOWN_VARIABLES.keys()) expect(configTable()).toContain(`| \`${name}\` |`);
  });

  it("names every variable the sources read", () => {
    // Any HPKI_* / DATABASE_URL / PKCS11_MODULE literal in src must be a schema entry.
    const names = new Set<string>();
    const walk = (d: string) => {
      for (const f of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, f.name);
        if (f.isDirectory()) walk(p);
        else if (p.endsWith(".ts")) for (const m of fs.readFileSync(p, "utf8").matchAll(/\b(HPKI_[A-Z0-9_]*[A-Z0-9]|DATABASE_URL|PKCS11_MODULE)\b/g)) names.add(m[1]);
      }
    };
    walk(path.join(repo, "src"));
    // Exported constants that merely start with HPKI_ (not variables).
    const constants = ["HPKI_NAME_ATTRIBUTES", "HPKI_POLICY_LABELS"];
    expect([...names].filter((n) => !KNOWN_VARIABLES.has(n) && !constants.includes(n))).toEqual([]);
  });
});

describe("hpki at start", () => {
  it("stops with the bilingual message on a bad value, before running the command", () => {
    const home = absentHome();
    const r = spawnSync(process.execPath, [path.join(repo, "bin/hpki.js"), "ca", "list"], {
      cwd: repo,
      env: { PATH: process.env.PATH, HPKI_HOME: home, HPKI_SSO_MAX_STALENESS_MS: "NaN" },
      encoding: "utf8",
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('hpki: invalid configuration:\n  HPKI_SSO_MAX_STALENESS_MS: expected a whole number from 1000 to 604800000 (got "NaN")');
    expect(r.stderr).toContain("hpki: 設定が正しくありません:\n  HPKI_SSO_MAX_STALENESS_MS: 1000〜604800000 の整数を指定してください");
    expect(fs.existsSync(home)).toBe(false);
  });

  it("hpki config check --json reports the mode", () => {
    const home = absentHome();
    const r = spawnSync(process.execPath, [path.join(repo, "bin/hpki.js"), "config", "check", "--json"], {
      cwd: repo,
      env: { PATH: process.env.PATH, HPKI_HOME: home, NODE_ENV: "production", HPKI_REPO_URL: "https://repo.hpki.example.jp" },
      encoding: "utf8",
    });
    fs.rmSync(home, { recursive: true, force: true }); // the start's home check creates it
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ mode: "production", repoUrl: "https://repo.hpki.example.jp" });
  });
});

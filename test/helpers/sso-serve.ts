/** `hpki serve --role sso` as a child process for tests: its own $HPKI_HOME and embedded SoftHSM. */
import { spawn } from "node:child_process";
import path from "node:path";

const repo = path.resolve(import.meta.dirname, "../..");

/**
 * `hpki serve --role <roles> --port <port> [--workers N] --json` as a child process (default sso on
 * any port, one process); resolves once it listens, with the primary's pid. With SSO_PROF_DIR set
 * (a directory), the child writes a V8 CPU profile there when it stops (`--cpu-prof`: how the
 * benchmark's SSO CPU was broken down).
 */
export function serveSso(env: NodeJS.ProcessEnv, roles = "sso", port = 0, workers = 1): Promise<{ url: string; pid: number; stop(): Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const args = [path.join(repo, "bin/hpki.js"), "serve", "--role", roles, "--port", String(port), ...(workers > 1 ? ["--workers", String(workers)] : []), "--json"];
    const p = spawn(process.execPath, [...(process.env.SSO_PROF_DIR ? ["--cpu-prof", "--cpu-prof-dir=" + process.env.SSO_PROF_DIR] : []), ...args], { cwd: repo, env });
    let out = "";
    let err = "";
    const exited = new Promise<number | null>((r) => p.on("close", (code) => r(code)));
    p.stderr.on("data", (d) => (err += d));
    p.stdout.on("data", (d) => {
      out += d;
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (!line) return;
      const j = JSON.parse(line) as { url?: string; error?: string };
      if (j.url) resolve({ url: j.url, pid: p.pid!, stop: () => (p.kill("SIGTERM"), exited) });
      else reject(new Error(`hpki serve failed: ${line}\n${err}`));
    });
    p.on("error", reject);
    void exited.then((code) => reject(new Error(`hpki serve exited ${code} before listening: ${err}${out}`)));
  });
}

/** Environment for a child on `home`: embedded SoftHSM, the database `url`. */
export function childEnv(home: string, url: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HPKI_HOME: home };
  for (const v of ["PKCS11_MODULE", "HPKI_HSM_PIN", "HPKI_SSO_PIN", "HPKI_SSO_TOKEN", "SOFTHSM2_CONF"]) delete env[v];
  if (url) env.DATABASE_URL = url;
  else delete env.DATABASE_URL;
  return env;
}


/**
 * Debian's nginx as a child process for tests and the OCSP benchmark: its own prefix (a temp
 * directory), its own nginx.conf including the server block `hpki ocsp export` writes
 * (nginxExample), on 127.0.0.1 and a free port, daemon off, logs to stderr. Stopped with stop().
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { nginxExample } from "../../src/ocsp/export.ts";
import type { OcspPolicy } from "../../src/pki/ocsp-policy.ts";

export interface NginxChild {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound and released; nginx binds it right after). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * Starts nginx serving export directory `root` (nginxExample) with `upstream` (the repository URL)
 * behind it. `workers`: worker_processes (default 1). Resolves once it answers HTTP.
 */
export async function startNginx(root: string, policy: OcspPolicy, upstream: string, opts: { workers?: number; accessLog?: boolean } = {}): Promise<NginxChild> {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), "hpki-nginx-"));
  const port = await freePort();
  const server = nginxExample(path.resolve(root), policy, { listen: `127.0.0.1:${port}`, upstream });
  fs.writeFileSync(path.join(prefix, "nginx.conf"), `# test/helpers/nginx.ts
${process.getuid?.() === 0 ? "user root root;" : ""}
worker_processes ${opts.workers ?? 1};
daemon off;
pid ${prefix}/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    access_log ${opts.accessLog ? "/dev/stderr" : "off"};
    client_body_temp_path ${prefix}/client_body;
    proxy_temp_path ${prefix}/proxy;
    fastcgi_temp_path ${prefix}/fastcgi;
    uwsgi_temp_path ${prefix}/uwsgi;
    scgi_temp_path ${prefix}/scgi;
    keepalive_requests 1000000;
${server}
}
`);
  const child: ChildProcess = spawn("nginx", ["-p", prefix, "-c", path.join(prefix, "nginx.conf"), "-e", "stderr"], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited ${child.exitCode}: ${err}`);
    try {
      await fetch(`${url}/nginx-probe`);
      break;
    } catch {
      if (i > 200) throw new Error(`nginx did not answer on ${url}: ${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      fs.rmSync(prefix, { recursive: true, force: true });
    },
  };
}

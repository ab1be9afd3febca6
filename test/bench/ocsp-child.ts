/**
 * Child process of `npm run bench -- ocsp`: `node --import tsx test/bench/ocsp-child.ts [ceiling]`.
 * Serves the repository role (`startServer`, roles ["repo"]) on 127.0.0.1, port 0, from the
 * environment's HPKI_HOME and DATABASE_URL (the managed cluster under HPKI_HOME when unset) — or, with
 * `ceiling`, a bare node:http server answering every request with a fixed 1,500-byte body (the
 * HTTP ceiling of one Node process on this machine, for comparison). Prints one JSON line {url}
 * once listening and, on SIGTERM, one JSON line {cpuMs, maxRssMb} before exiting.
 */
import http from "node:http";
import { loadConfig } from "../../src/config.ts";
import { openDatabase } from "../../src/store/db.ts";
import { startServer } from "../../src/cli/role-factories.ts";

let close: () => Promise<unknown>;
let url: string;
if (process.argv[2] === "ceiling") {
  const body = Buffer.alloc(1500, 0x30);
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.setHeader("Content-Type", "application/ocsp-response");
      res.setHeader("Content-Length", body.length);
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  close = () => new Promise((r) => server.close(r));
} else {
  const cfg = loadConfig();
  const db = await openDatabase(cfg);
  const server = await startServer({ cfg, db, roles: ["repo"], port: 0 });
  url = server.url;
  close = () => server.close().then(() => db.destroy());
}
process.stdout.write(`${JSON.stringify({ url })}\n`);
process.once("SIGTERM", () => {
  const cpu = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`);
  void close().then(() => process.exit(0));
});

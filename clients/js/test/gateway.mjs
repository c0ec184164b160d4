// A real `herald serve` for the tests: its own config in a temporary directory, an
// ephemeral port (or a given one, to restart on the same address), stopped with SIGTERM.
import { spawn } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, "../../..");
export const SECRET = "node-test-jwt-secret-of-at-least-32-bytes";
export const PUBLISHER_KEY = "node-test-publisher-key";
const BIN = process.env.HERALD_BIN || join(REPO, ".build/debug/herald");

// Node 22 has a WebSocket; before it, the `ws` package (Debian: node-ws) stands in.
if (typeof globalThis.WebSocket !== "function") {
  const require = createRequire(import.meta.url);
  for (const path of ["ws", "/usr/share/nodejs/ws"]) {
    try { globalThis.WebSocket = require(path).WebSocket; break; } catch { /* try the next */ }
  }
  if (typeof globalThis.WebSocket !== "function") throw new Error("no WebSocket: install the ws package (Debian: node-ws)");
}

const sha256 = (text) => createHash("sha256").update(text).digest("hex");
const base64url = (data) => Buffer.from(data).toString("base64url");

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `condition` until it holds; fails after `ms`. */
export async function until(condition, message, ms = 8000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await condition()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${message}`);
}

export class Gateway {
  constructor(config, dir) {
    this.config = config;
    this.dir = dir;
  }

  static async start(overrides = {}) {
    const config = {
      listen: { host: "127.0.0.1", port: 0 },
      publicDirectory: null,
      auth: { anonymous: true, jwtSecret: SECRET, publisherKeys: [{ name: "node", sha256: sha256(PUBLISHER_KEY) }] },
      routes: { chat: { pattern: { type: ["chat.message"] } } },
      log: { level: "warning", lwsLevel: "none" },
      ...overrides,
    };
    const gateway = new Gateway(config, mkdtempSync(join(tmpdir(), "herald-js-")));
    await gateway.launch(0);
    return gateway;
  }

  async launch(port) {
    const configPath = join(this.dir, "config.json");
    const portFile = join(this.dir, "port");
    rmSync(portFile, { force: true });
    writeFileSync(configPath, JSON.stringify(this.config));
    this.process = spawn(BIN, ["serve", "--config", configPath, "--port", String(port), "--port-file", portFile], { stdio: ["ignore", "ignore", "inherit"] });
    this.exited = new Promise((r) => this.process.once("exit", (code) => r(code)));
    await until(() => existsSync(portFile) && readFileSync(portFile, "utf8").trim() !== "", "the gateway's port file");
    this.port = Number(readFileSync(portFile, "utf8"));
    this.url = `http://127.0.0.1:${this.port}`;
  }

  /** Stops it (SIGTERM: clients are told to reconnect); resolves with the exit code. */
  async stop() {
    if (!this.process) return 0;
    this.process.kill("SIGTERM");
    const code = await this.exited;
    this.process = null;
    return code;
  }

  /** Stops it and starts a new process on the same port: without storage, a new epoch. */
  async restart() {
    await this.stop();
    await this.launch(this.port);
  }

  async close() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** An HS256 subscriber JWT with `claims`, valid for ten minutes. */
  token(claims = {}) {
    const now = Math.floor(Date.now() / 1000);
    const head = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
    const body = base64url(JSON.stringify({ iat: now, exp: now + 600, ...claims }));
    const signature = createHmac("sha256", SECRET).update(`${head}.${body}`).digest("base64url");
    return `${head}.${body}.${signature}`;
  }

  /** POSTs events as a backend would, with the publisher key. */
  async publish(events) {
    const response = await fetch(`${this.url}/v1/events`, {
      method: "POST", body: JSON.stringify(events),
      headers: { Authorization: `Bearer ${PUBLISHER_KEY}`, "Content-Type": "application/json" },
    });
    if (response.status !== 202) throw new Error(`publish answered ${response.status}: ${await response.text()}`);
    return response.json();
  }
}

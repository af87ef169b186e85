// Starts a real Switchyard server and a headless Debian Chromium for the
// browser tests. Nothing is mocked: the server runs on the embedded default
// with its own temporary SQLite file.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(here, '..', '..');
export const artifacts = join(repoRoot, 'end2end', 'test-results');

/** Path of the server binary built by `cargo build -p server`. */
function binary() {
  const targetDir = process.env.CARGO_TARGET_DIR || join(repoRoot, 'target');
  return join(targetDir, 'debug', 'switchyard');
}

/**
 * Runs `switchyard <command>` on a free port and resolves once it prints the
 * address it serves on.
 */
export async function startServer(command = 'demo', extraArgs = []) {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-e2e-'));
  const args = [command, '--listen', '127.0.0.1:0', '--database-url', `sqlite://${join(dir, 'e2e.db')}?mode=rwc`, ...extraArgs];
  const child = spawn(binary(), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SWITCHYARD_LOG: 'warn' } });
  let output = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s; output:\n${output}`)), 30_000);
    const onData = (chunk) => {
      output += chunk.toString();
      const match = output.match(/http:\/\/127\.0\.0\.1:\d+/);
      if (match) {
        clearTimeout(timer);
        resolve(match[0]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}; output:\n${output}`));
    });
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Launches Debian's Chromium headless, the way this machine allows. */
export async function launchBrowser() {
  mkdirSync(artifacts, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

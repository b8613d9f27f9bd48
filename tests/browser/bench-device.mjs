// The browser a benchmark measures in (SUPASYNC_ENGINE): Chromium and Firefox with a
// persistent profile of their own, so IndexedDB is on disk as in a user's browser;
// WebKitGTK's MiniBrowser through its WebDriver, whose automation sessions keep their
// storage apart and in the session. Shared by bench.mjs and bench-encryption.mjs.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, firefox } from 'playwright-core';
import { chromiumArgs, engine } from './harness.mjs';
import { launchWebKit } from './webkit.mjs';

let webkit;

/** A new browser context (a device) in the engine under test. */
export async function device() {
  const dir = mkdtempSync(path.join(tmpdir(), 'supasync-bench-'));
  if (engine === 'webkit') {
    webkit ??= await launchWebKit();
    return webkit.newContext();
  }
  if (engine === 'firefox') {
    return firefox.launchPersistentContext(dir, { channel: 'moz-firefox', executablePath: process.env.FIREFOX || '/usr/bin/firefox-esr', headless: true });
  }
  return chromium.launchPersistentContext(dir, { executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: chromiumArgs });
}

/** Close what `device` launched and shares (WebKit's browser). */
export async function closeDevices() {
  await webkit?.close();
}

// Vite with React, nothing else for supasync: the package's wasm is found through
// `new URL(..., import.meta.url)`, which Vite emits as an asset. One small plugin
// writes the list of emitted files for the service worker, so the app shell (wasm
// included) works offline after the first load.
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

function precacheList(): Plugin {
  return {
    name: 'precache-list',
    generateBundle(_, bundle) {
      const files = ['/', ...Object.keys(bundle).map((f) => `/${f}`)];
      this.emitFile({ type: 'asset', fileName: 'precache.json', source: JSON.stringify(files) });
    },
  };
}

export default defineConfig({
  plugins: [react(), precacheList()],
  // The chat schema is shared with the CLI and the native demo (examples/chat).
  server: { fs: { allow: ['..'] } },
});

// The desktop UI is the web example's (examples/web/src) on a different replica:
// `supasync` resolves to ./src/tauri-replica.ts (commands to the native SDK) and
// `supasync/react` to the npm package's hooks, from source. One React for all.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const here = (p: string) => decodeURIComponent(new URL(p, import.meta.url).pathname);

export default defineConfig({
  plugins: [react()],
  resolve: {
    alias: [
      { find: /^supasync\/react$/, replacement: here('../../crates/sdk-wasm/js/src/react.ts') },
      { find: /^supasync$/, replacement: here('./src/tauri-replica.ts') },
    ],
    dedupe: ['react', 'react-dom'],
  },
  server: { port: 5174, strictPort: true, fs: { allow: ['../..'] } },
  build: { target: 'es2022' },
  clearScreen: false,
});

// Builds exactly dist/index.html, dist/app.js and dist/app.css: `cairn serve`
// embeds those three files by name, and a Rust test rebuilds them and
// compares byte for byte, so no hashed names, no public/ copies, nothing
// that depends on the time or the machine.
import { defineConfig } from "vitest/config";

declare const process: { env: Record<string, string | undefined> };
const api = process.env.CAIRN_API ?? "http://127.0.0.1:7590";

export default defineConfig({
  base: "/",
  publicDir: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    cssCodeSplit: false,
    modulePreload: false,
    assetsInlineLimit: 100_000,
    reportCompressedSize: false,
    rollupOptions: {
      output: {
        entryFileNames: "app.js",
        chunkFileNames: "app-[name].js",
        assetFileNames: (info) => (info.names.some((n) => n.endsWith(".css")) ? "app.css" : "[name][extname]"),
        inlineDynamicImports: true,
      },
    },
  },
  server: {
    proxy: { "/api": { target: api, changeOrigin: true } },
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
  },
});

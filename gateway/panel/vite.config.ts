import { defineConfig } from "vite";

// No React plugin: Vite's own transformer compiles TSX with the automatic JSX
// runtime, and fast refresh is not worth a dependency for this panel.
export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "react" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The gateway's CSP forbids inline scripts and styles: never inline assets
    // as data: URLs except images (img-src allows data:), and emit CSS as files.
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    sourcemap: false,
    target: "es2022",
  },
});

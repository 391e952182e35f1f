// Builds the package in the current directory twice with tsc: ESM to dist/esm and CommonJS to
// dist/cjs (marked with its own package.json), each with its .d.ts declarations.
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
rmSync("dist", { recursive: true, force: true });
for (const project of ["tsconfig.json", "tsconfig.cjs.json"]) {
  const { status } = spawnSync(process.execPath, [tsc, "-p", project], { stdio: "inherit" });
  if (status !== 0) process.exit(status ?? 1);
}
writeFileSync("dist/cjs/package.json", '{\n  "type": "commonjs"\n}\n');

// vitest config for the conformance harness. Used by `cargo xtask conformance`
// and `npm run conformance`; keeps vitest from crawling target/ and friends.
import { defineConfig } from "vitest/config"
import { fileURLToPath } from "node:url"

export default defineConfig({
  test: {
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["conformance.test.mjs"],
    // The suite assumes vitest's defaults (5 s per test); the server under
    // test must use a short long-poll timeout (~500 ms).
    testTimeout: 5000,
    hookTimeout: 10000,
  },
})

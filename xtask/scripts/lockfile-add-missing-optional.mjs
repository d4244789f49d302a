// The npm registry reachable from these machines lacks some platform-specific
// optional packages (darwin/windows builds of workerd and msgpackr-extract).
// `npm install` then leaves them out of package-lock.json, and `npm ci`
// refuses the lockfile ("Missing: X@ from lock file"). This adds a stub entry
// (version + os/cpu, marked optional) for every optional dependency the lockfile
// lacks, so that `npm ci` skips it by platform, as it would anyway.
//
//   node xtask/scripts/lockfile-add-missing-optional.mjs   (run after `npm install`)
import { readFileSync, writeFileSync } from "node:fs"

const PLATFORM = [
  // [name pattern, os, cpu]
  [/darwin-arm64$/, "darwin", "arm64"],
  [/darwin-(x)?64$/, "darwin", "x64"],
  [/linux-arm$/, "linux", "arm"],
  [/linux-arm64$/, "linux", "arm64"],
  [/linux-(x)?64$/, "linux", "x64"],
  [/(win32|windows)-(x)?64$/, "win32", "x64"],
  [/win32-arm64$/, "win32", "arm64"],
]

const path = new URL("../../package-lock.json", import.meta.url)
const lock = JSON.parse(readFileSync(path, "utf8"))
const pkgs = lock.packages
let added = 0
for (const [key, meta] of Object.entries(pkgs)) {
  for (const [dep, spec] of Object.entries(meta.optionalDependencies ?? {})) {
    // resolution: nested node_modules first, then the root
    const nested = `${key ? key + "/" : ""}node_modules/${dep}`
    if (pkgs[nested] || pkgs[`node_modules/${dep}`]) continue
    const plat = PLATFORM.find(([re]) => re.test(dep))
    if (!plat) {
      console.error(`no platform rule for missing optional ${dep}; left alone`)
      continue
    }
    pkgs[`node_modules/${dep}`] = {
      version: spec.replace(/^[\^~=]/, ""),
      cpu: [plat[2]],
      dev: meta.dev ?? undefined,
      optional: true,
      os: [plat[1]],
    }
    added++
    console.log(`stubbed ${dep}@${spec} (${plat[1]}/${plat[2]})`)
  }
}
lock.packages = Object.fromEntries(Object.entries(pkgs).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : a > b ? 1 : 0)))
writeFileSync(path, JSON.stringify(lock, null, 2) + "\n")
console.log(`added ${added} stub entries`)

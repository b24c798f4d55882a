/**
 * Real small and read-only disks for tests of full-disk and read-only behaviour: a tmpfs
 * mounted for the test (root only: CI and this sandbox run tests as root). Where the OS
 * refuses the mount, `reason` says why and the tests that need it skip with that reason.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export interface SmallDisk {
  dir: string;
  unmount(): void;
}

/** Mounts a tmpfs of `kib` KiB (read-only when asked) on a new temp folder. */
export function mountSmallDisk(kib: number, options: { readOnly?: boolean } = {}): SmallDisk {
  const dir = mkdtempSync(path.join(os.tmpdir(), "runflow-small-disk-"));
  const flags = `size=${kib}k${options.readOnly ? ",ro" : ""}`;
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", flags, "tmpfs", dir], { stdio: "pipe" });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    unmount() {
      execFileSync("umount", [dir], { stdio: "pipe" });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Why no small disk can be mounted here, or undefined when one can. */
export function smallDiskUnavailable(): string | undefined {
  if (process.platform !== "linux") return `tmpfs mounts need Linux (this is ${process.platform})`;
  try {
    mountSmallDisk(16).unmount();
    return undefined;
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    return `the OS refused a tmpfs mount (${stderr || (error as Error).message}); run the tests as root to check full and read-only disks`;
  }
}

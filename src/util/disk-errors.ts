/**
 * Errors of the disk runflow writes to, said plainly: a full or read-only disk is not a
 * network problem, is never retried, and its message says what to do, where Node says
 * `ENOSPC: no space left on device, write` (or, for a recursive mkdir, a misleading ENOENT).
 */

/** A file could not be saved: the disk's fault, not the file host's. */
export class DiskError extends Error {
  override readonly name = "DiskError";
}

/**
 * Runs a file-system operation in `folder`; a failure with an errno code becomes a DiskError
 * that says what went wrong where. Callers do not retry it: another try cannot succeed.
 */
export async function onDisk<T>(folder: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    const reason = diskProblem(error, folder);
    if (reason === undefined) throw error;
    throw new DiskError(reason, { cause: error });
  }
}

function diskProblem(error: unknown, folder: string): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case "ENOSPC":
      return `no space left on the disk holding ${folder}`;
    case "EDQUOT":
      return `disk quota exceeded on the disk holding ${folder}`;
    case "EROFS":
      return `${folder} is read-only (its file system is mounted read-only)`;
    case "EACCES":
    case "EPERM":
      return `no permission to write in ${folder}`;
    case "EIO":
      return `the disk holding ${folder} failed to read or write (I/O error)`;
    case "ENOTDIR":
    case "EEXIST":
      return `${folder} cannot be made: a file is in the way`;
    default:
      // Anything else (a source gone missing, say) is not the disk's fault: thrown as it is.
      return undefined;
  }
}
